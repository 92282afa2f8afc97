"""selection: variance-aware data selection vs the whole pool (tiny budget)."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from varl.experiments import selection  # noqa: E402

CFG = dataclasses.replace(
    selection.QUICK,
    per_kind=4,
    warm_start_steps=30,
    steps=2,
    prompts_per_step=3,
    group_size=4,
    eval_every=1,
    seeds=1,
)


def test_pool_has_three_kinds_with_the_designed_labels() -> None:
    items, pairs = selection.make_pool(CFG, seed=0)
    assert [i["kind"] for i in items[:6]] == ["trivial", "learnable", "impossible"] * 2
    assert len({i["prompt"] for i in items}) == 12  # distinct prompts
    for item in items:
        xy = item["prompt"][2:]
        if item["kind"] == "trivial":
            assert item["prompt"] == "t:" + xy and item["solution"] == xy[1]
        elif item["kind"] == "learnable":
            after = "a" if xy[1] == "z" else chr(ord(xy[1]) + 1)
            assert item["prompt"] == "l:" + xy and item["solution"] == after
        else:
            assert item["prompt"].startswith("l:") and item["solution"] == "?"
    assert len(pairs) == 12 * CFG.warm_start_per_item
    answers = {i["prompt"]: i["solution"] for i in items}
    # trivial prompts are always answered right in the warm start; "?" never appears
    assert all(c == answers[p] for p, c in pairs if p.startswith("t:"))
    assert all(c != "?" for _, c in pairs)


def test_run_seed_selects_and_trains_both_arms() -> None:
    out = selection.run_seed(CFG, seed=0)
    assert out["kept_by_kind"]["impossible"] == 0  # "?" is never sampled
    assert sum(out["kept_by_kind"].values()) == out["summary"]["kept"]
    for arm in selection.ARMS:
        assert out[arm]["step"] == [0.0, 1.0, 2.0]
        assert len(out[arm]["zero_std"]) == 2
        assert all(0.0 <= a <= 1.0 for a in out[arm]["accuracy"])
    assert out["selected"]["accuracy"][0] == out["whole pool"]["accuracy"][0]  # same warm model
    result = selection.summarise(CFG, [out])
    assert result.name == "selection" and len(result.table) == 3
    assert result.verdict == (
        result.metrics["selected/final_accuracy"] > result.metrics["whole pool/final_accuracy"]
    )


def test_grpo_step_leaves_the_model_alone_when_every_group_is_dead() -> None:
    from varl.grpo.tiny import build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    impossible = [{"prompt": "l:ab", "solution": "?", "kind": "impossible"}]
    curves = selection.grpo_train(model, tok, impossible, CFG, 0, impossible)
    assert curves["zero_std"] == [1.0, 1.0]  # all rollouts wrong: zero advantages
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
