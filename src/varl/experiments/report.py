"""Writes ``report.md``, ``report.html``, one PNG per experiment and ``results.json``.

The writer only knows :class:`~varl.experiments.result.ExperimentResult`; it has no knowledge of
any method.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from varl.experiments.result import ExperimentResult, Panel


def plot_result(result: ExperimentResult, path: Path) -> None:
    """Draws the result's panels side by side and saves them as a PNG.

    Args:
        result: The experiment outcome whose ``panels`` are drawn.
        path: Destination ``.png`` file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: Sequence[Panel] = result.panels
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for series in panel.series:
            (line,) = ax.plot(series.x, series.mean, label=series.label, linewidth=1.6)
            if series.low != series.high:
                ax.fill_between(
                    series.x, series.low, series.high, color=line.get_color(), alpha=0.18
                )
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    verdict = "claim held" if result.verdict else "claim NOT held"
    fig.suptitle(f"{result.name}: {verdict}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _verdict_word(result: ExperimentResult) -> str:
    return "HELD" if result.verdict else "NOT HELD"


def _markdown_table(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return lines


def render_markdown(results: Sequence[ExperimentResult], meta: dict[str, Any]) -> str:
    """Returns the Markdown report: a summary table, then one section per experiment."""
    held = sum(r.verdict for r in results)
    lines = [
        "# varl reproduce",
        "",
        f"{held}/{len(results)} claims held. Mode: {meta['mode']}. "
        f"varl {meta['varl_version']}, Python {meta['python']}, {meta['date']}.",
        "",
        "| experiment | paper | verdict | seconds |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| [{r.name}](#{r.name}) | {r.paper} | {_verdict_word(r)} | {r.seconds:.1f} |"
        for r in results
    ]
    for r in results:
        lines += [
            "",
            f"## {r.name}",
            "",
            f"**Paper:** {r.paper}",
            "",
            f"**Claim:** {r.claim}",
            "",
            f"**Verdict: {_verdict_word(r)}.** {r.verdict_text}",
            "",
            *_markdown_table(r.table),
            "",
            f"![{r.name}]({r.name}.png)",
            "",
            f"Seeds: {r.seeds}. Settings: `{json.dumps(r.settings, sort_keys=True)}`",
        ]
        lines += [f"- {note}" for note in r.notes]
    return "\n".join(lines) + "\n"


def _html_table(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(results: Sequence[ExperimentResult], meta: dict[str, Any]) -> str:
    """Returns a self-contained HTML page with the same content as the Markdown report."""
    esc = html.escape
    held = sum(r.verdict for r in results)
    summary_rows = [["experiment", "paper", "verdict", "seconds"]] + [
        [r.name, r.paper, _verdict_word(r), f"{r.seconds:.1f}"] for r in results
    ]
    sections = []
    for r in results:
        colour = "#1a7f37" if r.verdict else "#cf222e"
        notes = "".join(f"<li>{esc(n)}</li>" for n in r.notes)
        sections.append(
            f'<section id="{esc(r.name)}"><h2>{esc(r.name)}</h2>'
            f"<p><b>Paper:</b> {esc(r.paper)}</p><p><b>Claim:</b> {esc(r.claim)}</p>"
            f'<p><b style="color:{colour}">Verdict: {_verdict_word(r)}.</b> '
            f"{esc(r.verdict_text)}</p>{_html_table(r.table)}"
            f'<p><img src="{esc(r.name)}.png" alt="{esc(r.name)}" style="max-width:100%"></p>'
            f"<p><small>Seeds: {esc(str(r.seeds))}. Settings: "
            f"<code>{esc(json.dumps(r.settings, sort_keys=True))}</code></small></p>"
            f"<ul>{notes}</ul></section>"
        )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
        "th{background:#f3f3f3}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>varl reproduce</title>"
        f"<style>{style}</style></head><body><h1>varl reproduce</h1>"
        f"<p>{held}/{len(results)} claims held. Mode: {esc(meta['mode'])}. "
        f"varl {esc(meta['varl_version'])}, Python {esc(meta['python'])}, {esc(meta['date'])}.</p>"
        f"{_html_table(summary_rows)}{''.join(sections)}</body></html>\n"
    )


def _finite_json(value: Any) -> Any:
    """Replaces non-finite floats with None so that results.json is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def write_report(
    results: Sequence[ExperimentResult], out_dir: str | Path, meta: dict[str, Any]
) -> Path:
    """Writes the whole report folder and returns its path.

    Args:
        results: Outcomes of the experiments that ran, in order.
        out_dir: Folder to write into (created if missing; files in it are overwritten).
        meta: Run-level facts: ``mode``, ``varl_version``, ``python``, ``date``.

    Returns:
        The report folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        plot_result(r, out / f"{r.name}.png")
    (out / "report.md").write_text(render_markdown(results, meta), encoding="utf-8")
    (out / "report.html").write_text(render_html(results, meta), encoding="utf-8")
    payload = {"meta": meta, "experiments": [_finite_json(r.to_dict()) for r in results]}
    (out / "results.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return out
