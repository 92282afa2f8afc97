"""The reward-scale experiment on tiny settings: scale-free bookkeeping and the verdict rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("gymnasium")

from varl.experiments import dsac_t_reward_scale as rs

TINY = dataclasses.replace(
    rs.QUICK, transitions=300, updates=20, log_every=10, hidden=(16, 16), batch_size=32
)


def test_identical_buffers_give_scale_free_values_at_the_start() -> None:
    # Before learning has separated them, Q/c differs across scales only by the tiny updates:
    # the buffer (but for the rewards), the policy and the initial networks are identical.
    a = rs.evaluation_run(dataclasses.replace(TINY, updates=10), "paper", 0.1, seed=0)
    b = rs.evaluation_run(dataclasses.replace(TINY, updates=10), "paper", 10.0, seed=0)
    assert a["update"] == b["update"] == [10.0]
    assert np.isfinite(a["q_over_c"][0]) and np.isfinite(b["q_over_c"][0])
    assert 0.0 <= a["clip_fraction"][0] <= 1.0


def test_evaluation_result_and_verdict_rule() -> None:
    result = rs.run_with(TINY)
    m = result.metrics
    assert len(result.table) == 1 + 2 * 3
    spread = m["DSAC-T/q_over_c_spread"]
    qs = [m[f"DSAC-T/c={c:g}/q_over_c"] for c in TINY.scales]
    assert spread == pytest.approx(max(map(abs, qs)) / min(map(abs, qs)) - 1.0)
    if result.verdict:
        assert spread <= TINY.q_tolerance
        assert m["fixed clip (no σ̄ scaling)/q_over_c_spread"] > spread


def test_learning_mode_reports_unscaled_returns() -> None:
    cfg = dataclasses.replace(
        TINY, mode="learning", steps=200, scales=(0.1, 10.0), eval_points=2, eval_episodes=1
    )
    result = rs.run_with(cfg)
    for name in rs.VARIANTS:
        for c in cfg.scales:
            # Returns are on the unscaled environment: a Pendulum episode scores in [-1700, 0].
            assert -1700 < result.metrics[f"{name}/c={c:g}/median_return"] < 0
