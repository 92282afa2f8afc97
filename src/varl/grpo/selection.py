"""Which prompts are worth training on: RLPR's online std filter, Temporal-R1's offline selection.

Both rest on the same fact: a GRPO group whose rewards are all equal has zero advantage and so no
gradient; a prompt whose rewards barely vary gives little. The shared statistic is the unbiased
std of the rewards of a prompt's rollouts.

- :class:`RewardStdFilter` (RLPR, arXiv 2506.18254, spec gvm_rlpr.md §2.3): online, per step,
  keep a group when its std >= β · EMA of the mean group std; the EMA is seeded from the mean over
  the warm-up steps, during which nothing is filtered, then follows ``EMA ← d·EMA + (1-d)·m_t``.
- :func:`select_informative` (Temporal-R1, arXiv 2506.01908, spec tw_grpo_temporal_r1.md §2.3):
  offline, before training, keep items whose K rollouts of the base model have std > ``min_std``
  (0 for binary rewards: "neither all right nor all wrong"; about 0.1 for IoU rewards). The
  constants are our proposal: the paper's equations could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from varl._checks import FloatArray, as_float_array, check_nonnegative, check_positive

BoolArray = NDArray[np.bool_]


def group_std(rewards: ArrayLike) -> FloatArray:
    """Unbiased std of each row of ``[N, K]`` rewards (0 for K = 1), the shared statistic.

    Raises:
        ValueError: If ``rewards`` is not ``[N, K]`` or holds NaN/inf.
    """
    r = as_float_array(rewards, "rewards", finite=True)
    if r.ndim != 2 or r.shape[1] < 1:
        raise ValueError(f"rewards: expected shape [N, K] with K >= 1, got {r.shape}")
    if r.shape[1] == 1:
        return np.zeros(r.shape[0])
    std: FloatArray = r.std(axis=1, ddof=1)
    return std


@dataclass(frozen=True)
class SelectionSummary:
    """What :func:`select_informative` kept and why it dropped the rest.

    Attributes:
        kept: Items kept.
        all_correct: Dropped: every rollout scored the maximum reward ``high``.
        all_wrong: Dropped: every rollout scored the minimum reward ``low``.
        low_variance: Dropped: rewards vary by at most ``min_std`` without being all-high/all-low.
    """

    kept: int
    all_correct: int
    all_wrong: int
    low_variance: int


def select_informative(
    rewards: ArrayLike,
    *,
    min_std: float = 0.0,
    top_n: int | None = None,
    low: float = 0.0,
    high: float = 1.0,
) -> tuple[BoolArray, SelectionSummary]:
    """Variance-aware data selection: keep items whose rollouts disagree.

    Args:
        rewards: ``[N, K]`` task rewards of K rollouts per item (format rewards excluded).
        min_std: Keep an item when its unbiased std is > ``min_std`` (0 for binary rewards).
        top_n: If set, keep at most this many of the qualifying items, largest std first, ties
            broken by the lowest index.
        low: The reward of a wrong rollout (for the all-wrong count).
        high: The reward of a right rollout (for the all-correct count).

    Returns:
        ``[N]`` keep mask and the :class:`SelectionSummary`.

    Raises:
        ValueError: On a bad shape, non-finite rewards, ``min_std < 0`` or ``top_n < 0``.

    Example:
        >>> keep, summary = select_informative([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 1]])
        >>> keep.tolist(), summary
        ([False, False, True], SelectionSummary(kept=1, all_correct=1, all_wrong=1, low_variance=0))
    """
    r = as_float_array(rewards, "rewards", finite=True)
    std = group_std(r)
    min_std = check_nonnegative(min_std, "min_std")
    keep = std > min_std
    if top_n is not None:
        if isinstance(top_n, bool) or int(top_n) != top_n or top_n < 0:
            raise ValueError(f"top_n: expected None or an int >= 0, got {top_n!r}")
        order = np.lexsort((np.arange(std.size), -std))  # largest std first, then lowest index
        ranked = [i for i in order if keep[i]][: int(top_n)]
        keep = np.zeros_like(keep)
        keep[ranked] = True
    dropped = ~keep & (std <= min_std)
    all_correct = dropped & np.all(r == high, axis=1)
    all_wrong = dropped & np.all(r == low, axis=1)
    summary = SelectionSummary(
        kept=int(keep.sum()),
        all_correct=int(all_correct.sum()),
        all_wrong=int(all_wrong.sum()),
        low_variance=int((dropped & ~all_correct & ~all_wrong).sum()),
    )
    return keep, summary


class RewardStdFilter:
    """RLPR's adaptive std filter over GRPO groups, with its EMA state (checkpointable).

    Call :meth:`step` once per training step with the std of every generated group (those the
    filter then drops included); it returns which groups to keep.

    Args:
        beta: Keep a group when std >= beta · EMA (0.5 for Qwen2.5-7B in RLPR; 0.9 Llama; 1.0
            Gemma).
        ema_decay: d in ``EMA ← d·EMA + (1-d)·m_t`` (0.99), in (0, 1).
        warmup_steps: Steps that only record the mean std m_t; the EMA starts as their mean (RLPR
            uses steps 6-10, i.e. 5 steps), >= 1.

    Example:
        >>> f = RewardStdFilter(beta=0.5, warmup_steps=2)
        >>> f.step([0.2, 0.4]).tolist(), f.step([0.1, 0.3]).tolist()  # warm-up keeps all
        ([True, True], [True, True])
        >>> f.ema  # mean of the warm-up means 0.3 and 0.2
        0.25
        >>> f.step([0.1, 0.2]).tolist()  # threshold 0.5 * 0.25 = 0.125
        [False, True]
    """

    def __init__(self, beta: float = 0.5, ema_decay: float = 0.99, warmup_steps: int = 5) -> None:
        self._configure(beta, ema_decay, warmup_steps)
        self.steps = 0
        self.warmup_means: list[float] = []
        self.ema: float | None = None

    def _configure(self, beta: float, ema_decay: float, warmup_steps: int) -> None:
        self.beta = check_positive(beta, "beta")
        decay = float(ema_decay)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay: expected a number in (0, 1), got {ema_decay!r}")
        self.ema_decay = decay
        if isinstance(warmup_steps, bool) or int(warmup_steps) != warmup_steps or warmup_steps < 1:
            raise ValueError(f"warmup_steps: expected an int >= 1, got {warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)

    @property
    def threshold(self) -> float | None:
        """The current keep threshold beta · EMA, or None during warm-up."""
        return None if self.ema is None else self.beta * self.ema

    def step(self, stds: ArrayLike) -> BoolArray:
        """Records this step's group stds ``[N]`` and returns the ``[N]`` keep mask.

        Raises:
            ValueError: If ``stds`` is not a non-empty vector of finite numbers >= 0.
        """
        s = as_float_array(stds, "stds", finite=True)
        if s.ndim != 1 or s.size == 0 or np.any(s < 0):
            raise ValueError("stds: expected a non-empty [N] vector of group stds >= 0")
        mean = float(s.mean())
        self.steps += 1
        if self.ema is None:
            self.warmup_means.append(mean)
            if len(self.warmup_means) == self.warmup_steps:
                self.ema = float(np.mean(self.warmup_means))
            return np.ones(s.size, dtype=np.bool_)
        keep: BoolArray = s >= self.beta * self.ema
        self.ema = self.ema_decay * self.ema + (1.0 - self.ema_decay) * mean
        return keep

    def state_dict(self) -> dict[str, Any]:
        """The filter's full state, for checkpoints."""
        return {
            "beta": self.beta,
            "ema_decay": self.ema_decay,
            "warmup_steps": self.warmup_steps,
            "steps": self.steps,
            "warmup_means": list(self.warmup_means),
            "ema": self.ema,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output (settings included).

        Raises:
            ValueError: If a key is missing.
        """
        missing = {"beta", "ema_decay", "warmup_steps", "steps", "warmup_means", "ema"} - set(state)
        if missing:
            raise ValueError(f"state: missing keys {sorted(missing)}")
        self._configure(state["beta"], state["ema_decay"], state["warmup_steps"])
        self.steps = int(state["steps"])
        self.warmup_means = [float(v) for v in state["warmup_means"]]
        self.ema = None if state["ema"] is None else float(state["ema"])
