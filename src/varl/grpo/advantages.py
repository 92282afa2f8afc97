"""Group-normalised advantages (GRPO) and group reward statistics.

GRPO (Shao et al., arXiv 2402.03300) scores each of the G completions of a prompt against the
others: ``A_i = (r_i - mean_G r) / (std_G r + eps)``. TRL, TW-GRPO (arXiv 2505.24718 §1.3) and
GUI-G² (arXiv 2507.15846 eq. 7) use torch's unbiased std and eps = 1e-4; EasyR1/Temporal-R1 use
eps = 1e-6. A group whose rewards are all equal has zero advantage: it gives no gradient, which
is why the share of such "zero-std" groups is the number every variance-aware method watches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

Scale = Literal["group", "batch", "none"]
_SCALES = ("group", "batch", "none")


def _check_rewards(rewards: Tensor) -> None:
    if not isinstance(rewards, Tensor) or not rewards.is_floating_point():
        raise TypeError("rewards: expected a floating-point torch.Tensor of shape [B, G]")
    if rewards.dim() != 2:
        raise ValueError(f"rewards: expected shape [B, G], got {tuple(rewards.shape)}")
    if torch.isinf(rewards).any():
        raise ValueError("rewards: contains inf (NaN is allowed and means 'not scored')")


def _group_moments(rewards: Tensor, unbiased: bool) -> tuple[Tensor, Tensor]:
    """Per-group mean and std over the non-NaN entries ``[B]``; std is 0 below 2 values."""
    valid = ~torch.isnan(rewards)
    count = valid.sum(dim=1)
    filled = torch.where(valid, rewards, torch.zeros_like(rewards))
    mean = filled.sum(dim=1) / count.clamp(min=1)
    sq = torch.where(valid, (rewards - mean[:, None]) ** 2, torch.zeros_like(rewards)).sum(dim=1)
    dof = (count - 1) if unbiased else count
    std = torch.where(dof > 0, (sq / dof.clamp(min=1)).sqrt(), torch.zeros_like(sq))
    return mean, std


def group_advantages(
    rewards: Tensor,
    *,
    scale: Scale = "group",
    eps: float = 1e-4,
    unbiased: bool = True,
) -> Tensor:
    """Group-relative advantages ``A = (r - mean_G r) / (std + eps)``.

    Args:
        rewards: ``[B, G]`` rewards, B prompts by G completions. NaN marks a completion that was
            not scored (TRL's ``None``): it is left out of its group's mean and std and gets
            advantage 0.
        scale: ``"group"`` divides by each group's std (GRPO); ``"batch"`` by the std of all
            scored rewards in the batch (TRL's ``scale_rewards="batch"``); ``"none"`` only centres
            (Dr. GRPO).
        eps: Added to the std before dividing; 1e-4 as in TRL and TW-GRPO.
        unbiased: Divide the squared deviations by n - 1 (torch's default, used by the papers)
            instead of n. A group with fewer than 2 scored values has std 0.

    Returns:
        ``[B, G]`` advantages; 0 wherever the reward is NaN, and 0 for a group of equal rewards.

    Raises:
        TypeError: If ``rewards`` is not a floating-point tensor.
        ValueError: On a wrong shape, an inf reward, an unknown ``scale`` or ``eps < 0``.

    Example:
        >>> group_advantages(torch.tensor([[1.0, 0.0, 0.0, 0.0]])).tolist()  # doctest: +ELLIPSIS
        [[1.4997..., -0.4999..., -0.4999..., -0.4999...]]
    """
    _check_rewards(rewards)
    if scale not in _SCALES:
        raise ValueError(f"scale: expected one of {_SCALES}, got {scale!r}")
    if not eps >= 0:
        raise ValueError(f"eps: expected a number >= 0, got {eps!r}")
    mean, std = _group_moments(rewards, unbiased)
    centred = rewards - mean[:, None]
    if scale == "group":
        # A zero-std group is all-equal: its centred rewards are 0, and stay 0 even at eps = 0.
        centred = torch.where(std[:, None] > 0, centred / (std[:, None] + eps), 0.0)
    elif scale == "batch":
        scored = rewards[~torch.isnan(rewards)]
        n = scored.numel()
        dof = n - 1 if unbiased else n
        batch_std = (
            scored.std(correction=1 if unbiased else 0) if dof > 0 else rewards.new_zeros(())
        )
        centred = centred / (batch_std + eps) if batch_std > 0 else torch.zeros_like(centred)
    return torch.where(torch.isnan(rewards), torch.zeros_like(rewards), centred)


def group_std(rewards: Tensor, *, unbiased: bool = True) -> Tensor:
    """Within-group std ``[B]`` of ``[B, G]`` rewards, NaN entries left out (0 below 2 values).

    Example:
        >>> group_std(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).tolist()  # doctest: +ELLIPSIS
        [0.707..., 0.0]
    """
    _check_rewards(rewards)
    return _group_moments(rewards, unbiased)[1]


class GroupRewardStats(NamedTuple):
    """Summary of a batch of group rewards, as TRL logs them.

    Attributes:
        mean: Mean of all scored rewards (TRL's ``reward``).
        std: Mean over groups of the within-group std (TRL's ``reward_std`` is instead the
            std of the whole batch).
        frac_zero_std: Share of groups whose std is below ``tol`` (``frac_reward_zero_std``).
    """

    mean: float
    std: float
    frac_zero_std: float


def group_reward_stats(
    rewards: Tensor, *, unbiased: bool = True, tol: float = 1e-8
) -> GroupRewardStats:
    """Mean reward, mean within-group std and the share of zero-std ("dead") groups.

    The share of zero-std groups matches TRL's ``frac_reward_zero_std``.

    Args:
        rewards: ``[B, G]`` rewards; NaN entries are ignored.
        unbiased: Use the n - 1 std, as :func:`group_advantages` does.
        tol: A group whose std is below this counts as zero-std (it gives no gradient).

    Returns:
        A :class:`GroupRewardStats`.

    Raises:
        TypeError: If ``rewards`` is not a floating-point tensor.
        ValueError: On a wrong shape or an inf reward.

    Example:
        >>> group_reward_stats(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))  # doctest: +ELLIPSIS
        GroupRewardStats(mean=0.75, std=0.353..., frac_zero_std=0.5)
    """
    _check_rewards(rewards)
    _, std = _group_moments(rewards, unbiased)
    scored = rewards[~torch.isnan(rewards)]
    mean = float(scored.mean()) if scored.numel() else 0.0
    return GroupRewardStats(
        mean=mean,
        std=float(std.mean()) if std.numel() else 0.0,
        frac_zero_std=float((std < tol).float().mean()) if std.numel() else 0.0,
    )


def _check_group_sizes(group_sizes: Sequence[int], total: int) -> list[int]:
    """Returns the sizes as ints after checking they are ints >= 0 summing to ``total``.

    Raises:
        ValueError: If a size is not an int >= 0 or the sizes do not sum to ``total``.
    """
    sizes = []
    for n in group_sizes:
        if isinstance(n, bool) or not float(n).is_integer() or n < 0:
            raise ValueError(f"group_sizes: expected ints >= 0, got {list(group_sizes)!r}")
        sizes.append(int(n))
    if sum(sizes) != total:
        raise ValueError(
            f"group_sizes: expected sizes summing to the {total} rewards, got a sum of {sum(sizes)}"
        )
    return sizes


def variable_group_advantages(
    rewards: Tensor,
    group_sizes: Sequence[int],
    *,
    scale: Scale = "group",
    eps: float = 1e-4,
    unbiased: bool = True,
    singleton: Literal["zero", "raw"] = "zero",
) -> Tensor:
    """GVM-GRPO advantages ``A = (r - mean_i r) / (std_i r + eps)`` per variable-size group.

    With GVM allocation (arXiv 2505.02391, spec gvm_rlpr.md §1.6) prompt i gets n_i completions
    instead of a fixed G, and all n_i completions of a prompt form one GRPO group. The batch is a
    flat ``[N]`` vector laid out group after group (n_1 rows of prompt 1, then n_2 rows of prompt
    2, ...; a prompt with n_i = 0 has no rows), and each group is normalised on its own exactly as
    :func:`group_advantages` normalises a row of ``[B, G]``.

    A group of one completion has no within-group baseline. With ``singleton="zero"`` (varl's
    default) its advantage is 0: like an all-equal group, it contributes no gradient. With
    ``singleton="raw"`` it follows the reference code, which gives such a group mean 0 and std 1,
    so ``A = r / (1 + eps)``, the raw reward (spec §1.6 "Gotcha"; spec §6.1 test 8).

    Args:
        rewards: ``[N]`` rewards, group after group. NaN marks an unscored completion: advantage
            0, and left out of its group's statistics.
        group_sizes: The P group sizes n_i >= 0, summing to N.
        scale: As in :func:`group_advantages`: "group" divides by each
            group's std, "batch" by the std of all scored rewards, "none" only centres.
        eps: Added to the std before dividing (1e-4 as trl; the GVM reference uses 1e-6).
        unbiased: Unbiased (n - 1) std, as torch and the reference.
        singleton: "zero" or "raw", the rule for a group of size 1 (see above).

    Returns:
        ``[N]`` advantages in the order of ``rewards``.

    Raises:
        TypeError: If ``rewards`` is not a floating-point tensor.
        ValueError: If ``rewards`` is not 1-D or holds inf, the sizes are not ints >= 0 summing
            to N, or ``singleton``, ``scale`` or ``eps`` is invalid.

    Example:
        >>> r = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5], dtype=torch.float64)
        >>> variable_group_advantages(r, [3, 1, 0, 2], eps=1e-6).round(decimals=4).tolist()
        [1.1547, -0.5773, -0.5773, 0.0, 0.0, 0.0]
    """
    if not isinstance(rewards, Tensor) or not rewards.is_floating_point():
        raise TypeError("rewards: expected a floating-point torch.Tensor of shape [N]")
    if rewards.dim() != 1:
        raise ValueError(f"rewards: expected shape [N], got {tuple(rewards.shape)}")
    sizes = _check_group_sizes(group_sizes, rewards.numel())
    if singleton not in ("zero", "raw"):
        raise ValueError(f"singleton: expected 'zero' or 'raw', got {singleton!r}")
    present = [n for n in sizes if n > 0]
    if not present:
        return rewards.new_zeros(0)
    # Pad to [P, max n] with NaN, which group_advantages leaves out of every statistic.
    device = rewards.device
    counts = torch.tensor(present, device=device)
    padded = rewards.new_full((len(present), max(present)), float("nan"))
    rows = torch.repeat_interleave(torch.arange(len(present), device=device), counts)
    cols = torch.arange(rewards.numel(), device=device) - (torch.cumsum(counts, 0) - counts)[rows]
    padded[rows, cols] = rewards
    advantages = group_advantages(padded, scale=scale, eps=eps, unbiased=unbiased)[rows, cols]
    if singleton == "raw":
        alone = (counts == 1)[rows] & ~torch.isnan(rewards)
        advantages = torch.where(alone, rewards / (1.0 + eps), advantages)
    return advantages
