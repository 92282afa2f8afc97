"""group_advantages and group_reward_stats against hand-computed values (spec T5)."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from varl.grpo import advantages as adv_module
from varl.grpo.advantages import group_advantages, group_reward_stats

torch.set_num_threads(1)


def test_doctests() -> None:
    assert doctest.testmod(adv_module).failed == 0


def test_binary_group_tw_grpo_and_easyr1_eps() -> None:
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    # mean 0.25, unbiased std 0.5
    assert_close(
        group_advantages(r, eps=1e-4), torch.tensor([[0.75, -0.25, -0.25, -0.25]]).double() / 0.5001
    )
    expected = torch.tensor([[1.499997, -0.499999, -0.499999, -0.499999]], dtype=torch.float64)
    assert_close(group_advantages(r, eps=1e-6), expected, atol=1e-6, rtol=0)


def test_soft_rewards() -> None:
    r = torch.tensor([[1 / 3, 2 / 3, 1.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[-0.387208, 0.387208, 1.161625, -1.161625]], dtype=torch.float64)
    assert_close(group_advantages(r), expected, atol=1e-6, rtol=0)


def test_equal_rewards_give_zero() -> None:
    assert torch.equal(group_advantages(torch.full((3, 4), 0.7)), torch.zeros(3, 4))
    for scale in ("group", "batch"):  # even without an eps: no 0/0
        out = group_advantages(torch.full((1, 3), 0.7), eps=0.0, scale=scale)  # type: ignore[arg-type]
        assert torch.equal(out, torch.zeros(1, 3))


def test_nan_is_left_out_and_gets_zero() -> None:
    r = torch.tensor([[1.0, float("nan"), 0.0, 0.0, 0.0]], dtype=torch.float64)
    a = group_advantages(r)
    assert a[0, 1] == 0.0
    assert_close(a[0, [0, 2, 3, 4]], group_advantages(r[:, [0, 2, 3, 4]])[0])
    single = group_advantages(torch.tensor([[1.0, float("nan")]]))
    assert torch.equal(single, torch.zeros(1, 2))  # one scored value: std 0, advantage 0


def test_batch_and_none_scaling() -> None:
    r = torch.tensor([[1.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    # centred: [[.5, -.5], [1, -1]]; batch std of [1, 0, 3, 1] (unbiased) = sqrt(1.5833...)
    batch_std = math.sqrt(((1 - 1.25) ** 2 + 1.25**2 + 1.75**2 + 0.25**2) / 3)
    centred = torch.tensor([[0.5, -0.5], [1.0, -1.0]], dtype=torch.float64)
    assert_close(group_advantages(r, scale="batch"), centred / (batch_std + 1e-4))
    assert_close(group_advantages(r, scale="none"), centred)
    assert_close(
        group_advantages(r, unbiased=False, eps=0.0),
        centred / torch.tensor([[0.5], [1.0]]).double(),
    )


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"rewards: expected shape \[B, G\]"):
        group_advantages(torch.zeros(4))
    with pytest.raises(TypeError, match="floating-point"):
        group_advantages(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="inf"):
        group_advantages(torch.tensor([[1.0, float("inf")]]))
    with pytest.raises(ValueError, match="scale: expected one of"):
        group_advantages(torch.zeros(2, 2), scale="grp")  # type: ignore[arg-type]


def test_stats() -> None:
    r = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, float("nan")], [0.0, 0.0, 1.0]])
    s = group_reward_stats(r)
    assert s.mean == pytest.approx(5 / 8)
    assert s.std == pytest.approx((0.0 + math.sqrt(0.5) + math.sqrt(1 / 3)) / 3, rel=1e-6)
    assert s.frac_zero_std == pytest.approx(1 / 3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(-10, 10), min_size=4, max_size=4), min_size=1, max_size=6))
def test_group_means_of_advantages_are_zero(rows: list[list[float]]) -> None:
    a = group_advantages(torch.tensor(rows, dtype=torch.float64))
    assert torch.isfinite(a).all()
    assert_close(a.sum(dim=1), torch.zeros(len(rows), dtype=torch.float64), atol=1e-6, rtol=0)
