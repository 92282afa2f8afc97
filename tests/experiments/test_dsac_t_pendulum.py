"""The DSAC-T vs SAC experiment on tiny settings: structure, fair evaluation, verdict rule."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("torch")
pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")

from varl.experiments import dsac_t_pendulum
from varl.experiments.result import ExperimentResult

TINY = dataclasses.replace(
    dsac_t_pendulum.QUICK,
    envs=(("Pendulum-v1", 300),),
    hidden=(16, 16),
    batch_size=32,
    learning_starts=100,
    eval_points=2,
    eval_episodes=1,
)


@pytest.fixture(scope="module")
def result() -> ExperimentResult:
    return dsac_t_pendulum.run_with(TINY)


def test_result_shape_and_verdict_rule(result: ExperimentResult) -> None:
    m = result.metrics
    dsac = m["Pendulum-v1/DSAC-T/median_final_return"]
    sac = m["Pendulum-v1/SB3 SAC/median_final_return"]
    assert -2000 < dsac < 0 and -2000 < sac < 0
    assert result.verdict == (dsac >= sac - TINY.margin)
    assert m["Pendulum-v1/DSAC-T/seed0"] == dsac
    assert [s.label for s in result.panels[0].series] == ["DSAC-T", "SB3 SAC"]
    # Both algorithms are evaluated at the same env steps.
    assert result.panels[0].series[0].x == result.panels[0].series[1].x == [150.0, 300.0]
    assert len(result.table) == 3


def test_same_seed_same_dsac_t_curve() -> None:
    a = dsac_t_pendulum.train_dsac_t(TINY, "Pendulum-v1", 300, seed=2)
    b = dsac_t_pendulum.train_dsac_t(TINY, "Pendulum-v1", 300, seed=2)
    assert a["return"] == b["return"]
