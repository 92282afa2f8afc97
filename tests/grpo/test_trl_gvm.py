"""GVM allocation inside VarlGRPOTrainer: exact counts, variable groups, refresh and resume."""

from __future__ import annotations

import copy
import doctest
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from transformers import TrainerCallback  # noqa: E402

from varl.grpo import gvm_sampling  # noqa: E402
from varl.grpo.advantages import group_advantages, variable_group_advantages  # noqa: E402
from varl.grpo.gvm_sampling import GVMEstimates, allocate_budget  # noqa: E402
from varl.grpo.tiny import (  # noqa: E402
    QUIET_CPU_TRAINER_ARGS,
    arithmetic_task,
    build_char_tokenizer,
    build_tiny_model,
)
from varl.grpo.trl import VarlGRPOConfig, VarlGRPOTrainer  # noqa: E402

torch.set_num_threads(1)
G = 4


def test_doctests() -> None:
    assert doctest.testmod(gvm_sampling).failed == 0


# ---------------------------------------------------------------- pure pieces


def test_variable_group_advantages_hand_example() -> None:
    # spec gvm_rlpr.md §6.1 test 8: rewards [1, 0, 0] -> mean 1/3, unbiased std 0.57735
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    sizes = [3, 0, 1, 2, 2]
    adv = variable_group_advantages(r, sizes, eps=1e-6)
    s = 1 / np.sqrt(3)  # std of [1, 0, 0]; std of [0, 1] is 1/sqrt(2)
    expected = [2 / 3 / (s + 1e-6), -1 / 3 / (s + 1e-6), -1 / 3 / (s + 1e-6), 0.0]
    expected += [-0.5 / (2**-0.5 + 1e-6), 0.5 / (2**-0.5 + 1e-6), 0.0, 0.0]
    np.testing.assert_allclose(adv.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(adv[:3].numpy(), [1.1547, -0.57735, -0.57735], atol=1e-4)
    # the reference's singleton rule (mean 0, std 1): the raw reward
    raw = variable_group_advantages(r, sizes, eps=1e-6, singleton="raw")
    assert raw[3].item() == pytest.approx(1 / (1 + 1e-6))
    torch.testing.assert_close(raw[[0, 1, 2, 4, 5, 6, 7]], adv[[0, 1, 2, 4, 5, 6, 7]])
    # "none" only centres; "batch" divides by the std of all rewards
    centred = variable_group_advantages(r, sizes, scale="none")
    np.testing.assert_allclose(centred.numpy(), [2 / 3, -1 / 3, -1 / 3, 0, -0.5, 0.5, 0, 0])
    batch = variable_group_advantages(r, sizes, scale="batch", eps=0.0)
    np.testing.assert_allclose(batch.numpy(), centred.numpy() / r.std().item())
    # an unscored completion (NaN) gets 0 and leaves its group's statistics
    nan = variable_group_advantages(torch.tensor([1.0, float("nan"), 0.0]), [3], eps=0.0)
    np.testing.assert_allclose(nan.numpy(), [2**-0.5, 0.0, -(2**-0.5)], atol=1e-6)
    # equal to fixed-size GRPO when every group has the same size
    grid = torch.rand(3, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        variable_group_advantages(grid.reshape(-1), [4, 4, 4]), group_advantages(grid).reshape(-1)
    )
    assert variable_group_advantages(torch.zeros(0), [0, 0]).numel() == 0


def test_variable_group_advantages_validation() -> None:
    with pytest.raises(TypeError, match="rewards: expected a floating-point"):
        variable_group_advantages(torch.tensor([1, 0]), [2])
    with pytest.raises(ValueError, match=r"rewards: expected shape \[N\]"):
        variable_group_advantages(torch.zeros(2, 2), [4])
    with pytest.raises(ValueError, match="group_sizes: expected sizes summing to the 3"):
        variable_group_advantages(torch.zeros(3), [2, 2])
    with pytest.raises(ValueError, match="group_sizes: expected ints >= 0"):
        variable_group_advantages(torch.zeros(3), [4, -1])
    with pytest.raises(ValueError, match="singleton: expected 'zero' or 'raw'"):
        variable_group_advantages(torch.zeros(3), [3], singleton="one")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rewards: contains inf"):
        variable_group_advantages(torch.tensor([1.0, float("inf")]), [2])


def test_estimates_refresh_and_state() -> None:
    est = GVMEstimates(refresh_steps=3)
    assert est.stale(["x", "y"], step=5) == [0, 1]
    est.update(["x", "y"], [0.25, 1.0], [1.0, 2.0], step=5)
    assert est.stale(["x", "y"], step=7) == [] and est.stale(["y"], step=8) == [0]
    rates, norms = est.get(["y", "x"])
    assert rates.tolist() == [1.0, 0.25] and norms.tolist() == [2.0, 1.0]
    copy_ = GVMEstimates()
    copy_.load_state_dict(json.loads(json.dumps(est.state_dict())))
    assert copy_.table == est.table and copy_.refresh_steps == 3
    with pytest.raises(KeyError, match="no GVM estimate"):
        est.get(["z"])
    with pytest.raises(ValueError, match="refresh_steps: expected an int >= 1"):
        GVMEstimates(0)
    with pytest.raises(ValueError, match="accept_rate, grad_norm: expected rates in"):
        est.update(["x"], [1.5], [1.0], step=0)
    with pytest.raises(ValueError, match="state: missing keys"):
        est.load_state_dict({"estimates": {}})


def test_allocate_budget() -> None:
    # spec §6.1 test 1: n = [8, 8, 0, 0]
    counts, fallback = allocate_budget([0.25, 1.0, 0.5, 0.0], [1.0, 2.0, 0.0, 1.0], 16)
    assert counts.tolist() == [8, 8, 0, 0] and not fallback
    counts, fallback = allocate_budget([0.0, 0.0], [1.0, 0.0], 5)  # nothing accepted: uniform
    assert counts.tolist() == [3, 2] and fallback
    with pytest.raises(ValueError, match="budget: expected an int >= 3"):
        allocate_budget([0.5] * 3, [1.0] * 3, 2)


# ---------------------------------------------------------------- inside trl


def digit_third(completions: list[str], **kwargs: Any) -> list[float]:
    """Accepts about a third of random completions, by their character sum."""
    return [float(sum(map(ord, c)) % 3 == 0) for c in completions]


def _config(tmp_path: Path, **kwargs: Any) -> VarlGRPOConfig:
    base: dict[str, Any] = dict(
        **QUIET_CPU_TRAINER_ARGS,
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        num_generations=G,
        max_completion_length=6,
        learning_rate=1e-3,
        max_steps=2,
        logging_steps=1,
        seed=0,
        loss_type="bnpo",
        sample_allocation="gvm",
        gvm_presample_count=6,
        gvm_refresh_steps=2,
    )
    return VarlGRPOConfig(**(base | kwargs))


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    tok = build_char_tokenizer()
    return build_tiny_model(tok, seed=0), tok


def _trainer(tiny: tuple[Any, Any], args: VarlGRPOConfig) -> Any:
    model, tok = tiny
    return VarlGRPOTrainer(
        model=copy.deepcopy(model),
        processing_class=tok,
        reward_funcs=[digit_third],
        args=args,
        train_dataset=datasets.Dataset.from_list(arithmetic_task(8, seed=1)),
    )


def test_gvm_generates_exactly_the_allocated_counts(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    trainer = _trainer(tiny, _config(tmp_path))
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()
    calls: list[list[str]] = []
    original = trainer._generate

    def counted(prompts: list[str]) -> Any:
        calls.append(list(prompts))
        return original(prompts)

    trainer._generate = counted
    batch = next(iter(trainer.get_train_dataloader()))
    keys = [row["prompt"] for row in batch[::G]]
    assert len(batch) == 16 and len(set(keys)) == 4
    out = trainer._generate_and_score_completions(batch)

    estimates = trainer.gvm_estimates
    assert estimates is not None and len(estimates) == 4
    rates, norms = estimates.get(keys)
    counts, fallback = allocate_budget(rates, norms, 16)
    assert not fallback and counts.tolist() != [G] * 4  # GVM moved budget between prompts
    # one generation call, exactly n_i rows of prompt i, B = 16 in total: nothing thrown away
    assert len(calls) == 1 and len(calls[0]) == 16 == int(counts.sum())
    assert calls[0] == [k for k, n in zip(keys, counts.tolist(), strict=True) for _ in range(n)]
    assert Counter(calls[0]) == {k: n for k, n in zip(keys, counts.tolist(), strict=True) if n}
    assert out["completion_ids"].size(0) == 16 and out["advantages"].shape == (16,)

    # the advantages are GRPO's over the variable groups, recomputed here from the texts
    texts = trainer.processing_class.batch_decode(out["completion_ids"], skip_special_tokens=True)
    rewards = torch.tensor(digit_third(texts))
    start, expected = 0, []
    for n in counts.tolist():
        r = rewards[start : start + n]
        start += n
        if n == 1:
            expected.append(torch.zeros(1))
        elif n > 1:
            expected.append((r - r.mean()) / (r.std() + 1e-4))
    torch.testing.assert_close(out["advantages"], torch.cat(expected))

    metrics = trainer._metrics["train"]
    assert metrics["gvm/presampled_prompts"] == [4.0]
    assert metrics["gvm/presample_completions"] == [24.0]
    assert metrics["gvm/count_max"] == [float(counts.max())]
    assert metrics["gvm/zero_count_frac"] == [float(np.mean(counts == 0))]
    assert metrics["gvm/uniform_fallback"] == [0.0]

    # estimates are reused until they are gvm_refresh_steps old, then pre-sampled again
    trainer._generate_and_score_completions(batch)
    assert metrics["gvm/presampled_prompts"][-1] == 0.0 and len(calls[-1]) == 16
    trainer.state.global_step = 2
    trainer._generate_and_score_completions(batch)
    assert metrics["gvm/presampled_prompts"][-1] == 4.0
    assert {s for _, _, s in estimates.table.values()} == {2}


class _StopAt(TrainerCallback):
    """Stops training after ``step`` optimiser steps, as if the run had been killed there."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def test_gvm_training_resumes_with_the_saved_estimates(
    tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    settings = dict(max_steps=3, save_strategy="steps", save_steps=1, per_device_train_batch_size=8)
    killed = _trainer(tiny, _config(tmp_path, **settings))
    killed.add_callback(_StopAt(2))
    before = {n: p.detach().clone() for n, p in killed.model.named_parameters()}
    killed.train()
    assert killed.state.global_step == 2 and not (tmp_path / "checkpoint-3").exists()
    assert any(not torch.equal(p, before[n]) for n, p in killed.model.named_parameters())
    logged = [h for h in killed.state.log_history if "gvm/count_max" in h]
    assert len(logged) == 2 and all(h["gvm/presampled_prompts"] >= 1 for h in logged)
    saved = json.loads((tmp_path / "checkpoint-2" / "varl_state.json").read_text())
    assert set(saved) == {"gvm_estimates"}
    assert saved["gvm_estimates"]["estimates"] == {
        k: {"accept_rate": p, "grad_norm": g, "step": s}
        for k, (p, g, s) in killed.gvm_estimates.table.items()
    }

    resumed = _trainer(tiny, _config(tmp_path, **settings))
    original_train = trl.GRPOTrainer.train
    seen: dict[str, Any] = {}

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:  # the state right after restoring
        seen["gvm"] = self.gvm_estimates.state_dict()
        return original_train(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trl.GRPOTrainer, "train", spy)
        resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert seen["gvm"] == saved["gvm_estimates"]
    assert resumed.state.global_step == 3
    again = json.loads((tmp_path / "checkpoint-3" / "varl_state.json").read_text())
    steps = {e["step"] for e in again["gvm_estimates"]["estimates"].values()}
    assert max(steps) >= 2  # estimates refreshed after the resume (refresh every 2 steps)
    # the restored estimates live on; the prompts of step 3 were estimated at step 2
    old = {k: v for k, v in again["gvm_estimates"]["estimates"].items() if v["step"] < 2}
    assert old == saved["gvm_estimates"]["estimates"]
    assert steps - {0, 1} == {2}

    # a checkpoint without the estimates cannot silently restart them
    (tmp_path / "checkpoint-2" / "varl_state.json").write_text("{}")
    fresh = _trainer(tiny, _config(tmp_path, **settings))
    with pytest.raises(ValueError, match="has no 'gvm_estimates'"):
        fresh.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))


def test_gvm_config_validation(tmp_path: Path) -> None:
    cases: dict[str, dict[str, Any]] = {
        "sample_allocation: expected one of": dict(sample_allocation="neyman"),
        "gvm_refresh_steps: expected an int >= 1": dict(gvm_refresh_steps=0),
        "gvm_presample_count: expected an int >= 1": dict(gvm_presample_count=0),
        "gvm_accept_threshold: expected a finite number": dict(gvm_accept_threshold=float("nan")),
        "gvm_alpha: expected a finite number >= 0": dict(gvm_alpha=-1.0),
        "gvm_beta: expected a finite number > 0": dict(gvm_beta=0.0),
        "gvm_param_filter: expected a non-empty string": dict(gvm_param_filter=""),
        "sample_allocation: 'gvm' makes groups of different sizes": dict(token_weighting="tw_grpo"),
        "sample_allocation: 'gvm' cannot be combined with std_filter": dict(std_filter=True),
        "sample_allocation: 'gvm' needs multi_objective_aggregation": dict(
            multi_objective_aggregation="normalize_then_sum"
        ),
        "sample_allocation: 'gvm' cannot be combined with use_vllm": dict(use_vllm=True),
    }
    for message, bad in cases.items():
        with pytest.raises(ValueError, match=message):
            _config(tmp_path, **bad)
    assert _config(tmp_path, sample_allocation="uniform").sample_allocation == "uniform"


def test_gvm_rejects_conversational_prompts(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    trainer = _trainer(tiny, _config(tmp_path))
    trainer.model.train()
    rows = [{"prompt": [{"role": "user", "content": "1+1="}], "solution": "2"}] * 16
    with pytest.raises(ValueError, match="'gvm' needs plain-text prompts"):
        trainer._generate_and_score_completions(rows)
