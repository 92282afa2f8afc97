"""RLPR in the trainer: splicing, exact rewards, malformed responses, the no-reasoning cache."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

trl = pytest.importorskip("trl")
torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from varl.grpo.rlpr_scoring import (  # noqa: E402
    DEFAULT_ANSWER_PATTERN,
    NoReasoningCache,
    RlprScorer,
    build_scoring_batch,
    compile_answer_pattern,
    encode_splice,
    no_reasoning_splice,
    splice_reference,
)
from varl.grpo.tiny import (  # noqa: E402
    EOS_ID,
    QUIET_CPU_TRAINER_ARGS,
    arithmetic_task,
    build_char_tokenizer,
    build_tiny_model,
    warm_start,
)
from varl.grpo.trl import VarlGRPOConfig, VarlGRPOTrainer  # noqa: E402

torch.set_num_threads(1)
G = 4
PATTERN = compile_answer_pattern(DEFAULT_ANSWER_PATTERN)


@pytest.fixture(scope="module")
def tok() -> Any:
    return build_char_tokenizer()


def _ids(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def _think(item: dict[str, Any]) -> str:
    return f"<think>{item['prompt']}{item['solution']}</think><answer>{item['solution']}</answer>"


@pytest.fixture(scope="module")
def warm_model(tok: Any) -> Any:
    model = build_tiny_model(tok, seed=0)
    items = arithmetic_task(16, max_operand=9, seed=0)
    warm_start(model, tok, [(i["prompt"], _think(i)) for i in items], steps=40, batch_size=16)
    return model


# --- splicing on hand-made token ids ---------------------------------------------------------


def test_splice_on_token_ids_keeps_reasoning_and_masks_only_the_reference(tok: Any) -> None:
    completion_ids = [*_ids(tok, "<think>3+4=8</think><answer> 8 </answer>xx"), EOS_ID]
    text = tok.decode(completion_ids, skip_special_tokens=True)
    splice = splice_reference(text, "12", PATTERN)
    assert splice is not None
    ids, mask = encode_splice(tok, splice, EOS_ID)
    expected = [*_ids(tok, "<think>3+4=8</think><answer> 12 </answer>"), EOS_ID]
    assert ids == expected  # reasoning and the policy's whitespace kept, tail dropped, EOS added
    start = len("<think>3+4=8</think><answer> ")
    assert mask == [0] * start + [1, 1] + [0] * (len(expected) - start - 2)
    # the last answer block is the answer; the earlier one stays as written
    two = splice_reference("<answer>1</answer><answer>2</answer>", "7", PATTERN)
    assert two is not None and two.text == "<answer>1</answer><answer>7</answer>"
    assert two.text[two.start : two.end] == "7"


@pytest.mark.parametrize(
    "text", ["<think>3+4=7</think>", "<answer>7", "<think>a</think><answer> \n </answer>", ""]
)
def test_missing_or_blank_answer_span_is_malformed(text: str) -> None:
    assert splice_reference(text, "7", PATTERN) is None


def test_reference_tokens_are_found_in_context_with_merges() -> None:
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)]
    vocab = {t: i for i, t in enumerate(["<eos>", *chars, "12", ">1"])}
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=[(">", "1"), ("1", "2")], unk_token=None))
    bpe.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>")
    # "12" merges into one token: one masked token.
    ids, mask = encode_splice(fast, no_reasoning_splice("12", "<a> {answer}</a>"), None)
    assert [fast.convert_ids_to_tokens(i) for i, m in zip(ids, mask, strict=True) if m] == ["12"]
    # ">1" straddles the tag and the answer: it overlaps y*, so it is on the mask with "2".
    ids, mask = encode_splice(fast, no_reasoning_splice("12", "<a>{answer}</a>"), 0)
    assert [fast.convert_ids_to_tokens(i) for i, m in zip(ids, mask, strict=True) if m] == [
        ">1",
        "2",
    ]
    assert ids[-1] == 0 and mask[-1] == 0


def test_build_scoring_batch_uses_trl_layout() -> None:
    batch = build_scoring_batch([[5, 6], [7]], [[8], [9, 10, 11]], [[1], [0, 1, 0]], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 8, 0, 0], [0, 7, 9, 10, 11]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]]
    assert batch.answer_mask.tolist() == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="expected non-empty rows"):
        build_scoring_batch([[5]], [[]], [[]], pad_id=0)


# --- exact rewards with a hand-controlled policy ---------------------------------------------


def _fake_policy(tok: Any) -> Any:
    """Every token has probability 0.9 in a row whose text holds a 'z' (reasoning), else 0.3."""
    z = _ids(tok, "z")[0]

    def logprob_fn(ids: Any, mask: Any, n: int) -> Any:
        p = torch.where((ids == z).any(1, keepdim=True), 0.9, 0.3).expand(-1, n)
        return p.log()

    return logprob_fn


def test_scorer_exact_rewards_malformed_zero_and_counted(tok: Any) -> None:
    scorer = RlprScorer(tok)
    completions = [
        "<think>zz</think><answer>5</answer>",  # PR 0.9, PR_0 0.3: 0.9 * 0.6 + 0.1 = 0.64
        "<answer>2</answer>",  # no reasoning, bad format: PR 0.3 - 0.3 -> 0
        "<think>zz</think>",  # malformed
        "<think>zz</think><answer> </answer>",  # malformed (blank answer)
    ]
    prompts = ["1+1="] * 4
    prompt_ids = [_ids(tok, p) for p in prompts]
    scores = scorer.score(prompts, prompt_ids, completions, ["2"] * 4, _fake_policy(tok))
    torch.testing.assert_close(scores.rewards, torch.tensor([0.64, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(scores.p, torch.tensor([0.9, 0.3, 0.0, 0.0]))
    torch.testing.assert_close(scores.p_no_reasoning, torch.full((4,), 0.3))
    assert scores.valid.tolist() == [True, True, False, False]
    metrics = scores.metrics()
    assert metrics["malformed_frac"] == 0.5 and metrics["format_frac"] == 0.25
    assert metrics["p_mean"] == pytest.approx(0.6)
    assert scores.computed_no_reasoning == 1 and scorer.cache.computed == 1  # one distinct pair
    again = scorer.score(prompts, prompt_ids, completions, ["2"] * 4, _fake_policy(tok))
    assert again.computed_no_reasoning == 0 and torch.equal(again.rewards, scores.rewards)

    product = RlprScorer(tok, aggregate="product", format_weight=0.2)
    out = product.score(
        ["3+9="], [_ids(tok, "3+9=")], ["<think>z</think><answer>11</answer>"], ["12"],
        _fake_policy(tok),
    )  # fmt: skip
    # PR = 0.9 * 0.9, PR_0 = 0.3 * 0.3: 0.8 * (0.81 - 0.09) + 0.2 = 0.776
    torch.testing.assert_close(out.rewards, torch.tensor([0.776]))


def test_cache_state_round_trip_and_checks(tok: Any) -> None:
    scorer = RlprScorer(tok)
    scorer.fill_cache(["1+1=", "1+1=", "2+2="], [[1], [1], [2]], ["2", "2", "4"], _fake_policy(tok))
    assert len(scorer.cache) == 2 and scorer.cache.computed == 2
    state = json.loads(json.dumps(scorer.cache.state_dict()))
    restored = NoReasoningCache()
    restored.load_state_dict(state)
    assert restored.values == scorer.cache.values and restored.computed == 0
    lookup = restored.lookup(["2+2="], ["4"])
    torch.testing.assert_close(lookup, torch.tensor([0.3]))
    with pytest.raises(ValueError, match="computed with aggregate='mean'"):
        NoReasoningCache(aggregate="product").load_state_dict(state)
    with pytest.raises(ValueError, match="finite and in"):
        restored.load_state_dict({**state, "values": {"k": 1.5}})
    with pytest.raises(ValueError, match="no entry"):
        restored.lookup(["3+3="], ["6"])


def test_scorer_settings_are_validated(tok: Any) -> None:
    with pytest.raises(ValueError, match="exactly one capturing group"):
        RlprScorer(tok, answer_pattern="<answer>.*</answer>")
    with pytest.raises(ValueError, match="format_weight: expected a number in"):
        RlprScorer(tok, format_weight=1.5)
    with pytest.raises(ValueError, match="aggregate: expected one of"):
        RlprScorer(tok, aggregate="median")
    with pytest.raises(ValueError, match="exactly once"):
        RlprScorer(tok, no_reasoning_template="<answer></answer>")
    with pytest.raises(ValueError, match="reference: expected a non-empty answer"):
        splice_reference("<answer>1</answer>", "  ", PATTERN)


# --- inside VarlGRPOTrainer --------------------------------------------------------------------


def char_sum(completions: list[str], **kwargs: Any) -> list[float]:
    """A reward that varies within groups, so every step updates the policy."""
    return [float(sum(map(ord, c)) % 7) for c in completions]


def _config(tmp_path: Path, **kwargs: Any) -> VarlGRPOConfig:
    base: dict[str, Any] = dict(
        **QUIET_CPU_TRAINER_ARGS,
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=G,
        max_completion_length=30,
        learning_rate=1e-2,
        max_steps=2,
        logging_steps=1,
        seed=0,
        bf16=False,
        loss_type="bnpo",
        reward_mode="rlpr",
    )
    return VarlGRPOConfig(**(base | kwargs))


def _trainer(model: Any, tok: Any, args: VarlGRPOConfig) -> VarlGRPOTrainer:
    data = datasets.Dataset.from_list(arithmetic_task(6, max_operand=9, seed=1) * 2)
    return VarlGRPOTrainer(
        model=copy.deepcopy(model),
        processing_class=tok,
        reward_funcs=[char_sum],
        args=args,
        train_dataset=data,
    )


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reward_mode: expected one of"):
        _config(tmp_path, reward_mode="probability")
    with pytest.raises(ValueError, match="aggregate: expected one of"):
        _config(tmp_path, rlpr_aggregate="median")
    with pytest.raises(ValueError, match="format_weight"):
        _config(tmp_path, rlpr_format_weight=-0.1)
    with pytest.raises(ValueError, match="answer_pattern"):
        _config(tmp_path, rlpr_answer_pattern="(a)(b)")
    with pytest.raises(ValueError, match="rlpr_reference_column"):
        _config(tmp_path, rlpr_reference_column="")
    assert _config(tmp_path, reward_mode="verifier").reward_mode == "verifier"


def test_trainer_reward_equals_a_hand_forward_pass(
    warm_model: Any, tok: Any, tmp_path: Path
) -> None:
    trainer = _trainer(warm_model, tok, _config(tmp_path))
    assert trainer.reward_func_names == ["char_sum", "rlpr"]
    assert trainer.reward_weights.tolist() == [1.0, 1.0]
    prompts = ["12+7=", "10+5="]  # equal lengths: no left padding, so one-row passes match
    completions = ["<think>12+7=19</think><answer>18</answer>", "<think>10+5</think>"]
    logged: dict[str, float] = {}
    rewards = trainer._rlpr_reward(
        prompts=prompts,
        completions=completions,
        completion_ids=None,
        solution=["19", "15"],
        log_metric=logged.__setitem__,
    )
    model = trainer.model

    def answer_prob(prompt: str, response: str, answer: str) -> float:
        ids = [*_ids(tok, prompt + response), EOS_ID]
        start = len(prompt) + response.index("<answer>") + len("<answer>")
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
        probs = [logp[t - 1, ids[t]].exp() for t in range(start, start + len(answer))]
        return float(sum(probs) / len(probs))

    p = answer_prob(prompts[0], "<think>12+7=19</think><answer>19</answer>", "19")
    p0 = answer_prob(prompts[0], "<answer>19</answer>", "19")
    assert rewards[0] == pytest.approx(0.9 * max(p - p0, 0.0) + 0.1, abs=1e-5)
    assert rewards[1] == 0.0  # no answer span: malformed, 0, counted
    assert logged["rlpr/malformed_frac"] == 0.5
    assert logged["rlpr/p_mean"] == pytest.approx(p, abs=1e-5)
    assert math.isclose(logged["rlpr/no_reasoning_computed"], 2.0)  # both prompts, first sight


def test_cache_computed_once_with_initial_policy_and_restored_on_resume(
    warm_model: Any, tok: Any, tmp_path: Path
) -> None:
    args = _config(tmp_path, max_steps=4, save_strategy="steps", save_steps=2)
    trainer = _trainer(warm_model, tok, args)
    trainer.train()
    cache = trainer.rlpr.cache  # type: ignore[union-attr]
    data = trainer.train_dataset
    n_pairs = len({(row["prompt"], row["solution"]) for row in data})
    assert cache.computed == len(cache) == n_pairs  # once per pair, not once per step

    # The values are the initial policy's: a fresh trainer over the initial model agrees ...
    fresh = _trainer(warm_model, tok, args)
    fresh._rlpr_fill_cache()
    assert fresh.rlpr.cache.values == cache.values  # type: ignore[union-attr]
    # ... and the trained policy would have given other values (so the check has teeth).
    later = RlprScorer(tok)
    later.fill_cache(data["prompt"], [_ids(tok, p) for p in data["prompt"]], data["solution"],
                     trainer._policy_logps)  # fmt: skip
    assert later.cache.values.keys() == cache.values.keys()
    assert later.cache.values != cache.values

    logs = [h for h in trainer.state.log_history if "rlpr/p_mean" in h]
    assert len(logs) == 4 and all(h["rlpr/no_reasoning_computed"] == 0 for h in logs)
    assert all(0.0 <= h["rewards/rlpr/mean"] <= 1.0 for h in logs)
    saved = json.loads((tmp_path / "checkpoint-2" / "varl_state.json").read_text())
    assert saved["rlpr_no_reasoning"] == cache.state_dict()

    resumed = _trainer(warm_model, tok, args)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert resumed.rlpr.cache.computed == 0  # type: ignore[union-attr]
    assert resumed.rlpr.cache.values == cache.values  # type: ignore[union-attr]
    assert resumed.state.global_step == 4


def test_resume_without_cache_and_missing_column_fail(
    warm_model: Any, tok: Any, tmp_path: Path
) -> None:
    (tmp_path / "checkpoint-9").mkdir()
    (tmp_path / "checkpoint-9" / "varl_state.json").write_text("{}")
    trainer = _trainer(warm_model, tok, _config(tmp_path))
    with pytest.raises(ValueError, match="has no RLPR no-reasoning cache"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-9"))
    other = _trainer(warm_model, tok, _config(tmp_path, rlpr_reference_column="answer"))
    with pytest.raises(ValueError, match="the dataset has no column 'answer'"):
        other.train()
