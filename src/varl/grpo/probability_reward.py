"""RLPR: the policy's own probability of the reference answer as a verifier-free reward.

Paper: "RLPR: Extrapolating RLVR to General Domains without Verifiers", arXiv 2506.18254; the
definitions follow the reference code (spec gvm_rlpr.md §2.1-§2.2).

The generated answer y in o = z ‖ y is replaced by the reference y*, the current policy scores
the spliced sequence, and the log-probabilities ℓ_t of y*'s tokens are aggregated:

    PR        = (1/|y*|) Σ_t exp(ℓ_t)       mean per-token probability (RLPR's choice)
    product   = exp(Σ_t ℓ_t)                sequence likelihood (one unlikely token sinks it)
    geometric = exp(mean_t ℓ_t)

Debiasing subtracts the probability of y* with no reasoning (computed once, with the initial
policy) and clips at 0: ``f(Δ) = max(PR - PR_noreason, 0)``; the final reward mixes it with a
format reward, ``r = 0.9·f(Δ) + 0.1·format_ok``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Aggregate = Literal["mean", "product", "geometric"]
AGGREGATES = ("mean", "product", "geometric")


def reference_answer_probability(
    token_logprobs: Tensor, mask: Tensor, *, aggregate: Aggregate = "mean"
) -> Tensor:
    """Aggregated probability ``[B]`` of the reference answer's tokens.

    Args:
        token_logprobs: ``[B, L]`` log-probabilities ℓ_t (<= 0) of the reference-answer tokens in
            the spliced sequences.
        mask: ``[B, L]``, 1 on the reference answer's tokens. A row with no such token (a
            malformed response whose answer span could not be found) scores 0.
        aggregate: ``"mean"`` (RLPR), ``"product"`` or ``"geometric"``.

    Returns:
        ``[B]`` probabilities in [0, 1].

    Raises:
        ValueError: On mismatched shapes, NaN or positive log-probabilities on masked tokens, or
            an unknown ``aggregate``.

    Example:
        >>> lp = torch.log(torch.tensor([[0.5, 0.8, 0.2]]))
        >>> m = torch.ones(1, 3)
        >>> round(float(reference_answer_probability(lp, m)), 6)
        0.5
        >>> round(float(reference_answer_probability(lp, m, aggregate="product")), 6)
        0.08
    """
    if token_logprobs.dim() != 2 or tuple(mask.shape) != tuple(token_logprobs.shape):
        raise ValueError(
            f"token_logprobs, mask: expected equal shapes [B, L], got "
            f"{tuple(token_logprobs.shape)} and {tuple(mask.shape)}"
        )
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate: expected one of {AGGREGATES}, got {aggregate!r}")
    m = mask.to(token_logprobs.dtype)
    used = token_logprobs[m > 0]
    if torch.isnan(used).any() or (used > 1e-6).any():
        raise ValueError(
            "token_logprobs: expected log-probabilities <= 0 (no NaN) on masked tokens"
        )
    lp = torch.where(m > 0, token_logprobs.clamp(max=0.0), torch.zeros_like(token_logprobs))
    count = m.sum(-1)
    if aggregate == "mean":
        value = (lp.exp() * m).sum(-1) / count.clamp(min=1.0)
    elif aggregate == "product":
        value = lp.sum(-1).exp()
    else:
        value = (lp.sum(-1) / count.clamp(min=1.0)).exp()
    return torch.where(count > 0, value, torch.zeros_like(value))


def debiased_probability_reward(
    p: Tensor, p_without_reasoning: Tensor, *, clip_min: float = 0.0
) -> Tensor:
    """RLPR's debiased reward ``max(p - p_without_reasoning, clip_min)`` (threshold shaping).

    Args:
        p: ``[B]`` probability of the reference answer after the policy's reasoning.
        p_without_reasoning: ``[B]`` the same with no reasoning (scoreA), cached per prompt.
        clip_min: Lower clip (0 in RLPR's ``threshold_0`` shaping).

    Returns:
        ``[B]`` rewards.

    Raises:
        ValueError: On mismatched shapes or non-finite inputs.

    Example:
        >>> r = debiased_probability_reward(torch.tensor([0.5, 0.2]), torch.tensor([0.3, 0.3]))
        >>> [round(v, 6) for v in r.tolist()]
        [0.2, 0.0]
    """
    if p.shape != p_without_reasoning.shape:
        raise ValueError(
            f"p, p_without_reasoning: expected equal shapes, got {tuple(p.shape)} and "
            f"{tuple(p_without_reasoning.shape)}"
        )
    if not (torch.isfinite(p).all() and torch.isfinite(p_without_reasoning).all()):
        raise ValueError("p, p_without_reasoning: contain NaN or inf")
    return (p - p_without_reasoning).clamp(min=clip_min)


def rlpr_reward(
    p: Tensor,
    p_without_reasoning: Tensor,
    format_ok: Tensor,
    *,
    w_probability: float = 0.9,
    w_format: float = 0.1,
    clip_min: float = 0.0,
) -> Tensor:
    """RLPR's final reward ``w_p · max(p - p0, clip_min) + w_f · format_ok`` (c = 0.1).

    Example:
        >>> r = rlpr_reward(torch.tensor([0.5]), torch.tensor([0.3]), torch.tensor([1.0]))
        >>> round(float(r), 6)
        0.28
    """
    if format_ok.shape != p.shape:
        raise ValueError(
            f"format_ok: expected shape {tuple(p.shape)}, got {tuple(format_ok.shape)}"
        )
    if w_probability < 0 or w_format < 0:
        raise ValueError(
            f"w_probability, w_format: expected weights >= 0, got {w_probability}, {w_format}"
        )
    shaped = debiased_probability_reward(p, p_without_reasoning, clip_min=clip_min)
    return w_probability * shaped + w_format * format_ok.to(shaped.dtype)
