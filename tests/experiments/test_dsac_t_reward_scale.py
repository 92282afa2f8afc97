"""The reward-scale experiment on tiny settings: scale-free bookkeeping and the verdict rule."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("torch")
pytest.importorskip("gymnasium")

from varl.experiments import dsac_t_reward_scale as rs

TINY = dataclasses.replace(
    rs.QUICK, transitions=300, updates=20, log_every=10, hidden=(16, 16), batch_size=32
)


def test_identical_buffers_start_from_the_same_unscaled_networks() -> None:
    # The buffers (but for the rewards), the policy and the initial networks are identical, so
    # after 10 small critic updates the RAW σ̄ is still the shared initial one: σ̄/c is not yet
    # scale-free (it differs by the ratio of the scales, 100) and the 3σ̄ clip, unscaled, clips
    # far more of the ×10 targets than of the ×0.1 ones. Scale-freeness only comes with learning.
    cfg = dataclasses.replace(TINY, updates=10)
    a = rs.evaluation_run(cfg, "paper", 0.1, seed=0)
    b = rs.evaluation_run(cfg, "paper", 10.0, seed=0)
    assert a["update"] == b["update"] == [10.0]
    raw_a, raw_b = a["sigma_bar_over_c"][0] * 0.1, b["sigma_bar_over_c"][0] * 10.0
    assert raw_a == pytest.approx(raw_b, rel=1e-3)
    assert a["sigma_bar_over_c"][0] / b["sigma_bar_over_c"][0] == pytest.approx(100.0, rel=1e-3)
    assert abs(a["q_over_c"][0]) > 10 * abs(b["q_over_c"][0])
    assert a["clip_fraction"][0] < 0.2 and b["clip_fraction"][0] == 1.0


def test_evaluation_result_and_verdict_rule() -> None:
    result = rs.run_with(TINY)
    m = result.metrics
    assert len(result.table) == 1 + 2 * 3
    ablation = "fixed clip (no σ̄ scaling)"
    spread = m["DSAC-T/q_over_c_spread"]
    qs = [m[f"DSAC-T/c={c:g}/q_over_c"] for c in TINY.scales]
    assert spread == pytest.approx(max(map(abs, qs)) / min(map(abs, qs)) - 1.0)
    # The verdict, recomputed from the reported metrics, whichever way it goes.
    sigma = {c: m[f"DSAC-T/c={c:g}/sigma_bar_over_c"] for c in TINY.scales}
    sigma_ok = all(0.5 <= sigma[c] / sigma[1.0] <= 2.0 for c in TINY.scales if c >= 1.0)
    expected = (
        spread <= TINY.q_tolerance
        and m["DSAC-T/clip_fraction_range"] < TINY.clip_tolerance
        and sigma_ok
        and m[f"{ablation}/q_over_c_spread"] > spread
    )
    assert result.verdict is expected
    assert f"DSAC-T {spread:.1%}" in result.verdict_text
    assert f"σ̄ ∝ c for c ≥ 1 {'held' if sigma_ok else 'failed'}" in result.verdict_text


def test_learning_mode_reports_unscaled_returns() -> None:
    cfg = dataclasses.replace(
        TINY, mode="learning", steps=200, scales=(0.1, 10.0), eval_points=2, eval_episodes=1
    )
    result = rs.run_with(cfg)
    for name in rs.VARIANTS:
        for c in cfg.scales:
            # Returns are on the unscaled environment: a Pendulum episode scores in [-1700, 0].
            assert -1700 < result.metrics[f"{name}/c={c:g}/median_return"] < 0
