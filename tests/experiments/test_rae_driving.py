"""The rae_driving experiment on tiny settings: fewer crashes with PSRO-RAE, counted two ways."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from varl.experiments import rae_driving
from varl.experiments.result import ExperimentResult
from varl.games.markov import make_two_way
from varl.games.psro import MarkovProblem, psro


@pytest.fixture(scope="module")
def result() -> ExperimentResult:
    tiny = dataclasses.replace(rae_driving.QUICK, psro_iterations=6, episodes=400, seeds=2)
    patch = pytest.MonkeyPatch()
    patch.setattr(rae_driving, "QUICK", tiny)
    try:
        return rae_driving.run()
    finally:
        patch.undo()


def test_rae_crashes_less_than_the_best_baseline(result: ExperimentResult) -> None:
    m = result.metrics
    assert result.verdict
    assert m["rae/crash_probability"] < m["nash/crash_probability"] < m["uniform/crash_probability"]
    assert m["crash_ratio_best_baseline_to_rae_exact"] > 2.0
    assert "vs 7x in the paper" in result.verdict_text


def test_sampled_crashes_match_the_exact_probability() -> None:
    problem = MarkovProblem(make_two_way(), symmetric=True)
    run = psro(problem, meta_solver="uniform", iterations=3, seed=0)
    exact = rae_driving.crash_probability(problem, run, run.meta_strategy)
    count, _ = rae_driving.sample_crashes(problem, run, 4000, np.random.default_rng(0))
    assert count / 4000 == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 4000))
