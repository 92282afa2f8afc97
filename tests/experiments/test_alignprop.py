"""alignprop experiment: the curve statistics by hand, and a reduced end-to-end run."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from varl.experiments import alignprop

torch.set_num_threads(1)

TINY = dataclasses.replace(
    alignprop.QUICK,
    rewards=("brightness",),
    num_steps=3,  # steps 1-2 are near-deterministic, so DDPO trains step 0 only
    batch_size=2,
    batches=2,
    ddpo_batch_size=4,
    base_images=4,
    diversity_images=2,
    pretrain_steps=2,
)


def test_smooth_curve_is_a_trailing_mean() -> None:
    values = np.array([1.0, 3.0, 5.0, 7.0])
    np.testing.assert_allclose(alignprop.smooth_curve(values, 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(alignprop.smooth_curve(values, 1), values)


def test_queries_to_level_and_improvement_test() -> None:
    queries = np.array([8.0, 16.0, 24.0])
    assert alignprop.queries_to_level(np.array([0.1, 0.5, 0.9]), queries, 0.5) == 16.0
    assert alignprop.queries_to_level(np.array([0.1, 0.2, 0.3]), queries, 0.5) is None
    # last quarter of 4 batches = the last batch of each seed: [1.0, 1.2], mean 1.1, se 0.1
    means = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.2]])
    held, mean, se = alignprop.improved(means, base=0.85)
    assert held and mean == pytest.approx(1.1) and se == pytest.approx(0.1)
    assert not alignprop.improved(means, base=0.95)[0]  # 1.1 - 0.95 < 2 se


def test_reduced_run_reports_every_quantity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VARL_CACHE", str(tmp_path))
    result = alignprop.run_config(TINY, 1)
    assert result.name == "alignprop" and result.seeds == [0]
    assert len(result.table) == 1 + 1 + 1  # header, brightness, diversity
    assert len(result.panels) == 1 and [s.label for s in result.panels[0].series] == [
        "AlignProp", "DDPO", "base r0"
    ]  # fmt: skip
    assert result.panels[0].series[0].x == [2.0, 4.0]  # AlignProp: 2 updates of 2 images
    assert result.panels[0].series[1].x == [4.0]  # DDPO: 1 update of 4, the same budget
    for key in ("brightness/ratio", "brightness/base_reward", "diversity/full_K",
                "brightness/DDPO/last_quarter_reward", "diversity_gate_held"):  # fmt: skip
        assert key in result.metrics
    assert result.metrics["diversity/base"] > 0
    assert math.isfinite(result.metrics["brightness/AlignProp/final_reward_seed0"])
    assert isinstance(result.verdict, bool) and "ratio" in result.verdict_text
    assert result.to_dict()["settings"]["batches"] == 2


def test_arms_get_their_own_learning_rates_and_ddpo_per_prompt_advantages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VARL_CACHE", str(tmp_path))
    ddpo = alignprop._trainer("DDPO", "brightness", TINY, 0, "random")
    assert ddpo.config.train_learning_rate == alignprop.DDPO_LR == TINY.ddpo_lr
    assert ddpo.config.per_prompt_stat_tracking and ddpo.stat_tracker is not None
    assert (ddpo.stat_tracker.buffer_size, ddpo.stat_tracker.min_count) == (16, 4)
    assert ddpo.config.samples_per_epoch == ddpo.config.train_batch_size == TINY.ddpo_batch_size
    assert ddpo.config.train_min_step_std == alignprop.DDPO_MIN_STEP_STD
    align = alignprop._trainer("AlignProp", "brightness", TINY, 0, "random")
    assert align.config.train_learning_rate == TINY.lr
    batch_adv = dataclasses.replace(TINY, ddpo_per_prompt=False, ddpo_lr=1e-3)
    ddpo = alignprop._trainer("DDPO", "brightness", batch_adv, 0, "random")
    assert ddpo.stat_tracker is None and ddpo.config.train_learning_rate == 1e-3


def test_arms_share_the_budget_and_smooth_over_similar_query_spans() -> None:
    cfg = alignprop.QUICK  # 12 AlignProp batches of 8 = 96 queries = 3 DDPO updates of 32
    assert cfg.arm_batches("AlignProp") == (12, 8) and cfg.arm_batches("DDPO") == (3, 32)
    assert (cfg.arm_smooth("AlignProp"), cfg.arm_smooth("DDPO")) == (3, 1)
    assert alignprop.FULL.arm_batches("DDPO") == (31, 32)
    with pytest.raises(ValueError, match="ddpo_batch_size: expected a divisor of the budget"):
        dataclasses.replace(cfg, ddpo_batch_size=40)


@pytest.mark.slow
def test_alignprop_improves_brightness_faster_than_ddpo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = dataclasses.replace(alignprop.QUICK, rewards=("brightness",), diversity_reward="")
    result = alignprop.run_config(cfg, 1)
    m = result.metrics
    assert m["brightness/AlignProp/improved"] == 1.0
    assert m["brightness/AlignProp/last_quarter_reward"] > m["brightness/DDPO/last_quarter_reward"]
