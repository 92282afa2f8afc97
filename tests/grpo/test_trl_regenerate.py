"""RLPR std filter in its DAPO form: filtered groups replaced by fresh ones, capped, resumable."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from transformers import TrainerCallback  # noqa: E402

from varl.grpo.regenerate import RefillStream, concat_rows, fill_filtered_groups  # noqa: E402
from varl.grpo.tiny import (  # noqa: E402
    QUIET_CPU_TRAINER_ARGS,
    build_char_tokenizer,
    build_tiny_model,
    multi_answer_task,
)
from varl.grpo.trl import VarlGRPOConfig, VarlGRPOTrainer  # noqa: E402

torch.set_num_threads(1)
G = 4
PAD = 0


# ---------------------------------------------------------------- pure pieces, fake batches


def _batch(group_ids: list[int], width: int = 3) -> dict[str, Any]:
    """A fake trl batch of len(group_ids) groups of G rows; every token of a row is its group id.

    Prompts are ``width`` long (left-padded by one), completions ``width`` long (right-padded).
    """
    rows = torch.tensor(group_ids).repeat_interleave(G)
    n = rows.numel()
    prompt_mask = torch.ones(n, width, dtype=torch.long)
    prompt_mask[:, 0] = 0
    completion_mask = torch.ones(n, width, dtype=torch.long)
    completion_mask[:, -1] = 0
    return {
        "prompt_ids": rows[:, None].repeat(1, width) * prompt_mask,
        "prompt_mask": prompt_mask,
        "completion_ids": rows[:, None].repeat(1, width) * completion_mask,
        "completion_mask": completion_mask,
        "advantages": torch.ones(n),
        "num_items_in_batch": completion_mask.sum(),
    }


def _groups(batch: dict[str, Any]) -> list[int]:
    ids: list[int] = batch["completion_ids"][::G, 0].tolist()
    return ids


def test_fill_replaces_filtered_groups_until_full() -> None:
    draws: list[int] = []
    fresh = iter([([20, 21], [0.8, 0.1]), ([30], [0.7])])

    def draw(k: int) -> tuple[dict[str, Any], np.ndarray]:
        draws.append(k)
        ids, stds = next(fresh)
        return _batch(ids, width=4 + len(draws)), np.array(stds)

    first = _batch([10, 11, 12])
    result = fill_filtered_groups(
        first,
        np.array([0.1, 0.9, 0.2]),
        draw,
        threshold=0.5,
        max_rounds=5,
        group_size=G,
        pad_token_id=PAD,
    )
    assert draws == [2, 1]  # exactly the missing groups, round after round
    assert result.rounds == 2 and result.masked_groups == 0
    np.testing.assert_array_equal(result.stds, [0.1, 0.9, 0.2, 0.8, 0.1, 0.7])
    batch = result.batch
    assert _groups(batch) == [11, 20, 30]  # kept groups only, in generation order
    assert batch["completion_ids"].shape == (3 * G, 6)  # re-padded to the widest round
    assert batch["prompt_ids"].shape == (3 * G, 6)
    # prompts stay left-padded, completions right-padded
    assert batch["prompt_ids"][0].tolist() == [0, 0, 0, 0, 11, 11]
    assert batch["prompt_mask"][0].tolist() == [0, 0, 0, 0, 1, 1]
    assert batch["completion_ids"][0].tolist() == [11, 11, 0, 0, 0, 0]
    assert batch["completion_ids"][-1].tolist() == [30, 30, 30, 30, 30, 0]
    assert (
        int(batch["num_items_in_batch"])
        == int(batch["completion_mask"].sum())
        == 4 * 2 + 4 * 4 + 4 * 5
    )
    assert torch.all(batch["advantages"] == 1)


def test_fill_cap_is_respected_and_the_rest_masked() -> None:
    draws: list[int] = []

    def draw(k: int) -> tuple[dict[str, Any], np.ndarray]:
        draws.append(k)
        return _batch([100 + len(draws)] * k), np.full(k, 0.1)

    first = _batch([1, 2, 3])
    stds = np.array([0.0, 0.9, 0.0])
    result = fill_filtered_groups(
        first, stds, draw, threshold=0.5, max_rounds=2, group_size=G, pad_token_id=PAD
    )
    assert draws == [2, 2] and result.rounds == 2 and result.masked_groups == 2
    assert _groups(result.batch) == [2, 102, 102]  # the last round's filtered groups fill in
    adv = result.batch["advantages"].view(-1, G)
    assert torch.all(adv[0] == 1) and torch.all(adv[1:] == 0)
    assert result.stds.size == 7
    # no rounds allowed: the first batch's filtered groups are masked in place of fresh ones
    none = fill_filtered_groups(
        first, stds, draw, threshold=0.5, max_rounds=0, group_size=G, pad_token_id=PAD
    )
    assert len(draws) == 2 and none.rounds == 0 and none.masked_groups == 2
    assert _groups(none.batch) == [2, 1, 3]
    assert none.batch["advantages"].view(-1, G).sum(1).tolist() == [4.0, 0.0, 0.0]
    # warm-up (no threshold) keeps everything and never draws
    warm = fill_filtered_groups(
        first, stds, draw, threshold=None, max_rounds=3, group_size=G, pad_token_id=PAD
    )
    assert len(draws) == 2 and warm.rounds == 0 and _groups(warm.batch) == [1, 2, 3]


def test_fill_and_concat_validation() -> None:
    first = _batch([1])

    def bad_draw(k: int) -> tuple[dict[str, Any], np.ndarray]:
        return _batch([2] * (k + 1)), np.zeros(k)

    with pytest.raises(ValueError, match="max_rounds: expected an int >= 0"):
        fill_filtered_groups(
            first, np.zeros(1), bad_draw, threshold=1.0, max_rounds=-1, group_size=G, pad_token_id=0
        )
    with pytest.raises(ValueError, match="group_size: expected an int >= 1"):
        fill_filtered_groups(
            first, np.zeros(1), bad_draw, threshold=1.0, max_rounds=1, group_size=0, pad_token_id=0
        )
    with pytest.raises(ValueError, match="draw: expected 1 groups of 4 rows"):
        fill_filtered_groups(
            first, np.zeros(1), bad_draw, threshold=1.0, max_rounds=1, group_size=G, pad_token_id=0
        )
    with pytest.raises(ValueError, match="pieces: expected at least one"):
        concat_rows([], pad_token_id=0)
    image = first | {"pixel_values": torch.zeros(G, 3)}
    with pytest.raises(ValueError, match="multimodal batches cannot be merged"):
        concat_rows([(image, torch.arange(G))], pad_token_id=0)


def test_refill_stream_is_seeded_and_resumable() -> None:
    stream = RefillStream(5, seed=3)
    head = stream.take(3)
    state = stream.state_dict()
    tail = stream.take(9)
    assert sorted(head + tail[:2]) == [0, 1, 2, 3, 4]  # one permutation per pass
    assert sorted(tail[2:7]) == [0, 1, 2, 3, 4]
    again = RefillStream(5, seed=0)
    again.load_state_dict(state)
    assert again.take(9) == tail
    assert RefillStream(5, seed=3).take(12) == head + tail
    # not the permutation trl's RepeatSampler draws first from the same training seed
    trl_first = torch.randperm(8, generator=torch.Generator().manual_seed(0)).tolist()
    assert RefillStream(8, seed=0).take(8) != trl_first
    with pytest.raises(ValueError, match="saved for a dataset of 5 rows"):
        RefillStream(6).load_state_dict(state)
    with pytest.raises(ValueError, match="size: expected an int >= 1"):
        RefillStream(0)
    with pytest.raises(ValueError, match="k: expected an int >= 0"):
        stream.take(-1)


# ---------------------------------------------------------------- inside trl


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    """The tiny model, untrained: its random completions make rewards vary enough."""
    tok = build_char_tokenizer()
    return build_tiny_model(tok, seed=0), tok


def half_constant(prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
    """0 for every prompt whose option A is marked (std 0: always filtered), varied otherwise."""
    return [
        0.0 if p.split("? ")[1].startswith("+") else float(sum(map(ord, c)) % 7)
        for p, c in zip(prompts, completions, strict=True)
    ]


def _config(tmp_path: Path, **kwargs: Any) -> VarlGRPOConfig:
    base: dict[str, Any] = dict(
        **QUIET_CPU_TRAINER_ARGS,
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        num_generations=G,
        max_completion_length=12,
        learning_rate=1e-3,
        max_steps=2,
        logging_steps=1,
        seed=0,
        loss_type="bnpo",
        std_filter=True,
        std_filter_mode="regenerate",
        std_filter_beta=0.01,
        std_filter_warmup_steps=1,
    )
    return VarlGRPOConfig(**(base | kwargs))


def _trainer(model: Any, tok: Any, args: VarlGRPOConfig) -> Any:
    return VarlGRPOTrainer(
        model=copy.deepcopy(model),
        processing_class=tok,
        reward_funcs=[half_constant],
        args=args,
        train_dataset=datasets.Dataset.from_list(multi_answer_task()[:8]),
    )


def _count_generations(trainer: VarlGRPOTrainer) -> list[list[str]]:
    calls: list[list[str]] = []
    original = trainer._generate

    def counted(prompts: list[Any]) -> Any:
        calls.append(list(prompts))
        return original(prompts)

    trainer._generate = counted  # type: ignore[method-assign]
    return calls


def test_regeneration_fills_the_batch_with_groups_above_threshold(
    tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    model, tok = tiny
    trainer = _trainer(model, tok, _config(tmp_path, std_filter_max_rounds=20))
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()
    loader = iter(trainer.get_train_dataloader())
    calls = _count_generations(trainer)
    trainer._generate_and_score_completions(next(loader))  # warm-up: seeds the EMA, no rounds
    assert len(calls) == 1 and trainer._metrics["train"]["std_filter/regen_rounds"] == [0.0]
    threshold = trainer.std_filter.threshold
    assert threshold is not None and threshold > 0
    ema = trainer.std_filter.ema

    batch = next(loader)
    out = trainer._generate_and_score_completions(batch)
    metrics = trainer._metrics["train"]
    rounds = int(metrics["std_filter/regen_rounds"][-1])
    assert len(calls) == 2 + rounds and rounds >= 1  # some first-batch prompts are constant
    assert [len(c) for c in calls[1:]] == [16] + [len(c) for c in calls[2:]]
    assert all(len(c) % G == 0 for c in calls)
    assert metrics["std_filter/masked_groups"][-1] == 0.0
    assert metrics["std_filter/generated_groups"][-1] == sum(len(c) for c in calls[1:]) / G
    # the batch is full: 4 groups of G, every one from a varied prompt and above threshold
    assert out["completion_ids"].size(0) == 16 and out["advantages"].shape == (16,)
    prompts = tok.batch_decode(out["prompt_ids"], skip_special_tokens=True)
    completions = tok.batch_decode(out["completion_ids"], skip_special_tokens=True)
    rewards = torch.tensor(half_constant(prompts, completions)).view(-1, G)
    assert torch.all(rewards.std(dim=1) >= threshold)
    assert all(p == prompts[i - i % G] for i, p in enumerate(prompts))  # whole groups
    # the advantages are trl's group advantages of the kept groups
    expected = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)
    torch.testing.assert_close(out["advantages"].view(-1, G), expected, atol=1e-5, rtol=1e-5)
    assert int(out["num_items_in_batch"]) == int(out["completion_mask"].sum())
    # the EMA moved once, with the mean std of every group generated in the step
    generated = metrics["std_filter/generated_groups"][-1]
    assert trainer.std_filter.steps == 2 and generated > 4
    assert trainer.std_filter.ema != ema


def test_round_cap_is_respected_and_counted(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    trainer = _trainer(model, tok, _config(tmp_path, std_filter_max_rounds=2))
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()
    f = trainer.std_filter
    assert f is not None
    state = f.state_dict() | {"steps": 1, "warmup_means": [1.0], "ema": 1e6}
    f.load_state_dict(state)  # a threshold no group can reach
    calls = _count_generations(trainer)
    out = trainer._generate_and_score_completions(next(iter(trainer.get_train_dataloader())))
    assert [len(c) for c in calls] == [16, 16, 16]  # first batch + 2 capped rounds of 4 groups
    metrics = trainer._metrics["train"]
    assert metrics["std_filter/regen_rounds"] == [2.0]
    assert metrics["std_filter/masked_groups"] == [4.0]
    assert metrics["std_filter/kept_frac"] == [0.0]
    assert out["completion_ids"].size(0) == 16 and torch.all(out["advantages"] == 0)


class _StopAt(TrainerCallback):
    """Stops training after ``step`` optimiser steps, as if the run had been killed there."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def test_regeneration_resumes_with_the_saved_filter_and_stream(
    tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    model, tok = tiny
    settings = dict(max_steps=3, save_strategy="steps", save_steps=1, std_filter_max_rounds=3)
    killed = _trainer(model, tok, _config(tmp_path / "run", **settings))
    killed.add_callback(_StopAt(2))
    killed.train()
    assert killed.state.global_step == 2
    assert not (tmp_path / "run" / "checkpoint-3").exists()
    saved = json.loads((tmp_path / "run" / "checkpoint-2" / "varl_state.json").read_text())
    assert set(saved) == {"std_filter", "std_filter_refill"}
    assert saved["std_filter"]["ema"] is not None and saved["std_filter"]["steps"] == 2

    resumed = _trainer(model, tok, _config(tmp_path / "run", **settings))
    original_train = trl.GRPOTrainer.train
    seen: dict[str, Any] = {}

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:  # the state right after restoring
        seen["filter"] = self.std_filter.state_dict()
        seen["refill"] = self.refill.state_dict()
        return original_train(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trl.GRPOTrainer, "train", spy)
        resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    assert seen == {"filter": saved["std_filter"], "refill": saved["std_filter_refill"]}
    assert resumed.state.global_step == 3
    again = json.loads((tmp_path / "run" / "checkpoint-3" / "varl_state.json").read_text())
    # training went on from the restored state: one more filter step, an EMA moved from the saved
    # one, and the refill stream further along the same seeded permutations
    assert again["std_filter"]["steps"] == 3
    assert again["std_filter"]["ema"] != saved["std_filter"]["ema"]
    assert again["std_filter"]["warmup_means"] == saved["std_filter"]["warmup_means"]
    drawn = resumed.state.log_history[-2]["std_filter/generated_groups"] - 4
    assert drawn > 0
    stream = RefillStream(8, seed=0)
    stream.load_state_dict(saved["std_filter_refill"])
    stream.take(int(drawn))
    assert again["std_filter_refill"] == stream.state_dict()


def test_regenerate_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="std_filter_mode: expected one of"):
        _config(tmp_path, std_filter_mode="drop")
    with pytest.raises(ValueError, match="std_filter_max_rounds: expected an int >= 0"):
        _config(tmp_path, std_filter_max_rounds=-1)
    with pytest.raises(ValueError, match="std_filter_mode: 'regenerate' needs std_filter=True"):
        _config(tmp_path, std_filter=False)
    with pytest.raises(ValueError, match="cannot be combined with scale_rewards='batch'"):
        _config(tmp_path, scale_rewards="batch")
