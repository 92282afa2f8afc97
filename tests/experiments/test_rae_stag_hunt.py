"""The rae_stag_hunt experiment: matrix-level basins and a tiny gridworld PSRO comparison."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from varl.experiments import rae_stag_hunt
from varl.experiments.result import ExperimentResult


def test_basin_thresholds_match_spec_t3() -> None:
    q0s = np.round(np.arange(0.05, 1.0, 0.05), 2)
    for gamma, threshold in ((0.0, 0.80), (0.1, 0.85), (0.5, 0.95)):
        basin = rae_stag_hunt.stag_basin(gamma, q0s, 300)
        assert q0s[basin > 0].min() == pytest.approx(threshold)
        assert np.all(basin[q0s >= threshold] == 1)


@pytest.fixture(scope="module")
def result() -> ExperimentResult:
    tiny = dataclasses.replace(
        rae_stag_hunt.QUICK, basin_gammas=(0.0, 0.5), q0_grid=7, psro_iterations=4, seeds=3
    )
    patch = pytest.MonkeyPatch()
    patch.setattr(rae_stag_hunt, "QUICK", tiny)
    try:
        return rae_stag_hunt.run()
    finally:
        patch.undo()


def test_rae_avoids_the_stag_that_nash_hunts(result: ExperimentResult) -> None:
    m = result.metrics
    assert result.verdict
    assert m["grid/rae/mean_p_stag"] < m["grid/nash/mean_p_stag"]
    assert m["grid/nash/mean_p_stag"] > 0.99  # the payoff-dominant equilibrium, every seed
    assert m["matrix/basin_gamma0.5"] < m["matrix/basin_gamma0"]
    curve = {s.label: s for s in result.panels[1].series}["PSRO-nash"]
    assert len(curve.x) == 5 and curve.mean[-1] > 0.99
