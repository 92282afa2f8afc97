"""Ctrl-U primitives: the spec's acceptance items 7-10 (uncertainty map, weighted loss, twins)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from varl.diffusion.ctrl_u import (
    rewarding_mask,
    single_step_x0,
    twin_timesteps,
    uncertainty_map,
    uncertainty_weighted_loss,
)

torch.set_num_threads(1)


def test_identical_twins_give_zero_uncertainty_and_weight_one() -> None:
    logits = torch.randn(2, 5, 4, 4)
    u = uncertainty_map(logits, logits.clone())
    assert torch.equal(u, torch.zeros(2, 4, 4))
    loss = torch.rand(2, 4, 4)
    assert_close(uncertainty_weighted_loss(loss, u), loss.flatten(1).mean(1))


def test_kl_is_local_and_matches_torch_kl_div() -> None:
    a = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    b = a.clone()
    b[0, :, 1, 0] += torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    u = uncertainty_map(a, b)
    assert (u[0, 1, 0] > 0) and torch.count_nonzero(u) == 1
    expected = torch.nn.functional.kl_div(
        torch.log_softmax(a[0, :, 1, 0], 0), torch.log_softmax(b[0, :, 1, 0], 0),
        reduction="sum", log_target=True,
    )  # fmt: skip  # KL(p_b || p_a)
    assert float(u[0, 1, 0]) == pytest.approx(float(expected), rel=1e-6)


def test_l1_variant_and_max_normalisation() -> None:
    a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    b = torch.tensor([[[1.0, 0.0], [3.0, 8.0]]])
    assert torch.equal(uncertainty_map(a, b, kind="l1"), (a - b).abs())
    normed = uncertainty_map(a, b, kind="l1", normalize_max=True)
    assert_close(normed, (a / 4 - b / 8).abs())


def test_scale_placement_per_task_convention() -> None:
    loss = torch.full((1, 1, 2), 2.0)
    u = torch.tensor([[[0.0, 1.0]]])
    seg = uncertainty_weighted_loss(loss, u, scale=0.1, lam=1.0, scale_in_exponent=True)
    # mean(2 * exp(-0.1 u)) + mean(0.1 u) = (2 + 2e^{-0.1}) / 2 + 0.05
    assert float(seg) == pytest.approx((2 + 2 * math.exp(-0.1)) / 2 + 0.05)
    reg = uncertainty_weighted_loss(loss, u, scale=0.1, lam=1.0, scale_in_exponent=False)
    # mean(2 * exp(-u)) + 0.1 * mean(u)
    assert float(reg) == pytest.approx((2 + 2 * math.exp(-1.0)) / 2 + 0.05)


def test_gradient_is_attenuated_by_exp_minus_u_and_flows_into_u() -> None:
    logits = torch.zeros(1, 2, 1, 2, requires_grad=True)
    target = torch.tensor([[[1, 1]]])
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")  # [1, 1, 2]
    u = torch.tensor([[[0.0, 1.5]]], requires_grad=True)
    uncertainty_weighted_loss(ce, u, lam=0.3).sum().backward()
    g = logits.grad[0, 1, 0]  # type: ignore[index]
    assert float(g[1] / g[0]) == pytest.approx(math.exp(-1.5))
    # d/dU: -l * exp(-U) / n + lam / n, so raising U by a little raises the loss by lam/n there
    assert float(u.grad[0, 0, 0]) == pytest.approx((-math.log(2) + 0.3) / 2)  # type: ignore[index]
    detached = torch.tensor([[[0.0, 1.5]]], requires_grad=True)
    uncertainty_weighted_loss(ce.detach(), detached, detach_uncertainty=True).sum()
    assert detached.grad is None


def test_valid_mask_averages_over_labelled_pixels() -> None:
    loss = torch.tensor([[[1.0, 3.0]], [[5.0, 7.0]]])
    mask = torch.tensor([[[1, 0]], [[0, 0]]])
    out = uncertainty_weighted_loss(loss, torch.zeros_like(loss), valid_mask=mask)
    assert out.tolist() == [1.0, 0.0]


def test_twins_window_and_single_step_x0() -> None:
    t = torch.tensor([0, 500, 999])
    assert twin_timesteps(t).tolist() == [1, 501, 999]
    assert rewarding_mask(t, t_max=400).tolist() == [True, False, False]
    z0, eps = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    abar = torch.tensor([0.9, 0.5, 0.01])
    a = abar.reshape(-1, 1, 1, 1)
    z_t = a.sqrt() * z0 + (1 - a).sqrt() * eps
    assert_close(single_step_x0(z_t, eps, abar), z0, atol=1e-4, rtol=1e-4)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="pred_a, pred_b: expected equal shapes"):
        uncertainty_map(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="contain NaN or inf"):
        uncertainty_map(torch.full((1, 2, 1, 1), math.nan), torch.zeros(1, 2, 1, 1))
    with pytest.raises(ValueError, match="kind"):
        uncertainty_map(torch.zeros(1, 1), torch.zeros(1, 1), kind="l2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale, lam"):
        uncertainty_weighted_loss(torch.zeros(1, 2), torch.zeros(1, 2), lam=-1.0)
    with pytest.raises(ValueError, match="alpha_bar_t"):
        single_step_x0(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="t: expected timesteps"):
        twin_timesteps(torch.tensor([1000]))
