"""TW-GRPO token weights: the spec's worked example (T1) and invariants."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from torch.testing import assert_close

from varl.grpo import token_weights as tw_module
from varl.grpo.token_weights import position_divergence, tw_grpo_token_weights

torch.set_num_threads(1)

PROBS = torch.tensor(
    [[[0.5, 0.5], [0.9, 0.1], [0.8, 0.2]], [[0.5, 0.5], [0.1, 0.9], [0.3, 0.7]]],
    dtype=torch.float64,
)
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])


def test_doctests() -> None:
    assert doctest.testmod(tw_module).failed == 0


def test_spec_worked_example() -> None:
    div = position_divergence(PROBS.log(), MASK)
    # position 1 exactly: 2 (cosh(ln 3) - 1) = 4/3
    assert_close(
        div.double(), torch.tensor([0.0, 4 / 3, 0.134537], dtype=torch.float64), atol=1e-6, rtol=0
    )
    w = tw_grpo_token_weights(PROBS.log(), MASK)
    assert_close(
        w.double(),
        torch.tensor([[1.0, 1.7, 1.070632], [1.0, 1.7, 0.0]], dtype=torch.float64),
        atol=1e-6,
        rtol=0,
    )


def test_chunking_and_logits_vs_logprobs_agree() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 11, 50)  # 3 prompts, G=4, T=11, V=50
    mask = (torch.rand(3, 4, 11) > 0.2).long()
    full = tw_grpo_token_weights(logits, mask, chunk_size=None)
    for chunk in (1, 3, 64):
        assert_close(tw_grpo_token_weights(logits, mask, chunk_size=chunk), full)
    assert_close(tw_grpo_token_weights(torch.log_softmax(logits, -1), mask), full)
    # shifting all logits at a position by a constant changes nothing (log-softmax invariance)
    assert_close(
        tw_grpo_token_weights(logits + torch.randn(3, 4, 11, 1), mask), full, atol=1e-5, rtol=0
    )
    # each prompt is normalised on its own
    assert_close(tw_grpo_token_weights(logits[1], mask[1]), full[1])


def test_identical_distributions_give_the_mask() -> None:
    logits = torch.randn(1, 5, 7).expand(4, 5, 7)
    mask = torch.ones(4, 5)
    assert torch.equal(tw_grpo_token_weights(logits, mask), mask)


def test_range_shared_across_group_and_alpha_one() -> None:
    torch.manual_seed(1)
    logits, mask = torch.randn(6, 9, 20), torch.ones(6, 9)
    w = tw_grpo_token_weights(logits, mask, alpha=2.5)
    assert float(w.min()) == pytest.approx(1.0) and float(w.max()) == pytest.approx(2.5)
    assert torch.equal(w, w[:1].expand_as(w))
    assert torch.equal(tw_grpo_token_weights(logits, mask, alpha=1.0), mask)


def test_detached_by_default_and_differentiable_on_request() -> None:
    logits = torch.randn(2, 3, 5, requires_grad=True)
    assert not tw_grpo_token_weights(logits, torch.ones(2, 3)).requires_grad
    w = tw_grpo_token_weights(logits, torch.ones(2, 3), detach=False)
    assert w.requires_grad
    w.sum().backward()
    assert logits.grad is not None


def test_padding_options() -> None:
    # With padding left out, a position where only one completion is real has D = 0.
    div = position_divergence(PROBS.log(), MASK, pad_as_uniform=False)
    assert float(div[2]) == 0.0
    w = tw_grpo_token_weights(
        PROBS.log(), torch.tensor([[1, 1, 0], [1, 1, 0]]), normalize_over="valid"
    )
    assert_close(w.double(), torch.tensor([[1.0, 1.7, 0.0], [1.0, 1.7, 0.0]], dtype=torch.float64))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="logits: contains NaN or inf"):
        tw_grpo_token_weights(torch.tensor([[[math.nan, 0.0]]]), torch.ones(1, 1))
    with pytest.raises(ValueError, match="alpha: expected a finite number >= 1"):
        tw_grpo_token_weights(PROBS.log(), MASK, alpha=0.5)
    with pytest.raises(ValueError, match="alpha: expected a finite number"):
        tw_grpo_token_weights(PROBS.log(), MASK, alpha=math.inf)
    with pytest.raises(ValueError, match="clip: expected a finite number"):
        tw_grpo_token_weights(PROBS.log(), MASK, clip=math.inf)
    with pytest.raises(ValueError, match="chunk_size"):
        tw_grpo_token_weights(PROBS.log(), MASK, chunk_size=0)
    with pytest.raises(ValueError, match=r"mask: expected shape \(2, 3\)"):
        tw_grpo_token_weights(PROBS.log(), MASK[:, :2])
    with pytest.raises(ValueError, match="normalize_over"):
        tw_grpo_token_weights(PROBS.log(), MASK, normalize_over="some")  # type: ignore[arg-type]
