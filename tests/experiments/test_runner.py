"""reproduce() validates its arguments and writes a report for the experiments it ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from varl.experiments import runner
from varl.experiments.result import ExperimentResult
from varl.experiments.runner import EXPERIMENTS, Experiment, list_experiments, reproduce


def test_list_matches_mapping() -> None:
    assert [name for name, _ in list_experiments()] == list(EXPERIMENTS)
    assert all(desc for _, desc in list_experiments())


def test_unknown_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown experiment\(s\) \['nope'\]"):
        reproduce(["nope"], out_dir=tmp_path, progress=False)


def test_seed_count_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seeds: expected a count >= 1"):
        reproduce(["gui_g2"], seeds=0, out_dir=tmp_path, progress=False)


def test_reproduce_one_experiment_one_seed(tmp_path: Path) -> None:
    results = reproduce(["gui_g2"], seeds=1, out_dir=tmp_path, progress=False)
    assert [r.name for r in results] == ["gui_g2"]
    assert results[0].seeds == [0]
    assert results[0].seconds > 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["experiments"] == ["gui_g2"]
    assert data["experiments"][0]["settings"]["seeds"] == 1


def _boom(**kwargs: object) -> ExperimentResult:
    raise RuntimeError("killed")


def test_resume_reuses_finished_experiments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = reproduce(["gui_g2"], seeds=1, out_dir=tmp_path, progress=False)
    assert (tmp_path / "runs" / "gui_g2.json").is_file()
    # A resumed run must not call the experiment again: make calling it fail.
    monkeypatch.setitem(EXPERIMENTS, "gui_g2", Experiment("stub", _boom))
    again = reproduce(["gui_g2"], seeds=1, out_dir=tmp_path, progress=False, resume=True)
    assert again == first
    # Different settings are not reused, and without --resume nothing is.
    with pytest.raises(RuntimeError, match="killed"):
        reproduce(["gui_g2"], seeds=2, out_dir=tmp_path, progress=False, resume=True)
    with pytest.raises(RuntimeError, match="killed"):
        reproduce(["gui_g2"], seeds=1, out_dir=tmp_path, progress=False)
    # Results made by other source code are stale.
    monkeypatch.setattr(runner, "code_fingerprint", lambda: "changed")
    with pytest.raises(RuntimeError, match="killed"):
        reproduce(["gui_g2"], seeds=1, out_dir=tmp_path, progress=False, resume=True)


def test_killed_run_leaves_partial_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXPERIMENTS, "dies", Experiment("always fails", _boom))
    with pytest.raises(RuntimeError, match="killed"):
        reproduce(["gui_g2", "dies"], seeds=1, out_dir=tmp_path, progress=False)
    data = json.loads((tmp_path / "results.json").read_text())
    assert [e["name"] for e in data["experiments"]] == ["gui_g2"]
