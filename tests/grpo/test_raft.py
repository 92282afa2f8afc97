"""RAFT loop: allocation, acceptance filtering, sample accounting, resume, config checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from varl.grpo.raft import (  # noqa: E402
    RaftConfig,
    raft_loss,
    raft_train,
    sample_completions,
)
from varl.grpo.tiny import EOS_ID, PAD_ID, build_char_tokenizer, build_tiny_model  # noqa: E402

torch.set_num_threads(1)
PROMPTS = ["1+1=", "22+3=", "9="]


def _accept_third(completions: list[str], **kwargs: Any) -> list[float]:
    """Deterministic pseudo-random acceptance: about one completion in three."""
    return [float(sum(map(ord, c)) % 3 == 0) for c in completions]


class _Recorder:
    """A reward that records, per call, the prompt index and the number of completions."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.accepted: list[int] = []

    def __call__(self, completions: list[str], idx: list[int], **kwargs: Any) -> list[float]:
        assert len(set(idx)) == 1  # one prompt per call
        self.calls.append((idx[0], len(completions)))
        rewards = _accept_third(completions)
        self.accepted.append(int(sum(rewards)))
        return rewards


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    tok = build_char_tokenizer()
    return build_tiny_model(tok, seed=0), tok


def _params(model: Any) -> list[Any]:
    return [p.detach().clone() for p in model.parameters()]


def test_bad_config() -> None:
    for kwargs, message in (
        ({"allocation": "best"}, "allocation: expected one of"),
        ({"steps": 0}, "steps: expected an int >= 1"),
        ({"budget": 0}, "budget: expected an int >= 1"),
        ({"presamples": 0}, "presamples"),
        ({"refresh": 0}, "refresh"),
        ({"epochs": 1.5}, "epochs"),
        ({"eval_every": -1}, "eval_every: expected an int >= 0"),
        ({"lr": 0.0}, "lr: expected a finite number > 0"),
        ({"temperature": -1.0}, "temperature"),
        ({"alpha": -1e-3}, "alpha"),
        ({"beta": 0.0}, "beta"),
        ({"threshold": float("nan")}, "threshold"),
        ({"param_filter": ""}, "param_filter"),
    ):
        with pytest.raises(ValueError, match=message):
            RaftConfig(**kwargs)


def test_bad_run_arguments(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    with pytest.raises(ValueError, match="prompts: expected at least one prompt"):
        raft_train(model, tok, [], _accept_third, RaftConfig())
    with pytest.raises(ValueError, match="budget: GVM needs at least one sample per prompt"):
        raft_train(model, tok, PROMPTS, _accept_third, RaftConfig(budget=2))
    with pytest.raises(ValueError, match=r"columns\['idx'\]: expected 3 values"):
        raft_train(model, tok, PROMPTS, _accept_third, RaftConfig(), columns={"idx": [0]})


def test_sample_completions_draws_the_requested_counts(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    torch.manual_seed(0)
    out = sample_completions(model, tok, ids, [2, 0, 3], max_new_tokens=4, temperature=1.0)
    assert [len(group) for group in out] == [2, 0, 3]
    for group in out:
        for c in group:
            assert 1 <= len(c) <= 4 and PAD_ID not in c
            assert EOS_ID not in c[:-1]  # cut right after the first EOS


def test_raft_loss_is_a_per_prompt_mean_of_summed_logprobs(tiny: tuple[Any, Any]) -> None:
    model, _ = tiny
    prompts = [[20, 21], [22], [23, 24, 25]]
    accepted = [[[30, EOS_ID], [31]], [], [[32, 33, EOS_ID]]]

    def logp(prompt: list[int], completion: list[int]) -> Any:
        ids = torch.tensor([prompt + completion])
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
        return torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None]).sum()

    with torch.no_grad():
        expected = (
            -(
                (logp(prompts[0], accepted[0][0]) + logp(prompts[0], accepted[0][1])) / 2
                + logp(prompts[2], accepted[2][0])
            )
            / 3
        )
        got = raft_loss(model, prompts, accepted, pad_id=PAD_ID)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)
    assert float(raft_loss(model, prompts, [[], [], []], pad_id=PAD_ID)) == 0.0


@pytest.mark.parametrize("allocation", ["uniform", "gvm"])
def test_allocation_is_respected_and_acceptance_counted(
    tiny: tuple[Any, Any], allocation: str
) -> None:
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    reward = _Recorder()
    cfg = RaftConfig(
        allocation=allocation,
        steps=2,
        budget=10,
        presamples=4,
        refresh=1,
        max_new_tokens=3,
        eval_every=0,
    )
    history = raft_train(model, tok, PROMPTS, reward, cfg, columns={"idx": [0, 1, 2]})
    calls, accepted = reward.calls, reward.accepted
    for step in range(2):
        if allocation == "gvm":  # pre-sampling: N' completions of every prompt, in order
            assert calls[:3] == [(0, 4), (1, 4), (2, 4)]
            calls, accepted = calls[3:], accepted[3:]
        alloc = history.allocation[step]
        assert sum(alloc) == 10
        drawn = [(i, n) for i, n in enumerate(alloc) if n > 0]
        assert calls[: len(drawn)] == drawn  # the E-step drew n_i completions of prompt i
        got = dict.fromkeys(range(3), 0)
        got.update({i: a for (i, _), a in zip(drawn, accepted, strict=False)})
        assert history.accepted[step] == [got[i] for i in range(3)]
        calls, accepted = calls[len(drawn) :], accepted[len(drawn) :]
    assert calls == []
    if allocation == "uniform":
        assert history.allocation == [[4, 3, 3], [4, 3, 3]]  # ties: lowest index first


def test_samples_drawn_counts_presamples_exactly(tiny: tuple[Any, Any]) -> None:
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    reward = _Recorder()
    cfg = RaftConfig(
        allocation="gvm",
        steps=3,
        budget=7,
        presamples=2,
        refresh=2,
        max_new_tokens=3,
        eval_every=0,
    )
    history = raft_train(model, tok, PROMPTS, reward, cfg, columns={"idx": [0, 1, 2]})
    # pre-sampling at steps 0 and 2 (3 prompts x 2), 7 training samples every step
    assert history.presamples == [6, 0, 6]
    assert history.train_samples_drawn == [7, 14, 21]
    assert history.samples_drawn == [13, 20, 33]
    assert sum(n for _, n in reward.calls) == 33
    assert history.eval_step == [] and history.accuracy == []


def test_only_accepted_samples_are_trained_on(tiny: tuple[Any, Any]) -> None:
    tok = tiny[1]
    cfg = RaftConfig(allocation="uniform", steps=1, budget=9, max_new_tokens=3, eval_every=0)
    trained = copy.deepcopy(tiny[0])
    history = raft_train(trained, tok, PROMPTS, _accept_third, cfg)
    assert 0 < sum(history.accepted[0]) < 9  # something accepted, something rejected

    # Replay the iteration by hand: same RNG, same draws, keep only the accepted samples.
    replay = copy.deepcopy(tiny[0])
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    torch.manual_seed(cfg.seed)
    drawn = sample_completions(replay, tok, ids, [3, 3, 3], max_new_tokens=3, temperature=1.0)
    keep = [
        [c for c in group if _accept_third([tok.decode(c, skip_special_tokens=True)])[0] > 0.5]
        for group in drawn
    ]
    assert [len(k) for k in keep] == history.accepted[0]
    opt = torch.optim.Adam(replay.parameters(), lr=cfg.lr)
    replay.train()
    loss = raft_loss(replay, ids, keep, pad_id=PAD_ID)
    assert float(loss.detach()) == pytest.approx(history.loss[0], rel=1e-6)
    loss.backward()
    opt.step()
    for a, b in zip(trained.parameters(), replay.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7)

    # Nothing accepted: no update at all.
    untouched = copy.deepcopy(tiny[0])
    before = _params(untouched)
    history = raft_train(untouched, tok, PROMPTS, lambda c, **k: [0.0] * len(c), cfg)
    assert history.accepted == [[0, 0, 0]] and history.loss == [0.0]
    assert all(torch.equal(a, b) for a, b in zip(before, untouched.parameters(), strict=True))


def test_resume_matches_an_uninterrupted_run(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    tok = tiny[1]
    cfg = RaftConfig(
        allocation="gvm", steps=3, budget=6, presamples=3, refresh=2, max_new_tokens=3, lr=1e-2
    )
    straight = copy.deepcopy(tiny[0])
    full = raft_train(straight, tok, PROMPTS, _accept_third, cfg)

    first = copy.deepcopy(tiny[0])
    raft_train(
        first,
        tok,
        PROMPTS,
        _accept_third,
        RaftConfig(**{**vars(cfg), "steps": 2}),
        checkpoint_dir=tmp_path,
    )
    torch.manual_seed(123)  # a resumed run restores the RNG itself
    resumed = copy.deepcopy(tiny[0])
    history = raft_train(resumed, tok, PROMPTS, _accept_third, cfg, checkpoint_dir=tmp_path)
    assert history == full
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"checkpoint_dir: .* different configuration"):
        raft_train(
            resumed,
            tok,
            PROMPTS,
            _accept_third,
            RaftConfig(**{**vars(cfg), "lr": 1.0}),
            checkpoint_dir=tmp_path,
        )


def test_raft_raises_the_acceptance_rate() -> None:
    """Learning check: accept completions that start with a digit (about 10% at random init)."""
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=0)

    def starts_with_digit(completions: list[str], **kwargs: Any) -> list[float]:
        return [float(c[:1].isdigit()) for c in completions]

    cfg = RaftConfig(
        allocation="uniform", steps=8, budget=48, max_new_tokens=2, lr=1e-2, eval_every=0
    )
    history = raft_train(model, tok, PROMPTS, starts_with_digit, cfg)
    first, last = sum(history.accepted[0]), sum(history.accepted[-1])
    assert last >= 3 * max(first, 1)
