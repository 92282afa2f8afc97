"""TW-GRPO token weights from the intra-group divergence of next-token distributions.

Paper: "Reinforcing Video Reasoning with Focused Thinking" (TW-GRPO), arXiv 2505.24718; the
formula below is the one its reference code computes (spec tw_grpo_temporal_r1.md §1.2), which is
a divergence between full next-token distributions rather than the "variance" or "entropy" of
the abstract.

For one prompt with G completions right-padded to T tokens, ℓ_{i,t}(v) = log π(v | q, o_{i,<t}):

1. a padded row (mask 0) is replaced by the uniform distribution, ℓ = -log |V|;
2. the group's mean log-distribution m_t(v) = (1/G) Σ_i ℓ_{i,t}(v);
3. x_{i,t}(v) = clip(m_t(v) - ℓ_{i,t}(v), -c, c) and d_{i,t} = Σ_v [exp(x) - x - 1] (k3 form,
   summed over the vocabulary, c = 11);
4. D_t = (1/G) Σ_i d_{i,t};
5. D̃_t = (D_t - min_t D) / (max_t D - min_t D + 1e-8), over all T positions;
6. w_{i,t} = (1 + (α - 1) D̃_t) · mask_{i,t}, α = 1.7 in the paper's script.

Positions where the G completions disagree most get weight α, positions where they agree get 1.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

NormalizeOver = Literal["all", "valid"]


def _check_inputs(logits: Tensor, mask: Tensor) -> None:
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError("logits: expected a floating-point torch.Tensor [..., G, T, V]")
    if logits.dim() < 3:
        raise ValueError(f"logits: expected shape [..., G, T, V], got {tuple(logits.shape)}")
    if not isinstance(mask, Tensor) or tuple(mask.shape) != tuple(logits.shape[:-1]):
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(
            f"mask: expected shape {tuple(logits.shape[:-1])} (logits without V), got {got}"
        )


def position_divergence(
    logits: Tensor,
    mask: Tensor,
    *,
    clip: float = 11.0,
    pad_as_uniform: bool = True,
    chunk_size: int | None = None,
) -> Tensor:
    """Group-mean k3 divergence D_t of each completion's next-token distribution (steps 1-4).

    Args:
        logits: ``[..., G, T, V]`` logits or log-probabilities (a log-softmax is applied, which
            leaves log-probabilities unchanged).
        mask: ``[..., G, T]``, 1 for real completion tokens, 0 for padding.
        clip: Bound c on |m - ℓ| before the exponential (11 in the reference).
        pad_as_uniform: Replace padded rows by the uniform distribution (the reference's
            behaviour); if False, padded rows are left out of the group mean and of D_t.
        chunk_size: Positions processed at once (None: all positions). The temporaries (log-softmax,
            centroid, differences) are a few ``[..., G, chunk_size, V]`` float32 tensors, so memory
            beyond the input logits scales with the chunk, not with T.

    Returns:
        ``[..., T]`` divergence D_t >= 0, 0 where every completion has the same distribution.

    Raises:
        TypeError, ValueError: On bad shapes or types, NaN/inf logits or a chunk size < 1.
    """
    _check_inputs(logits, mask)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size: expected None or an int >= 1, got {chunk_size!r}")
    if not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip: expected a finite number > 0, got {clip!r}")
    n_vocab, n_pos = logits.shape[-1], logits.shape[-2]
    step = n_pos if chunk_size is None else chunk_size
    valid = mask.to(torch.bool)
    out = logits.new_empty((*logits.shape[:-3], n_pos), dtype=torch.float32)
    for start in range(0, n_pos, step):
        stop = min(start + step, n_pos)
        chunk = logits[..., start:stop, :].float()
        if not torch.isfinite(chunk).all():
            raise ValueError("logits: contains NaN or inf")
        logp = torch.log_softmax(chunk, dim=-1)  # [..., G, C, V]
        keep = valid[..., start:stop]  # [..., G, C]
        if pad_as_uniform:
            logp = torch.where(keep[..., None], logp, torch.full_like(logp, -math.log(n_vocab)))
            weight = torch.ones_like(keep, dtype=logp.dtype)
        else:
            weight = keep.to(logp.dtype)
        count = weight.sum(dim=-2).clamp(min=1.0)  # [..., C]
        centroid = (logp * weight[..., None]).sum(dim=-3) / count[..., None]  # [..., C, V]
        x = (centroid.unsqueeze(-3) - logp).clamp(-clip, clip)
        d = (torch.expm1(x) - x).sum(dim=-1)  # [..., G, C]; exp(x) - x - 1 without cancellation
        out[..., start:stop] = (d * weight).sum(dim=-2) / count
    return out


def tw_grpo_token_weights(
    logits: Tensor,
    mask: Tensor,
    *,
    alpha: float = 1.7,
    clip: float = 11.0,
    pad_as_uniform: bool = True,
    normalize_over: NormalizeOver = "all",
    chunk_size: int | None = 64,
    detach: bool = True,
) -> Tensor:
    """TW-GRPO per-token loss weights ``w ∈ [1, α]`` (times the mask), spec §1.2 steps 1-6.

    Args:
        logits: ``[..., G, T, V]`` logits or log-probabilities of the G completions of each prompt
            (leading dimensions are independent prompts).
        mask: ``[..., G, T]`` completion mask (1 up to and including EOS).
        alpha: Largest weight α >= 1 (1.7 in the paper's script; α = 1 gives w = mask).
        clip: Bound on |m - ℓ| (11 in the reference).
        pad_as_uniform: Padded rows count as uniform distributions (reference behaviour).
        normalize_over: ``"all"`` min-max normalises over every position, padding included (the
            reference); ``"valid"`` over positions where at least one completion is real.
        chunk_size: Positions processed at once (temporaries scale with chunk × G × V, not T).
        detach: Compute under ``torch.no_grad`` so the weights are constants (the reference lets
            gradients flow through them; varl does not by default).

    Returns:
        ``[..., G, T]`` weights: the same value for every completion at a position, times mask.

    Raises:
        TypeError, ValueError: On bad shapes or types, NaN/inf logits, ``alpha < 1`` or an
            unknown ``normalize_over``.

    Example:
        >>> probs = torch.tensor([[[.5, .5], [.9, .1], [.8, .2]], [[.5, .5], [.1, .9], [.3, .7]]])
        >>> w = tw_grpo_token_weights(probs.log(), torch.tensor([[1, 1, 1], [1, 1, 0]]))
        >>> [[round(v, 6) for v in row] for row in w.tolist()]
        [[1.0, 1.7, 1.070632], [1.0, 1.7, 0.0]]
    """
    if not (math.isfinite(alpha) and alpha >= 1.0):
        raise ValueError(f"alpha: expected a finite number >= 1, got {alpha!r}")
    if normalize_over not in ("all", "valid"):
        raise ValueError(f"normalize_over: expected 'all' or 'valid', got {normalize_over!r}")
    with torch.set_grad_enabled(not detach and torch.is_grad_enabled()):
        div = position_divergence(
            logits, mask, clip=clip, pad_as_uniform=pad_as_uniform, chunk_size=chunk_size
        )  # [..., T]
        maskf = mask.to(div.dtype)
        if normalize_over == "valid":
            valid_pos = maskf.amax(dim=-2) > 0  # [..., T]
            lo = torch.where(valid_pos, div, torch.full_like(div, math.inf)).amin(-1, keepdim=True)
            hi = torch.where(valid_pos, div, torch.full_like(div, -math.inf)).amax(-1, keepdim=True)
            lo, hi = torch.nan_to_num(lo, posinf=0.0), torch.nan_to_num(hi, neginf=0.0)
        else:
            lo, hi = div.amin(-1, keepdim=True), div.amax(-1, keepdim=True)
        scaled = ((div - lo) / (hi - lo + 1e-8)).clamp(0.0, 1.0)
        weights = 1.0 + (alpha - 1.0) * scaled  # [..., T]
        return weights.unsqueeze(-2) * maskf
