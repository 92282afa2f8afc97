"""Runs experiments by name and hands their results to the report writer."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from tqdm.auto import tqdm

from varl import __version__
from varl.experiments import (
    alignprop,
    alignprop_memory,
    ctrl_u,
    dsac_t_pendulum,
    dsac_t_reward_scale,
    gui_g2,
    gvm_raft,
    gvm_variance,
    rae_driving,
    rae_matrix,
    rae_stag_hunt,
    rlpr,
    selection,
    tw_grpo,
)
from varl.experiments.report import write_report
from varl.experiments.result import ExperimentResult


class Experiment(NamedTuple):
    """One entry of ``varl reproduce --list``.

    Attributes:
        description: One line naming the paper and what is compared.
        run: ``run(*, full, seeds, progress) -> ExperimentResult``; ``seeds`` None means the
            experiment's own default count.
    """

    description: str
    run: Callable[..., ExperimentResult]


# The CLI lists its choices from this explicit mapping (no registry, no plugins).
EXPERIMENTS: dict[str, Experiment] = {
    "gui_g2": Experiment(gui_g2.DESCRIPTION, gui_g2.run),
    "tw_grpo": Experiment(tw_grpo.DESCRIPTION, tw_grpo.run),
    "gvm_variance": Experiment(gvm_variance.DESCRIPTION, gvm_variance.run),
    "gvm_raft": Experiment(gvm_raft.DESCRIPTION, gvm_raft.run),
    "selection": Experiment(selection.DESCRIPTION, selection.run),
    "rlpr": Experiment(rlpr.DESCRIPTION, rlpr.run),
    "dsac_t_pendulum": Experiment(dsac_t_pendulum.DESCRIPTION, dsac_t_pendulum.run),
    "dsac_t_reward_scale": Experiment(dsac_t_reward_scale.DESCRIPTION, dsac_t_reward_scale.run),
    "rae_matrix": Experiment(rae_matrix.DESCRIPTION, rae_matrix.run),
    "rae_stag_hunt": Experiment(rae_stag_hunt.DESCRIPTION, rae_stag_hunt.run),
    "rae_driving": Experiment(rae_driving.DESCRIPTION, rae_driving.run),
    "alignprop": Experiment(alignprop.DESCRIPTION, alignprop.run),
    "alignprop_memory": Experiment(alignprop_memory.DESCRIPTION, alignprop_memory.run),
    "ctrl_u": Experiment(ctrl_u.DESCRIPTION, ctrl_u.run),
}


def list_experiments() -> list[tuple[str, str]]:
    """Returns ``(name, description)`` for every experiment, in report order."""
    return [(name, exp.description) for name, exp in EXPERIMENTS.items()]


def check_request(names: Sequence[str] | None, seeds: int | None) -> list[str]:
    """Validates a ``reproduce`` request and returns the experiment names to run, in order.

    Raises:
        ValueError: On an unknown experiment name or a seed count below 1.
    """
    selected = list(names) if names else list(EXPERIMENTS)
    unknown = [n for n in selected if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(
            f"unknown experiment(s) {unknown}; choose from {sorted(EXPERIMENTS)} "
            "(see `varl reproduce --list`)"
        )
    if seeds is not None and seeds < 1:
        raise ValueError(f"seeds: expected a count >= 1, got {seeds}")
    return selected


def code_fingerprint() -> str:
    """A hash of varl's source files: a saved result is reused only by the code that made it."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def reproduce(
    names: Sequence[str] | None = None,
    *,
    full: bool = False,
    seeds: int | None = None,
    out_dir: str | Path = "reports/latest",
    progress: bool = True,
    resume: bool = False,
) -> list[ExperimentResult]:
    """Runs the named experiments (all when ``names`` is None) and writes the report.

    Each finished experiment is saved to ``out_dir/runs/NAME.json`` and the report is rewritten
    after each one, so a killed run leaves a valid partial report; with ``resume`` a saved
    experiment run with the same mode and seed count by the same source code
    (:func:`code_fingerprint`) is loaded instead of rerun.

    Args:
        names: Experiment names; None or empty runs every experiment.
        full: Run the larger settings instead of the quick CPU ones.
        seeds: Number of seeds (0..seeds-1) for every experiment; None keeps each one's default.
        out_dir: Report folder.
        progress: Show a tqdm progress bar per experiment.
        resume: Reuse the saved results of experiments that already finished in ``out_dir``.

    Returns:
        The results, in the order run.

    Raises:
        ValueError: On an unknown experiment name or a seed count below 1.
    """
    selected = check_request(names, seeds)
    out = Path(out_dir)
    meta = {
        "mode": "full" if full else "quick",
        "varl_version": __version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "experiments": selected,
    }
    fingerprint = code_fingerprint()
    results = []
    for name in selected:
        key = {"full": full, "seeds": seeds, "code": fingerprint}
        saved = _load_saved(out / "runs" / f"{name}.json", key) if resume else None
        if saved is None:
            bar = tqdm(desc=name, unit="step", disable=not progress, leave=True)
            start = time.perf_counter()
            try:
                result = EXPERIMENTS[name].run(full=full, seeds=seeds, progress=bar)
            finally:
                bar.close()
            saved = dataclasses.replace(result, seconds=time.perf_counter() - start)
            _save(out / "runs" / f"{name}.json", key, saved)
        results.append(saved)
        write_report(results, out, meta)
    return results


def _save(path: Path, key: dict[str, Any], result: ExperimentResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "result": result.to_dict()}), encoding="utf-8")
    tmp.replace(path)  # atomic: a kill mid-write never leaves a truncated file behind


def _load_saved(path: Path, key: dict[str, Any]) -> ExperimentResult | None:
    """Returns the saved result at ``path`` if it was made with the same settings, else None."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] != key:
            return None
        return ExperimentResult.from_dict(data["result"])
    except (ValueError, KeyError, TypeError):
        return None  # unreadable or from an older format: run the experiment again
