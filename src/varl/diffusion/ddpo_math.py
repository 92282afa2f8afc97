"""The pure math of DDPO: advantages, the PPO-clipped surrogate on per-step log-probs, diagnostics.

Paper: Black et al., "Training Diffusion Models with Reinforcement Learning" (DDPO), arXiv
2305.13301, the policy-gradient baseline that AlignProp (arXiv 2310.03739) is compared with;
spec alignprop_ctrlu.md §4.1 and §5. The denoising chain with η > 0 is a T-step MDP whose
action at step i is x_{t_{i+1}} ~ N(μ_θ(x_{t_i}), σ_i² I); an image earns its reward r only at
the end, so every step of a chain shares the chain's advantage A. DDPO-IS maximises the
importance-sampled, PPO-clipped objective per step

    ρ_i = exp(log p_θ(x_{i+1} | x_i) − log p_old(x_{i+1} | x_i))
    L_i = max(−A ρ_i, −A clip(ρ_i, 1 − ε, 1 + ε))                        (DDPO eq. 4 + PPO clip)

with A the reward normalised over the batch, or per prompt over a running buffer, and clipped to
[−A_max, A_max]. Torch and numpy only; the trainer is :mod:`varl.diffusion.ddpo`.

API:
    batch_advantages      (r − mean r) / (std r + eps) over the batch
    clip_advantages       A clipped to [−A_max, A_max]
    PerPromptStatTracker  per-prompt running mean/std over a buffer, with a min-count fallback
    clipped_surrogate     per-sample PPO-clip loss from new/old log-probs and advantages
    approx_kl             ½ mean (log p_θ − log p_old)², the KL estimate DDPO logs
    clip_fraction         share of ratios outside [1 − ε, 1 + ε]
    train_step_indices    which denoising steps a training batch is trained on
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

FloatArray = NDArray[np.float64]

BATCH_EPS = 1e-8
"""Added to the batch std in :func:`batch_advantages` (DDPO's reference value)."""
PROMPT_EPS = 1e-6
"""Added to the per-prompt std in :class:`PerPromptStatTracker` (DDPO's reference value)."""


def _rewards_array(rewards: Any, name: str = "rewards") -> FloatArray:
    if isinstance(rewards, Tensor):
        rewards = rewards.detach().cpu().double().numpy()
    arr = np.asarray(rewards, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array [B], got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def batch_advantages(
    rewards: Sequence[float] | FloatArray | Tensor, eps: float = BATCH_EPS
) -> FloatArray:
    """Advantages normalised over the whole batch: A_b = (r_b − mean r) / (std r + eps).

    ``std`` is the population standard deviation (ddof = 0), as in DDPO's reference code, so a
    batch of equal rewards gets A = 0 everywhere rather than NaN.

    Args:
        rewards: ``[B]`` finite rewards.
        eps: Added to the standard deviation, > 0.

    Returns:
        ``[B]`` float64 advantages.

    Raises:
        ValueError: If ``rewards`` is not a non-empty finite 1-D array or ``eps`` <= 0.

    Example:
        >>> batch_advantages([1.0, 3.0], eps=1e-12).round(6).tolist()
        [-1.0, 1.0]
    """
    r = _rewards_array(rewards)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps: expected a finite float > 0, got {eps!r}")
    out: FloatArray = (r - r.mean()) / (r.std() + eps)
    return out


def clip_advantages(advantages: Tensor, max_abs: float) -> Tensor:
    """A clipped to [−A_max, A_max] (TRL's ``train_adv_clip_max``).

    Args:
        advantages: Any-shape tensor of advantages.
        max_abs: A_max > 0.

    Returns:
        The clipped tensor (same shape).

    Raises:
        ValueError: If ``max_abs`` is not a finite float > 0.
    """
    if not (math.isfinite(max_abs) and max_abs > 0):
        raise ValueError(f"max_abs: expected a finite float > 0, got {max_abs!r}")
    return advantages.clamp(-max_abs, max_abs)


class PerPromptStatTracker:
    """Per-prompt reward statistics over a running buffer, for per-prompt advantages.

    For each prompt p in a batch, its rewards are appended to p's buffer (the last
    ``buffer_size`` rewards are kept); when the buffer holds at least ``min_count`` rewards,
    p's advantages are ``(r − mean buf_p) / (std buf_p + 1e-6)``, otherwise the whole batch's
    mean and std stand in (DDPO's fallback while a prompt has been seen too rarely). Standard
    deviations are population ones (ddof = 0).

    Args:
        buffer_size: Rewards kept per prompt, >= 1.
        min_count: Rewards a prompt's buffer needs before its own statistics are used, >= 1
            and <= ``buffer_size`` (a larger value would never be reached).

    Raises:
        ValueError: On a bad ``buffer_size`` or ``min_count``.
    """

    def __init__(self, buffer_size: int, min_count: int) -> None:
        for name, value in (("buffer_size", buffer_size), ("min_count", min_count)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if min_count > buffer_size:
            raise ValueError(
                f"min_count: expected <= buffer_size ({buffer_size}), got {min_count}; the "
                "buffer would never hold enough rewards"
            )
        self.buffer_size = buffer_size
        self.min_count = min_count
        self.buffers: dict[str, deque[float]] = {}

    def update(
        self, prompts: Sequence[str], rewards: Sequence[float] | FloatArray | Tensor
    ) -> FloatArray:
        """Adds the batch to the buffers and returns its advantages.

        Args:
            prompts: ``[B]`` prompts (strings).
            rewards: ``[B]`` finite rewards.

        Returns:
            ``[B]`` float64 advantages, in the batch's order.

        Raises:
            ValueError: If the lengths differ or the rewards are not finite.
            TypeError: If a prompt is not a string.
        """
        r = _rewards_array(rewards)
        if len(prompts) != r.size:
            raise ValueError(f"prompts: expected {r.size} prompts, got {len(prompts)}")
        for p in prompts:
            if not isinstance(p, str):
                raise TypeError(f"prompts: expected strings, got {type(p).__name__}")
        keys = np.asarray(prompts, dtype=object)
        advantages = np.empty_like(r)
        batch_mean, batch_std = r.mean(), r.std()
        for prompt in dict.fromkeys(prompts):  # unique, in order of first appearance
            rows = keys == prompt
            buffer = self.buffers.setdefault(prompt, deque(maxlen=self.buffer_size))
            buffer.extend(r[rows].tolist())
            if len(buffer) >= self.min_count:
                values = np.asarray(buffer)
                mean, std = values.mean(), values.std()
            else:
                mean, std = batch_mean, batch_std
            advantages[rows] = (r[rows] - mean) / (std + PROMPT_EPS)
        return advantages

    def stats(self) -> dict[str, dict[str, float]]:
        """``{prompt: {"mean", "std", "count"}}`` of every buffer (for logging)."""
        return {
            p: {"mean": float(np.mean(b)), "std": float(np.std(b)), "count": float(len(b))}
            for p, b in self.buffers.items()
        }

    def clear(self) -> None:
        """Empties every buffer."""
        self.buffers.clear()

    def state_dict(self) -> dict[str, Any]:
        """The settings and every buffer's rewards (plain Python values)."""
        return {
            "buffer_size": self.buffer_size,
            "min_count": self.min_count,
            "buffers": {p: list(b) for p, b in self.buffers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output.

        Raises:
            ValueError: If the saved ``buffer_size`` or ``min_count`` differ from this tracker's.
        """
        for name in ("buffer_size", "min_count"):
            if state.get(name) != getattr(self, name):
                raise ValueError(
                    f"state: {name} = {state.get(name)!r} differs from the tracker's "
                    f"{getattr(self, name)!r}"
                )
        self.buffers = {
            str(p): deque((float(v) for v in values), maxlen=self.buffer_size)
            for p, values in state["buffers"].items()
        }


def clipped_surrogate(
    log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, clip_range: float
) -> Tensor:
    """Per-sample PPO-clip loss of one denoising step (module docstring, L_i).

    ``ρ = exp(log_probs − old_log_probs)``; ``L = max(−A ρ, −A clip(ρ, 1 − ε, 1 + ε))``.
    Minimising the mean of L is DDPO-IS. At ρ = 1 the gradient is −A ∇log p_θ (REINFORCE).

    Args:
        log_probs: ``[B]`` log p_θ(x_{i+1} | x_i) under the current parameters (with grad).
        old_log_probs: ``[B]`` the same under the sampling parameters (constants).
        advantages: ``[B]`` advantages (already clipped if desired).
        clip_range: ε > 0.

    Returns:
        ``[B]`` losses; the caller averages them.

    Raises:
        ValueError: If the shapes differ or ``clip_range`` is not a finite float > 0.

    Example:
        >>> lp, old, adv = torch.log(torch.tensor([1.5])), torch.zeros(1), torch.tensor([2.0])
        >>> clipped_surrogate(lp, old, adv, 0.2).tolist()  # ρ = 1.5 is clipped to 1.2
        [-2.4000000953674316]
    """
    if not (math.isfinite(clip_range) and clip_range > 0):
        raise ValueError(f"clip_range: expected a finite float > 0, got {clip_range!r}")
    if log_probs.shape != old_log_probs.shape or log_probs.shape != advantages.shape:
        raise ValueError(
            "log_probs, old_log_probs, advantages: expected equal shapes, got "
            f"{tuple(log_probs.shape)}, {tuple(old_log_probs.shape)}, {tuple(advantages.shape)}"
        )
    ratio = torch.exp(log_probs - old_log_probs.detach())
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    return torch.maximum(unclipped, clipped)


def approx_kl(log_probs: Tensor, old_log_probs: Tensor) -> Tensor:
    """½ mean (log p_θ − log p_old)², the KL(p_old ‖ p_θ) estimate DDPO logs (0-dim)."""
    return 0.5 * (log_probs.detach() - old_log_probs.detach()).square().mean()


def clip_fraction(log_probs: Tensor, old_log_probs: Tensor, clip_range: float) -> Tensor:
    """Share of ratios ρ with |ρ − 1| > ε (0-dim float): how often the clip was active."""
    ratio = torch.exp(log_probs.detach() - old_log_probs.detach())
    return ((ratio - 1.0).abs() > clip_range).float().mean()


def train_step_indices(
    num_steps: int, fraction: float, generator: torch.Generator | None = None
) -> list[int]:
    """The denoising steps one training batch is trained on: ⌊fraction · T⌋ (at least 1) steps,
    in a random order (TRL's ``train_timestep_fraction``).

    The reference code draws a separate permutation per sample; here a training batch shares one
    permutation so that every UNet call sees a single timestep [O]. Both give each sample a
    uniformly random subset of the steps; with ``fraction = 1`` they train on exactly the same
    (step, sample) pairs and, as the optimiser steps only after all of them, give the same update.

    Args:
        num_steps: T >= 1.
        fraction: In (0, 1].
        generator: Random source of the permutation.

    Returns:
        Step indices in [0, T), distinct.

    Raises:
        ValueError: If ``num_steps`` < 1 or ``fraction`` is outside (0, 1].
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps: expected an int >= 1, got {num_steps!r}")
    if not (0.0 < fraction <= 1.0):
        raise ValueError(f"fraction: expected a float in (0, 1], got {fraction!r}")
    count = max(1, int(num_steps * fraction))
    return torch.randperm(num_steps, generator=generator)[:count].tolist()
