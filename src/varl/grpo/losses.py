"""Per-token clipped policy loss and its aggregation, as separate, tested functions.

The surrogate is PPO's clipped objective with DAPO's asymmetric "clip-higher" range
(ε_low = 0.2, ε_high = 0.28, as hard-coded in TW-GRPO's reference, spec §1.3):

    ρ_{i,t} = exp(logp - old_logp)
    L_{i,t} = -min(ρ · A_{i,t}, clip(ρ, 1 - ε_low, 1 + ε_high) · A_{i,t}) + β · KL_{i,t}

with the k3 estimator KL = exp(ref - logp) - (ref - logp) - 1. TW-GRPO token weights w >= 0
scale the advantage, A_{i,t} = w_{i,t} · A_i, which equals weighting the surrogate because
min(c1·A·w, c2·A·w) = w·min(c1·A, c2·A); the KL term is not weighted (TRL's token-advantage path;
the reference also weights it, which makes no difference at its β = 0).

How the per-token losses are averaged is a separate switch (:func:`aggregate`): GRPO averages each
sequence first (``seq_mean``), TW-GRPO and DAPO average over all tokens (``token_mean``), Dr. GRPO
divides by a fixed length (``fixed_length``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Aggregation = Literal["seq_mean", "token_mean", "fixed_length"]
AGGREGATIONS: tuple[str, ...] = ("seq_mean", "token_mean", "fixed_length")


def clipped_policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    token_weights: Tensor | None = None,
    ref_logp: Tensor | None = None,
    beta: float = 0.0,
) -> Tensor:
    """Per-token clipped surrogate loss ``[B, T]`` (zero where ``mask`` is 0; not reduced).

    Args:
        logp: ``[B, T]`` log-probabilities of the sampled tokens under the current policy.
        old_logp: ``[B, T]`` the same under the policy that sampled them (``logp.detach()`` when
            there is one update per batch, making ρ = 1).
        advantages: ``[B]`` sequence advantages or ``[B, T]`` token advantages.
        mask: ``[B, T]`` completion mask.
        eps_low: Lower clip ε_low >= 0.
        eps_high: Upper clip ε_high >= 0.
        token_weights: Optional ``[B, T]`` non-negative weights multiplying the advantages
            (TW-GRPO).
        ref_logp: ``[B, T]`` reference-policy log-probabilities, needed when ``beta != 0``.
        beta: KL coefficient β >= 0.

    Returns:
        ``[B, T]`` per-token losses, masked.

    Raises:
        ValueError: On mismatched shapes, negative clip ranges, weights or β, or ``beta != 0``
            without ``ref_logp``.

    Example:
        >>> logp = torch.zeros(2, 3)
        >>> clipped_policy_loss(logp, logp, torch.tensor([1.0, -1.0]), torch.ones(2, 3)).tolist()
        [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
    """
    shape = tuple(logp.shape)
    if logp.dim() != 2 or tuple(old_logp.shape) != shape or tuple(mask.shape) != shape:
        raise ValueError(
            f"logp, old_logp, mask: expected equal shapes [B, T], got {shape}, "
            f"{tuple(old_logp.shape)}, {tuple(mask.shape)}"
        )
    if not torch.isfinite(advantages).all():
        raise ValueError("advantages: contain NaN or inf")
    if advantages.dim() == 1:
        advantages = advantages[:, None]
    if advantages.shape[0] != shape[0] or advantages.shape[1] not in (1, shape[1]):
        raise ValueError(
            f"advantages: expected [B] or [B, T] with B, T = {shape}, got {tuple(advantages.shape)}"
        )
    if eps_low < 0 or eps_high < 0:
        raise ValueError(f"eps_low, eps_high: expected numbers >= 0, got {eps_low}, {eps_high}")
    if beta < 0:
        raise ValueError(f"beta: expected a number >= 0, got {beta}")
    if token_weights is not None:
        if tuple(token_weights.shape) != shape:
            raise ValueError(
                f"token_weights: expected shape {shape}, got {tuple(token_weights.shape)}"
            )
        if not torch.isfinite(token_weights).all() or (token_weights < 0).any():
            raise ValueError("token_weights: expected finite, non-negative weights")
        advantages = advantages * token_weights
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = -torch.min(ratio * advantages, clipped * advantages)
    if beta != 0.0:
        if ref_logp is None or tuple(ref_logp.shape) != shape:
            raise ValueError(f"ref_logp: expected a tensor of shape {shape} when beta != 0")
        delta = ref_logp - logp
        loss = loss + beta * (torch.exp(delta) - delta - 1.0)
    return loss * mask.to(loss.dtype)


def aggregate(
    loss: Tensor,
    mask: Tensor,
    *,
    mode: Aggregation = "seq_mean",
    max_len: int | None = None,
) -> Tensor:
    """Reduces per-token losses ``[B, T]`` to a scalar.

    ``seq_mean``: mean over sequences of each sequence's token mean (GRPO).
    ``token_mean``: sum over all tokens / number of tokens (TW-GRPO, DAPO, TRL's ``bnpo``).
    ``fixed_length``: sum over all tokens / (B · max_len) (Dr. GRPO).

    Args:
        loss: ``[B, T]`` per-token losses.
        mask: ``[B, T]`` completion mask.
        mode: One of ``AGGREGATIONS``.
        max_len: The fixed length for ``fixed_length`` (the generation limit), >= 1.

    Returns:
        A 0-d tensor.

    Raises:
        ValueError: On an unknown mode, mismatched shapes, or a missing/invalid ``max_len``.

    Example:
        >>> loss = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, 0.0]])
        >>> mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
        >>> float(aggregate(loss, mask, mode="seq_mean"))
        0.0
        >>> round(float(aggregate(loss, mask, mode="token_mean")), 6)
        0.2
    """
    if tuple(loss.shape) != tuple(mask.shape) or loss.dim() != 2:
        raise ValueError(
            "loss, mask: expected equal shapes [B, T], "
            f"got {tuple(loss.shape)}, {tuple(mask.shape)}"
        )
    m = mask.to(loss.dtype)
    masked = loss * m
    if mode == "seq_mean":
        return (masked.sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
    if mode == "token_mean":
        return masked.sum() / m.sum().clamp(min=1.0)
    if mode == "fixed_length":
        if max_len is None or max_len < 1:
            raise ValueError(
                f"max_len: expected an int >= 1 for mode='fixed_length', got {max_len!r}"
            )
        return masked.sum() / (loss.shape[0] * max_len)
    raise ValueError(f"mode: expected one of {AGGREGATIONS}, got {mode!r}")
