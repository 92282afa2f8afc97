"""Variance-aware selection (spec T7) and RLPR's std filter with its checkpointable state."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from varl.grpo import selection as selection_module
from varl.grpo.selection import RewardStdFilter, SelectionSummary, group_std, select_informative


def test_doctests() -> None:
    assert doctest.testmod(selection_module).failed == 0


def test_spec_t7_values() -> None:
    np.testing.assert_allclose(
        group_std([[0.02, 0.01, 0.03, 0.02], [0.6, 0.1, 0.4, 0.8]]),
        [0.0081650, 0.2986079],
        atol=1e-7,
    )
    keep, summary = select_informative(
        [[0.02, 0.01, 0.03, 0.02], [0.6, 0.1, 0.4, 0.8]], min_std=0.1
    )
    assert keep.tolist() == [False, True]
    assert summary == SelectionSummary(kept=1, all_correct=0, all_wrong=0, low_variance=1)


def test_top_n_sorted_by_std_ties_by_index() -> None:
    rewards = [[0, 1, 0, 1], [1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 1]]
    keep, summary = select_informative(rewards, top_n=2)
    # stds: 0.577, 0.5, 0.577, 0, 0.5 -> items 0 and 2
    assert keep.tolist() == [True, False, True, False, False]
    assert summary.kept == 2 and summary.all_correct == 1
    assert select_informative(rewards, top_n=0)[0].sum() == 0


def test_filter_follows_the_ema_rule() -> None:
    f = RewardStdFilter(beta=0.5, ema_decay=0.9, warmup_steps=2)
    assert f.threshold is None
    f.step([0.4, 0.2])  # m = 0.3
    f.step([0.1, 0.1])  # m = 0.1 -> EMA = 0.2
    assert f.ema == pytest.approx(0.2) and f.threshold == pytest.approx(0.1)
    keep = f.step([0.05, 0.1, 0.3])  # threshold 0.1 (inclusive); m = 0.15
    assert keep.tolist() == [False, True, True]
    assert f.ema == pytest.approx(0.9 * 0.2 + 0.1 * 0.15)


def test_filter_resumes_identically() -> None:
    rng = np.random.default_rng(0)
    steps = [rng.uniform(0, 1, 6) for _ in range(12)]
    straight = RewardStdFilter(warmup_steps=3)
    masks = [straight.step(s).tolist() for s in steps]
    first = RewardStdFilter(warmup_steps=3)
    for s in steps[:5]:
        first.step(s)
    resumed = RewardStdFilter(beta=0.9)  # settings come back from the state too
    resumed.load_state_dict(first.state_dict())
    assert [resumed.step(s).tolist() for s in steps[5:]] == masks[5:]
    assert resumed.state_dict() == straight.state_dict()


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="beta: expected a finite number > 0"):
        RewardStdFilter(beta=0.0)
    with pytest.raises(ValueError, match=r"ema_decay: expected a number in \(0, 1\)"):
        RewardStdFilter(ema_decay=1.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        RewardStdFilter(warmup_steps=0)
    with pytest.raises(ValueError, match="stds: contains NaN or inf"):
        RewardStdFilter().step([np.nan])
    with pytest.raises(ValueError, match="state: missing keys"):
        RewardStdFilter().load_state_dict({"beta": 0.5})
    with pytest.raises(ValueError, match=r"rewards: expected shape \[N, K\]"):
        select_informative([1.0, 0.0])
    with pytest.raises(ValueError, match="min_std"):
        select_informative([[1.0, 0.0]], min_std=-1)
