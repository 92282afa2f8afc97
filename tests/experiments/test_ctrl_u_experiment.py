"""The ctrl_u experiment on a reduced setting: structure, finiteness, and the paired design."""

from __future__ import annotations

import dataclasses
import math

import pytest

pytest.importorskip("diffusers")

from varl.experiments import ctrl_u
from varl.experiments.result import ExperimentResult

CFG = dataclasses.replace(
    ctrl_u.QUICK,
    corruptions=(0.0, 1.0),
    seeds=1,
    pretrain_steps=10,
    pretrain_batch_size=4,
    segmenter_steps=10,
    stage1_steps=3,
    finetune_steps=2,
    batch_size=2,
    eval_samples=4,
    sample_steps=2,
)


class CountingBar:
    def __init__(self) -> None:
        self.total: float | None = None
        self.n = 0.0

    def reset(self, total: float | None = None) -> None:
        self.total, self.n = total, 0.0

    def update(self, n: float | None = 1) -> bool | None:
        self.n += 1 if n is None else n
        return None


def test_reduced_run_has_every_arm_and_level() -> None:
    bar = CountingBar()
    result = ctrl_u.run(config=CFG, progress=bar)
    assert result.name == "ctrl_u" and result.seeds == [0]
    assert isinstance(result.verdict, bool)
    assert result.verdict_text.startswith("The claim ")
    # one optimiser step per bar unit: pretraining + per seed (stage 1 + 5 fine-tunes)
    assert bar.total == bar.n == 10 + 3 + 5 * 2
    assert len(result.table) == 2 + len(ctrl_u.ARMS) + 1
    for arm in ctrl_u.ARMS:
        for beta in ("0", "1"):
            value = result.metrics[f"{arm}/miou/beta_{beta}"]
            assert 0.0 <= value <= 1.0
    # the diffusion arm does not see the reward model: one run serves every level
    assert result.metrics["diffusion/miou/beta_0"] == result.metrics["diffusion/miou/beta_1"]
    assert result.metrics["gap/beta_0"] == pytest.approx(
        result.metrics["ctrl_u/miou/beta_0"] - result.metrics["controlnet_pp/miou/beta_0"]
    )
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert [s.x for s in result.panels[0].series] == [[0.0, 1.0]] * 3
    assert ExperimentResult.from_dict(result.to_dict()) == result


def test_runs_per_seed_lists_the_diffusion_arm_once() -> None:
    runs = ctrl_u.runs_per_seed(ctrl_u.QUICK)
    assert runs[0] == ("diffusion", 0.0) and len(runs) == 1 + 2 * len(ctrl_u.QUICK.corruptions)
    assert ctrl_u.total_steps(ctrl_u.QUICK, 3) == 400 + 3 * (100 + 7 * 40)


def test_bad_seed_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="seeds"):
        ctrl_u.run(config=CFG, seeds=0)
