"""Clipped policy loss and aggregation: the spec's T2 numbers and the clip behaviour."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch.testing import assert_close

from varl.grpo import losses as losses_module
from varl.grpo.losses import aggregate, clipped_policy_loss

torch.set_num_threads(1)

WEIGHTS = torch.tensor([[1.0, 1.7, 1.070632], [1.0, 1.7, 0.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -1.0], dtype=torch.float64)
LOGP = torch.zeros(2, 3, dtype=torch.float64)


def test_doctests() -> None:
    assert doctest.testmod(losses_module).failed == 0


def test_spec_t2_numbers() -> None:
    weighted = clipped_policy_loss(LOGP, LOGP, ADV, MASK, token_weights=WEIGHTS)
    assert float(aggregate(weighted, MASK, mode="token_mean")) == pytest.approx(
        -0.2141264, abs=1e-7
    )
    plain = clipped_policy_loss(LOGP, LOGP, ADV, MASK)
    assert float(aggregate(plain, MASK, mode="seq_mean")) == pytest.approx(0.0, abs=1e-12)
    assert float(aggregate(plain, MASK, mode="token_mean")) == pytest.approx(-0.2, abs=1e-12)
    assert float(aggregate(plain, MASK, mode="fixed_length", max_len=4)) == pytest.approx(-1 / 8)


def test_asymmetric_clip() -> None:
    old = torch.zeros(1, 2, dtype=torch.float64)
    logp = torch.log(torch.tensor([[1.5, 0.5]], dtype=torch.float64))  # ratios 1.5 and 0.5
    pos = clipped_policy_loss(logp, old, torch.tensor([1.0]).double(), torch.ones(1, 2))
    assert_close(pos, torch.tensor([[-1.28, -0.5]], dtype=torch.float64))  # upper clip at 1 + 0.28
    neg = clipped_policy_loss(logp, old, torch.tensor([-1.0]).double(), torch.ones(1, 2))
    assert_close(neg, torch.tensor([[1.5, 0.8]], dtype=torch.float64))  # lower clip at 1 - 0.2


def test_kl_term_and_gradient() -> None:
    logp = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    ref = torch.log(torch.tensor([[2.0, 1.0]], dtype=torch.float64))
    loss = clipped_policy_loss(
        logp, logp.detach(), torch.zeros(1).double(), torch.ones(1, 2), ref_logp=ref, beta=0.1
    )
    # k3 KL at delta = ln 2: 2 - ln 2 - 1
    assert_close(
        loss.detach(),
        torch.tensor([[0.1 * (1 - torch.log(torch.tensor(2.0)).item()), 0.0]], dtype=torch.float64),
    )
    aggregate(loss, torch.ones(1, 2)).backward()
    assert logp.grad is not None and float(logp.grad.abs().sum()) > 0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="expected equal shapes"):
        clipped_policy_loss(LOGP, LOGP[:, :2], ADV, MASK)
    with pytest.raises(ValueError, match="ref_logp"):
        clipped_policy_loss(LOGP, LOGP, ADV, MASK, beta=0.1)
    with pytest.raises(ValueError, match="token_weights: expected finite, non-negative"):
        clipped_policy_loss(LOGP, LOGP, ADV, MASK, token_weights=-WEIGHTS)
    with pytest.raises(ValueError, match="advantages: contain NaN or inf"):
        clipped_policy_loss(LOGP, LOGP, torch.tensor([float("nan"), 1.0]), MASK)
    with pytest.raises(ValueError, match="token_weights: expected finite"):
        clipped_policy_loss(LOGP, LOGP, ADV, MASK, token_weights=WEIGHTS * float("nan"))
    with pytest.raises(ValueError, match="mode: expected one of"):
        aggregate(LOGP, MASK, mode="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_len"):
        aggregate(LOGP, MASK, mode="fixed_length")
