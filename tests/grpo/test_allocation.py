"""GVM allocation: the spec's example, the integerisation rule and Neyman optimality."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varl.grpo import allocation as alloc_module
from varl.grpo.allocation import gvm_allocation, gvm_weights, integerise_preserving_sum


def test_doctests() -> None:
    assert doctest.testmod(alloc_module).failed == 0


def test_spec_example() -> None:
    assert gvm_allocation([0.25, 1.0, 0.5, 0.0], [1.0, 2.0, 0.0, 1.0], 16).tolist() == [8, 8, 0, 0]


def test_weight_curve_values() -> None:
    # 1 / sqrt(p + alpha / p) with G = 1, alpha = 1e-3, beta = 2 (spec §1.2 table)
    p = np.array([0.01, 0.03, 0.1, 0.5, 1.0])
    expected = 1.0 / np.sqrt(p + 1e-3 / p)
    np.testing.assert_allclose(gvm_weights(p, np.ones(5)), expected)
    np.testing.assert_allclose(
        expected, [3.015113, 3.973597, 3.015113, 1.411394, 0.999500], atol=1e-6
    )
    # alpha = 0 is plain Neyman allocation, n ∝ G / sqrt(p)
    np.testing.assert_allclose(gvm_weights(p, np.full(5, 2.0), alpha=0.0), 2.0 / np.sqrt(p))


def test_integerise_ties_lowest_index_first() -> None:
    assert integerise_preserving_sum([0.25, 0.25, 0.25, 0.25], 2).tolist() == [1, 1, 0, 0]
    assert integerise_preserving_sum([1 / 3, 1 / 3, 1 / 3], 2).tolist() == [1, 1, 0]
    assert integerise_preserving_sum([0.5, 0.25, 0.25], 3).tolist() == [1, 1, 1]
    assert integerise_preserving_sum([1.0, 0.0], 0).tolist() == [0, 0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
    st.integers(0, 200),
    st.randoms(use_true_random=False),
)
def test_integerise_sums_exactly_and_stays_close(raw: list[float], total: int, rnd: object) -> None:
    shares = np.array(raw) + 1e-3
    shares /= shares.sum()
    counts = integerise_preserving_sum(shares, total)
    assert counts.sum() == total and np.all(counts >= 0)
    assert np.all(np.abs(counts - shares * total) < 2.0)


def test_gvm_lowers_estimator_variance_against_uniform() -> None:
    # Variance proxy sum_i G_i^2 / (n_i p_i) at equal budget (spec §1.1 derivation).
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 1.0, 50)
    g = rng.uniform(0.5, 3.0, 50)
    budget = 400
    gvm = gvm_allocation(p, g, budget, alpha=0.0)
    uniform = np.full(50, budget // 50)

    def variance(n: np.ndarray) -> float:
        return float(np.sum(g**2 / (n * p)))

    assert variance(gvm) < variance(uniform)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"accept_rate: expected rates in \[0, 1\]"):
        gvm_allocation([1.5, 0.5], [1.0, 1.0], 4)
    with pytest.raises(ValueError, match="grad_norm: expected norms >= 0"):
        gvm_allocation([0.5, 0.5], [-1.0, 1.0], 4)
    with pytest.raises(ValueError, match=r"budget: expected an int >= 2"):
        gvm_allocation([0.5, 0.5], [1.0, 1.0], 1)
    with pytest.raises(ValueError, match="nothing to allocate"):
        gvm_allocation([0.0, 0.5], [1.0, 0.0], 4)
    with pytest.raises(ValueError, match="beta: expected a finite number > 0"):
        gvm_allocation([0.5], [1.0], 4, beta=0.0)
    with pytest.raises(ValueError, match="accept_rate: contains NaN or inf"):
        gvm_allocation([np.nan], [1.0], 4)
    with pytest.raises(ValueError, match="expected two"):
        gvm_allocation([0.5, 0.5], [1.0], 4)
