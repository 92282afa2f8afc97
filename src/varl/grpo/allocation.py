"""GVM: per-prompt sample counts that minimise the variance of the gradient estimator.

Paper: "Optimizing Chain-of-Thought Reasoners via Gradient Variance Minimization in Rejection
Sampling and RL" (GVM-RAFT), arXiv 2505.02391; the formula is the reference code's
``calc_sample_ratio`` (spec gvm_rlpr.md §1.2, §1.4).

Prompt i is answered correctly with probability p_i and its accepted samples have gradient norm
about G_i, so its term of the averaged gradient has variance about G_i² / (n_i p_i); minimising
the sum under Σ n_i = N gives n_i ∝ G_i / √p_i (Neyman allocation). GVM regularises the hard
prompts:

    w_i = G_i / sqrt(p_i + α / p_i^(β - 1))    (w_i = 0 when G_i = 0 or p_i = 0)
    n_i = integerise(N · w_i / Σ_j w_j),        Σ_i n_i = N exactly

with α = 1e-3 and β = 2 (the reference's run script). With β = 2 the weight per unit G peaks at
p = √α ≈ 0.032: more samples go to hard-but-solvable prompts, none to unsolved ones.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from varl._checks import FloatArray, as_float_array, check_nonnegative, check_positive

IntArray = NDArray[np.int64]


def gvm_weights(
    accept_rate: ArrayLike, grad_norm: ArrayLike, *, alpha: float = 1e-3, beta: float = 2.0
) -> FloatArray:
    """Unnormalised GVM weights ``w_i = G_i / sqrt(p_i + α p_i^(1-β))`` ``[N]``.

    Args:
        accept_rate: ``[N]`` acceptance rates p_i in [0, 1].
        grad_norm: ``[N]`` gradient norms G_i >= 0 (mean norm over accepted samples).
        alpha: Regulariser α >= 0 (1e-3 in the paper's runs).
        beta: Exponent β > 0 (2 in the paper's runs).

    Returns:
        ``[N]`` weights >= 0; 0 where p_i = 0 or G_i = 0.

    Raises:
        ValueError: If a rate is outside [0, 1], a norm is negative or non-finite, the shapes
            differ, or α < 0 / β <= 0.

    Example:
        >>> gvm_weights([0.25, 1.0, 0.5, 0.0], [1.0, 2.0, 0.0, 1.0]).round(4).tolist()
        [1.9842, 1.999, 0.0, 0.0]
    """
    p = as_float_array(accept_rate, "accept_rate", finite=True)
    g = as_float_array(grad_norm, "grad_norm", finite=True)
    if p.ndim != 1 or g.shape != p.shape:
        raise ValueError(
            f"accept_rate, grad_norm: expected two [N] vectors, got {p.shape} and {g.shape}"
        )
    if np.any((p < 0) | (p > 1)):
        raise ValueError("accept_rate: expected rates in [0, 1]")
    if np.any(g < 0):
        raise ValueError("grad_norm: expected norms >= 0")
    alpha = check_nonnegative(alpha, "alpha")
    beta = check_positive(beta, "beta")
    active = (p > 0) & (g > 0)
    safe_p = np.where(active, p, 1.0)
    weights = np.where(active, g / np.sqrt(safe_p + alpha * safe_p ** (1.0 - beta)), 0.0)
    return weights


def integerise_preserving_sum(shares: ArrayLike, total: int) -> IntArray:
    """Rounds ``total · shares`` to integers that sum exactly to ``total``.

    Round half to even, then hand the remaining units to the entries with the largest residual
    (or take them from the positive entries with the smallest residual). Ties favour the lowest
    index: it gains a unit first and loses one last. This is deterministic, unlike the
    reference's unstable argsort (spec §1.4).

    Args:
        shares: ``[N]`` non-negative fractions summing to 1.
        total: The integer budget N >= 0.

    Returns:
        ``[N]`` non-negative integers summing to ``total``.

    Raises:
        ValueError: If the shares are negative, do not sum to 1, or ``total`` < 0.

    Example:
        >>> integerise_preserving_sum([0.5, 0.25, 0.25], 3).tolist()
        [1, 1, 1]
    """
    r = as_float_array(shares, "shares", finite=True)
    if r.ndim != 1 or np.any(r < 0) or not np.isclose(r.sum(), 1.0, atol=1e-9):
        raise ValueError("shares: expected a [N] vector of non-negative fractions summing to 1")
    if isinstance(total, bool) or int(total) != total or total < 0:
        raise ValueError(f"total: expected an int >= 0, got {total!r}")
    exact = r * total
    counts = np.round(exact).astype(np.int64)
    residual = exact - counts
    error = int(total) - int(counts.sum())
    index = np.arange(r.size)
    if error > 0:
        order = np.lexsort((index, -residual))  # largest residual first, then lowest index
        counts[order[:error]] += 1
    elif error < 0:
        eligible = np.flatnonzero(counts > 0)
        # smallest residual first; among ties the highest index gives, so lower indices keep
        # their units (the same "lowest index first" priority as for the increments)
        order = eligible[np.lexsort((-eligible, residual[eligible]))]
        counts[order[:-error]] -= 1
    return counts


def gvm_allocation(
    accept_rate: ArrayLike,
    grad_norm: ArrayLike,
    budget: int,
    *,
    alpha: float = 1e-3,
    beta: float = 2.0,
) -> IntArray:
    """GVM sample counts per prompt, summing exactly to ``budget`` (spec §1.2, §1.4).

    Args:
        accept_rate: ``[N]`` acceptance rates p_i in [0, 1] (from pre-sampling).
        grad_norm: ``[N]`` gradient norms G_i >= 0.
        budget: Total number of samples to draw.
        alpha: Regulariser α (1e-3).
        beta: Exponent β (2.0).

    Returns:
        ``[N]`` integer counts; 0 for prompts with p_i = 0 or G_i = 0.

    Raises:
        ValueError: On bad rates or norms, when no prompt can use a sample (all weights 0), or when
            ``budget`` is smaller than the number of prompts with a positive weight.

    Example:
        >>> gvm_allocation([0.25, 1.0, 0.5, 0.0], [1.0, 2.0, 0.0, 1.0], 16).tolist()
        [8, 8, 0, 0]
    """
    weights = gvm_weights(accept_rate, grad_norm, alpha=alpha, beta=beta)
    needing = int(np.count_nonzero(weights))
    if needing == 0:
        raise ValueError(
            "accept_rate, grad_norm: no prompt has both a positive acceptance rate and a "
            "positive gradient norm, so there is nothing to allocate"
        )
    if isinstance(budget, bool) or int(budget) != budget or budget < needing:
        raise ValueError(
            f"budget: expected an int >= {needing} (the prompts with a positive weight), "
            f"got {budget!r}"
        )
    return integerise_preserving_sum(weights / weights.sum(), int(budget))
