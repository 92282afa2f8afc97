"""Truncation schedules (spec alignprop_ctrlu.md §6 items 1-2, at the level of the step mask)."""

from __future__ import annotations

import numpy as np
import pytest

from varl.diffusion.truncation import TruncationSchedule


def test_fixed_is_the_last_k_steps() -> None:
    rng = np.random.default_rng(0)
    assert np.flatnonzero(TruncationSchedule.fixed(3).grad_mask(10, rng)).tolist() == [7, 8, 9]
    assert not TruncationSchedule.fixed(0).grad_mask(10, rng).any()
    assert TruncationSchedule.fixed(50).grad_mask(10, rng).all()


def test_uniform_draws_a_contiguous_tail_with_the_right_mean() -> None:
    rng = np.random.default_rng(1)
    schedule = TruncationSchedule.uniform(0, 50)
    ks = []
    for _ in range(2000):
        mask = schedule.grad_mask(50, rng)
        k = int(mask.sum())
        assert mask[50 - k :].all()  # always the last k steps
        ks.append(k)
    # K ~ U{0..50}: mean 25, std sqrt((51^2 - 1) / 12) ~ 14.7; 3 sigma of the mean of 2000
    assert abs(np.mean(ks) - 25.0) < 3 * 14.72 / np.sqrt(2000)


def test_gaussian_threshold_matches_the_truncated_rounded_normal() -> None:
    from scipy.stats import norm

    rng = np.random.default_rng(2)
    ks = np.array([TruncationSchedule.gaussian().grad_mask(50, rng).sum() for _ in range(2000)])
    assert ks.min() >= 1 and ks.max() <= 49
    # tau = round(N(42, 5)) kept in [1, 49]; K = 50 - tau (the 49 cap makes E[K] ~ 8.8, not 8)
    tau = np.arange(1, 50)
    p = norm.cdf((tau + 0.5 - 42) / 5) - norm.cdf((tau - 0.5 - 42) / 5)
    p /= p.sum()
    k = 50 - tau
    mean, std = float(p @ k), float(np.sqrt(p @ (k - p @ k) ** 2))
    assert abs(ks.mean() - mean) < 3 * std / np.sqrt(len(ks))


def test_legacy_per_step_probability_is_linear_in_the_step() -> None:
    rng = np.random.default_rng(3)
    schedule = TruncationSchedule.legacy_per_step(0, 50)
    masks = np.array([schedule.grad_mask(50, rng) for _ in range(4000)])
    expected = (np.arange(50) + 1) / 51  # P(step i keeps its gradient) = (i + 1) / 51
    assert np.all(np.abs(masks.mean(axis=0) - expected) < 4 * np.sqrt(0.25 / 4000))
    contiguous = [bool(m[np.argmax(m) :].all()) for m in masks if m.any()]
    assert not all(contiguous)  # unlike the per-batch schedules, often not a contiguous tail


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="kmin, kmax"):
        TruncationSchedule.uniform(5, 2)
    with pytest.raises(ValueError, match="k: expected an int >= 0"):
        TruncationSchedule.fixed(-1)
    with pytest.raises(ValueError, match="std > 0"):
        TruncationSchedule.gaussian(std=0.0)
    with pytest.raises(ValueError, match="num_steps"):
        TruncationSchedule.fixed(1).grad_mask(0, np.random.default_rng(0))
