"""gvm_raft: RAFT with uniform vs GVM allocation on the tiny arithmetic task (tiny budget)."""

from __future__ import annotations

import dataclasses
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from varl.experiments import gvm_raft  # noqa: E402

CFG = dataclasses.replace(
    gvm_raft.QUICK,
    n_prompts=6,
    steps=3,
    refresh=2,
    presamples=4,
    warm_start_steps=20,
    warm_start_per_item=4,
    seeds=1,
)


def test_exact_match_and_samples_to_reach() -> None:
    assert gvm_raft.exact_match(["12", " 3 ", "4"], solution=["12", "3", "5"]) == [1.0, 1.0, 0.0]
    assert gvm_raft.samples_to_reach([0.0, 100.0, 200.0], [0.1, 0.3, 0.5], 0.4) == 150.0
    assert gvm_raft.samples_to_reach([0.0, 100.0], [0.5, 0.6], 0.4) == 0.0
    assert gvm_raft.samples_to_reach([0.0, 100.0], [0.1, 0.2], 0.4) == math.inf


def test_warm_start_pairs_mix_right_and_wrong_answers() -> None:
    items, pairs = gvm_raft.make_task(CFG, seed=0)
    assert len(items) == 6 and len(pairs) == 6 * 4
    right = {(i["prompt"], i["solution"]) for i in items}
    assert 0 < sum(p in right for p in pairs) < len(pairs)
    assert all(c.isdigit() for _, c in pairs)


def test_expected_accuracy_is_the_probability_of_the_reference() -> None:
    from varl.grpo.tiny import EOS_ID, build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=0)
    items = [{"prompt": "1+2=", "solution": "3"}, {"prompt": "10+10=", "solution": "20"}]
    probs = []
    with torch.no_grad():
        for item in items:
            p = tok(item["prompt"], add_special_tokens=False)["input_ids"]
            a = [*tok(item["solution"], add_special_tokens=False)["input_ids"], EOS_ID]
            logits = model(input_ids=torch.tensor([p + a])).logits[0, len(p) - 1 : -1]
            logp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(a)[:, None]).sum()
            probs.append(float(logp.exp()))
    got = gvm_raft.expected_accuracy(model, tok, items)
    assert got == pytest.approx(sum(probs) / 2, rel=1e-5)


def test_both_arms_share_the_start_and_the_budget() -> None:
    out = gvm_raft.run_seed(CFG, seed=0)
    uniform, gvm = out["uniform"], out["gvm"]
    assert uniform["accuracy"][0] == gvm["accuracy"][0]  # same warm model
    assert uniform["train_samples"] == gvm["train_samples"] == [0.0, 48.0, 96.0, 144.0]
    # GVM pre-samples 6 prompts x 4 at steps 0 and 2
    assert gvm["all_samples"] == [0.0, 72.0, 120.0, 192.0]
    assert uniform["all_samples"] == uniform["train_samples"]
    result = gvm_raft.summarise(CFG, {arm: [curves] for arm, curves in out.items()})
    assert result.name == "gvm_raft" and len(result.table) == 3
    for key in ("ratio_train_samples", "ratio_all_samples", "target_accuracy"):
        assert math.isfinite(result.metrics[key])
    assert result.verdict == (result.metrics["ratio_train_samples"] >= gvm_raft.MIN_SPEEDUP)
    assert result.metrics["target_accuracy"] == min(uniform["accuracy"][-1], gvm["accuracy"][-1])
