"""The tw_grpo experiment on a tiny budget: weights favour answer tokens; curves are logged."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("trl")

from varl.experiments import tw_grpo

CFG = dataclasses.replace(
    tw_grpo.QUICK, steps=4, prompts_per_step=2, warm_start_steps=100, log_every=2, seeds=1
)


@pytest.fixture(scope="module")
def warm() -> tuple[object, object]:
    return tw_grpo.warm_model(CFG, seed=0)


def test_tw_arm_weights_answer_above_prefix(warm: tuple[object, object]) -> None:
    out = tw_grpo.run_arm("TW-GRPO+soft", CFG, 0, warm)
    assert out["answer_weight"] > out["prefix_weight"] >= 1.0
    assert out["curves"]["step"] == [2.0, 4.0]
    for key in ("accuracy", "soft_score", "frac_zero_std"):
        assert all(0.0 <= v <= 1.0 for v in out["curves"][key])


def test_arms_start_from_the_same_warm_model(warm: tuple[object, object]) -> None:
    a = tw_grpo.run_arm("GRPO+binary", CFG, 0, warm)
    b = tw_grpo.run_arm("GRPO+binary", CFG, 0, warm)
    assert a["curves"] == b["curves"]  # same seed, same warm start: identical runs on CPU
