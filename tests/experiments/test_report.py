"""The report writer renders any ExperimentResult into md, html, png and strict json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from varl.experiments.report import write_report
from varl.experiments.result import ExperimentResult, Panel, Series

META = {"mode": "quick", "varl_version": "0.0", "python": "3.11", "date": "2026-01-01"}


def _result(verdict: bool, metric: float = 0.5) -> ExperimentResult:
    series = Series(label="arm", x=[0.0, 1.0], mean=[0.1, 0.2], low=[0.0, 0.1], high=[0.2, 0.3])
    return ExperimentResult(
        name="toy" if verdict else "toy_failed",
        paper="A Paper (arXiv 0000.00000)",
        claim="arm goes up",
        verdict=verdict,
        verdict_text="arm went from 0.1 to 0.2",
        metrics={"arm/final": metric},
        table=[["arm", "final"], ["arm", "0.2"]],
        panels=[Panel(title="curve", xlabel="step", ylabel="y", series=[series])],
        settings={"steps": 2},
        seeds=[0],
        notes=["a note"],
    )


def test_write_report_writes_all_files(tmp_path: Path) -> None:
    out = write_report([_result(True), _result(False)], tmp_path / "rep", META)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["report.html", "report.md", "results.json", "toy.png", "toy_failed.png"]
    assert (out / "toy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "1/2 claims held" in md
    assert "**Verdict: HELD.** arm went from 0.1 to 0.2" in md
    assert "**Verdict: NOT HELD.**" in md
    assert "![toy](toy.png)" in md
    html = (out / "report.html").read_text()
    assert '<img src="toy.png"' in html and "NOT HELD" in html
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["mode"] == "quick"
    assert data["experiments"][0]["metrics"] == {"arm/final": 0.5}
    assert data["experiments"][0]["panels"][0]["series"][0]["mean"] == [0.1, 0.2]


def test_non_finite_metrics_become_null_in_strict_json(tmp_path: Path) -> None:
    out = write_report([_result(True, metric=math.nan)], tmp_path, META)
    text = (out / "results.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["experiments"][0]["metrics"]["arm/final"] is None


def test_series_lengths_must_agree() -> None:
    with pytest.raises(ValueError, match="low has a different length"):
        Series(label="bad", x=[0.0, 1.0], mean=[0.0, 1.0], low=[0.0], high=[0.0, 1.0])
