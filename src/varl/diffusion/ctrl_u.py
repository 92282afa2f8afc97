"""Ctrl-U: an uncertainty-aware reward loss for ControlNet-style conditional generation.

Paper: Zhang et al., "Ctrl-U: Robust Conditional Image Generation via Uncertainty-aware Reward
Modeling", ICLR 2025, arXiv 2410.11236; the per-task conventions follow the reference code
(spec alignprop_ctrlu.md §2.2).

Two noisy versions of the same latent — timesteps t and t' = t + Δ, the same z₀ and the same
noise ε — are denoised in one step, decoded, and passed through a frozen reward model g. Where
the two predictions ĉ₁ = g(x̂₀(t)) and ĉ₂ = g(x̂₀(t')) disagree, the reward model is unreliable
there, so the reward loss is down-weighted:

    U = KL(softmax(ĉ₂) ‖ softmax(ĉ₁)) per pixel (segmentation) or |ĉ₁ − ĉ₂| (regression maps)
    L_reward = mean_pixels(ℓ(ĉ₁, c) · exp(−U)) + λ · mean_pixels(U)

the heteroscedastic "learned attenuation" form with a measured rather than a predicted variance.
U is not detached by default: the generator is also pushed to make its two predictions agree,
and the λ·U term stops it from lowering the weight by making them disagree.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

UncertaintyKind = Literal["kl", "l1"]


def twin_timesteps(t: Tensor, *, delta: int = 1, num_train_timesteps: int = 1000) -> Tensor:
    """The twin timesteps ``t' = min(t + Δ, T − 1)`` (Δ = 1 in the reference).

    Raises:
        ValueError: If ``delta`` < 0 or a timestep is outside [0, T − 1].
    """
    if delta < 0:
        raise ValueError(f"delta: expected an int >= 0, got {delta}")
    if ((t < 0) | (t >= num_train_timesteps)).any():
        raise ValueError(f"t: expected timesteps in [0, {num_train_timesteps - 1}]")
    return (t + delta).clamp(max=num_train_timesteps - 1)


def rewarding_mask(t: Tensor, *, t_max: int = 400, t_min: int = 0) -> Tensor:
    """Which samples get the reward loss: ``t_min <= t <= t_max`` ([0, 400] for ADE20K, depth,
    HED and LineArt, [0, 200] for COCO-Stuff in the reference)."""
    if t_min > t_max:
        raise ValueError(f"t_min, t_max: expected t_min <= t_max, got {t_min} > {t_max}")
    return (t >= t_min) & (t <= t_max)


def single_step_x0(z_t: Tensor, eps_hat: Tensor, alpha_bar_t: Tensor) -> Tensor:
    """ControlNet++'s one-step estimate ``x̂₀ = (z_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t``.

    Args:
        z_t: ``[B, ...]`` noisy latents.
        eps_hat: ``[B, ...]`` predicted noise.
        alpha_bar_t: ``[B]`` cumulative ᾱ_t of each sample's timestep, in (0, 1].

    Raises:
        ValueError: If an ᾱ is outside (0, 1] or the shapes disagree.
    """
    if z_t.shape != eps_hat.shape or alpha_bar_t.shape != z_t.shape[:1]:
        raise ValueError(
            f"z_t, eps_hat, alpha_bar_t: expected [B, ...], [B, ...], [B], got "
            f"{tuple(z_t.shape)}, {tuple(eps_hat.shape)}, {tuple(alpha_bar_t.shape)}"
        )
    if ((alpha_bar_t <= 0) | (alpha_bar_t > 1)).any():
        raise ValueError("alpha_bar_t: expected values in (0, 1]")
    a = alpha_bar_t.reshape(-1, *([1] * (z_t.dim() - 1)))
    return (z_t - (1 - a).sqrt() * eps_hat) / a.sqrt()


def uncertainty_map(
    pred_a: Tensor,
    pred_b: Tensor,
    *,
    kind: UncertaintyKind = "kl",
    class_dim: int = 1,
    normalize_max: bool = False,
) -> Tensor:
    """Per-pixel disagreement U of the reward model's two predictions (spec §2.2 step 7).

    Args:
        pred_a: The primary twin's prediction ĉ₁: ``[B, K, H, W]`` logits for ``kind="kl"``,
            a map ``[B, H, W]`` (or any shape) for ``kind="l1"``.
        pred_b: The other twin's prediction ĉ₂, same shape.
        kind: ``"kl"``: U = Σ_k p₂(k) (log p₂(k) − log p₁(k)) over ``class_dim``
            (segmentation); ``"l1"``: U = |ĉ₁ − ĉ₂| (depth, HED, LineArt).
        class_dim: The class dimension for ``"kl"``.
        normalize_max: For ``"l1"``, divide each sample's map by its maximum first (the
            reference's depth convention).

    Returns:
        U >= 0 without the class dimension (``"kl"``) or with the input's shape (``"l1"``);
        0 where the predictions agree. Not detached.

    Raises:
        ValueError: On different shapes, an unknown ``kind`` or non-finite predictions.
    """
    if pred_a.shape != pred_b.shape:
        raise ValueError(
            f"pred_a, pred_b: expected equal shapes, got {tuple(pred_a.shape)}, "
            f"{tuple(pred_b.shape)}"
        )
    if not (torch.isfinite(pred_a).all() and torch.isfinite(pred_b).all()):
        raise ValueError("pred_a, pred_b: contain NaN or inf")
    if kind == "kl":
        log_a = torch.log_softmax(pred_a.float(), dim=class_dim)  # fp32: fp16 softmax overflows
        log_b = torch.log_softmax(pred_b.float(), dim=class_dim)
        return (log_b.exp() * (log_b - log_a)).sum(dim=class_dim).clamp(min=0.0)
    if kind == "l1":
        a, b = pred_a.float(), pred_b.float()
        if normalize_max:
            a = a / a.flatten(1).amax(1).clamp(min=1e-8).reshape(-1, *([1] * (a.dim() - 1)))
            b = b / b.flatten(1).amax(1).clamp(min=1e-8).reshape(-1, *([1] * (b.dim() - 1)))
        return (a - b).abs()
    raise ValueError(f"kind: expected 'kl' or 'l1', got {kind!r}")


def uncertainty_weighted_loss(
    base_loss_map: Tensor,
    u: Tensor,
    *,
    scale: float = 1.0,
    lam: float = 1.0,
    scale_in_exponent: bool = True,
    valid_mask: Tensor | None = None,
    detach_uncertainty: bool = False,
) -> Tensor:
    """Ctrl-U's rectified reward loss per sample ``[B]`` (spec §2.2 steps 8-9).

    Both per-task conventions of the reference code:

    - ``scale_in_exponent=True`` (segmentation): U' = scale·U,
      L = mean(ℓ · exp(−U')) + lam · mean(U'); the reference uses scale = 1 (ADE20K) or 0.1
      (COCO-Stuff) and lam = 1.
    - ``scale_in_exponent=False`` (depth, HED, LineArt): L = mean(ℓ · exp(−U)) + lam · scale ·
      mean(U); the reference uses scale = 0.1 and lam = 1, so the scale only weights the penalty.

    Args:
        base_loss_map: ``[B, H, W]`` per-pixel reward-model loss ℓ(ĉ₁, c) (cross-entropy, MSE).
        u: ``[B, H, W]`` uncertainty map from :func:`uncertainty_map`.
        scale: The reference's ``u_scale`` (>= 0).
        lam: Weight of the uncertainty penalty (>= 0).
        scale_in_exponent: Which convention (above).
        valid_mask: Optional ``[B, H, W]`` mask of the pixels to average over (segmentation:
            labels != 255); a sample with no valid pixel scores 0.
        detach_uncertainty: Stop the gradient into U (off in the reference).

    Returns:
        ``[B]`` losses; average them over the samples inside the rewarding window
        (:func:`rewarding_mask`).

    Raises:
        ValueError: On mismatched shapes, a negative ``scale`` or ``lam``, or non-finite inputs.
    """
    if base_loss_map.shape != u.shape or base_loss_map.dim() < 2:
        raise ValueError(
            f"base_loss_map, u: expected equal shapes [B, ...], got "
            f"{tuple(base_loss_map.shape)}, {tuple(u.shape)}"
        )
    if scale < 0 or lam < 0:
        raise ValueError(f"scale, lam: expected numbers >= 0, got {scale}, {lam}")
    if not (torch.isfinite(base_loss_map).all() and torch.isfinite(u).all()):
        raise ValueError("base_loss_map, u: contain NaN or inf")
    if detach_uncertainty:
        u = u.detach()
    mask = torch.ones_like(u) if valid_mask is None else valid_mask.to(u.dtype)
    if mask.shape != u.shape:
        raise ValueError(f"valid_mask: expected shape {tuple(u.shape)}, got {tuple(mask.shape)}")
    count = mask.flatten(1).sum(1).clamp(min=1.0)
    if scale_in_exponent:
        u_w = scale * u
        penalty = lam * u_w
    else:
        u_w = u
        penalty = lam * scale * u
    rectified = (base_loss_map * torch.exp(-u_w) * mask).flatten(1).sum(1) / count
    return rectified + (penalty * mask).flatten(1).sum(1) / count
