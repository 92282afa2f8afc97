"""RLPR's probability reward: the spec's exact values and the malformed-response rule."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

from varl.grpo import probability_reward as pr_module
from varl.grpo.probability_reward import (
    debiased_probability_reward,
    reference_answer_probability,
    rlpr_reward,
)

torch.set_num_threads(1)


def test_doctests() -> None:
    assert doctest.testmod(pr_module).failed == 0


def test_aggregates() -> None:
    lp = torch.log(torch.tensor([[0.5, 0.8, 0.2, 0.9]], dtype=torch.float64))
    mask = torch.tensor([[1, 1, 1, 0]])  # the last token is not part of the answer
    assert float(reference_answer_probability(lp, mask)) == pytest.approx(0.5)
    assert float(reference_answer_probability(lp, mask, aggregate="product")) == pytest.approx(0.08)
    assert float(reference_answer_probability(lp, mask, aggregate="geometric")) == pytest.approx(
        0.08 ** (1 / 3)
    )


def test_malformed_row_scores_zero_and_reward_combines() -> None:
    lp = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.9]]))
    p = reference_answer_probability(lp, torch.tensor([[1, 1], [0, 0]]))
    assert p.tolist() == [0.5, 0.0]
    r = rlpr_reward(p, torch.tensor([0.3, 0.3]), torch.tensor([1.0, 0.0]))
    assert r.tolist() == pytest.approx([0.28, 0.0])
    assert debiased_probability_reward(torch.tensor([0.1]), torch.tensor([0.3])).tolist() == [0.0]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="expected equal shapes"):
        reference_answer_probability(torch.zeros(2, 3), torch.ones(2, 2))
    with pytest.raises(ValueError, match="log-probabilities <= 0"):
        reference_answer_probability(torch.tensor([[0.5]]), torch.ones(1, 1))
    with pytest.raises(ValueError, match="log-probabilities <= 0"):
        reference_answer_probability(torch.tensor([[math.nan]]), torch.ones(1, 1))
    with pytest.raises(ValueError, match="aggregate: expected one of"):
        reference_answer_probability(torch.zeros(1, 1), torch.ones(1, 1), aggregate="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="contain NaN or inf"):
        debiased_probability_reward(torch.tensor([math.nan]), torch.tensor([0.1]))
