"""The rlpr experiment on a tiny budget: task, AUC, reward quality and one short training arm."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("trl")

from varl.experiments import rlpr

CFG = dataclasses.replace(
    rlpr.QUICK, n_items=16, warm_start_steps=20, auc_prompts=4, eval_prompts=2, steps=3,
    prompts_per_step=2, group_size=4, std_filter_warmup_steps=1, noise_batches=2, seeds=1,
)  # fmt: skip


def test_auc_hand_computed() -> None:
    # positives 0.9, 0.5; negatives 0.2, 0.5: pairs won 1 + 1 + 1 + 0.5 (tie) = 3.5 of 4
    assert rlpr.auc([0.9, 0.2, 0.5, 0.5], [1, 0, 1, 0]) == 0.875
    assert rlpr.auc([0.1, 0.2], [0, 1]) == 1.0 and rlpr.auc([0.1, 0.2], [1, 0]) == 0.0
    assert np.isnan(rlpr.auc([0.1, 0.2], [1, 1]))


def test_warm_start_pairs_follow_the_task_format() -> None:
    items = [{"prompt": "3+4=", "solution": "7"}] * 50
    cfg = dataclasses.replace(rlpr.QUICK, warm_start_correct=0.5, synonym_rate=0.5)
    pairs = rlpr.warm_start_pairs(items, cfg, seed=0, per_item=4)
    assert len(pairs) == 200
    right = [c for _, c in pairs if c.startswith("<think>3+4=7</think>")]
    assert 0.35 < len(right) / len(pairs) < 0.65
    assert "<think>3+4=7</think><answer>07</answer>" in right
    for _, c in pairs:  # the answer always copies the reasoning's result
        z = c[len("<think>3+4=") : c.index("</think>")]
        assert int(c[c.index("<answer>") + 8 : c.index("</answer>")]) == int(z)
    assert rlpr.exact_match([c for _, c in pairs], ["7"] * 200) == [
        float(c.startswith("<think>3+4=7</think>")) for _, c in pairs
    ]


def test_reasoning_correct_reads_the_think_block() -> None:
    texts = ["<think>3+4=7</think><answer>9</answer>", "<think>3+4=8</think><answer>7</answer>"]
    assert rlpr.reasoning_correct(["3+4=", "3+4="], texts) == [1.0, 0.0]
    assert rlpr.exact_match(texts, ["7", "7"]) == [0.0, 1.0]


def test_noise() -> None:
    std, cv = rlpr.noise([1.0, 2.0, 3.0])
    assert std == pytest.approx(1.0) and cv == pytest.approx(0.5)
    assert np.isnan(rlpr.noise([0.0, 0.0])[1])


@pytest.fixture(scope="module")
def warm() -> tuple[object, object, list[dict[str, str]]]:
    return rlpr.warm_model(CFG, seed=0)


def test_reward_quality_on_a_tiny_budget(warm: tuple[object, object, list[dict[str, str]]]) -> None:
    quality = rlpr.reward_quality(*warm, CFG, seed=0)
    assert quality["n"] == CFG.auc_prompts * CFG.group_size
    for key in ("accuracy", "malformed_frac"):
        assert 0.0 <= quality[key] <= 1.0
    for key in ("auc_mean", "auc_product", "auc_geometric"):
        assert np.isnan(quality[key]) or 0.0 <= quality[key] <= 1.0


def test_filter_noise_pairs_filtered_and_unfiltered_gradients(
    warm: tuple[object, object, list[dict[str, str]]],
) -> None:
    out = rlpr.filter_noise(CFG, 0, warm)
    assert len(out["unfiltered"]) == len(out["filtered"]) == CFG.noise_batches
    assert 0.0 <= out["kept_frac"] <= 1.0
    for full, kept in zip(out["unfiltered"], out["filtered"], strict=True):
        assert np.isfinite(full) and full >= 0.0 and kept >= 0.0
        if full == 0.0 or out["kept_frac"] == 1.0:  # masking zero / no advantages changes nothing
            assert kept == pytest.approx(full)


@pytest.mark.slow
def test_one_arm_on_a_tiny_budget(warm: tuple[object, object, list[dict[str, str]]]) -> None:
    out = rlpr.run_arm("RLPR", CFG, 0, warm)
    assert out["curves"]["step"] == [1.0, 2.0, 3.0]
    assert all(g >= 0 for g in out["curves"]["grad_norm"])
    assert 0.0 <= out["final_accuracy"] <= 1.0 and 0.0 <= out["final_reasoning"] <= 1.0
