"""GVM allocation inside an online GRPO trainer: per-prompt estimates and the budget split.

Paper: GVM-RAFT, arXiv 2505.02391 (spec gvm_rlpr.md §1.2-§1.6). A generation batch holds P
distinct prompts and a budget of B completions (B = P·G for the uniform "G per prompt"). GVM
splits the same B among the prompts, n_i ∝ G_i / sqrt(p_i + α p_i^(1-β)), from each prompt's
acceptance rate p_i and accepted-sample gradient norm G_i.

Where the estimates come from (our decision, [O], following spec §1.3/§1.5): the reference
re-estimates p_i and G_i with a pre-sampling pass (N' completions per prompt, then one backward
pass per accepted completion w.r.t. the input embeddings) once per EM iteration, about 9 steps,
and uses them stale in between. :class:`GVMEstimates` keeps that scheme per prompt and lazily: a
prompt is pre-sampled when it first appears in a batch, and again once its estimate is
``refresh_steps`` optimiser steps old. Running statistics of the training rollouts were not used
because the allocation must be fixed *before* a batch is generated, the training rollouts of a
prompt depend on its (changing) allocation, and G_i needs per-sample gradient norms that trl's
fused loss never produces; the pre-sampling cost is extra compute, counted in the trainer's
metrics, as the paper's own accounting leaves it out.

Everything here is numpy only; the trainer glue lives in :mod:`varl.grpo.trainer_sampling`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from varl._checks import FloatArray, as_float_array, check_int
from varl.grpo.allocation import IntArray, gvm_allocation, gvm_weights, integerise_preserving_sum

__all__ = ["GVMEstimates", "allocate_budget"]


class GVMEstimates:
    """Per-prompt (acceptance rate, gradient norm) estimates with their age (checkpointable).

    Prompts are identified by a string key (the trainer uses the prompt text). An estimate made
    at optimiser step s is used up to step ``s + refresh_steps - 1`` and is stale from then on.

    Args:
        refresh_steps: Optimiser steps an estimate stays valid, >= 1.

    Example:
        >>> est = GVMEstimates(refresh_steps=2)
        >>> est.stale(["a", "b"], step=0)
        [0, 1]
        >>> est.update(["a", "b"], [0.5, 0.0], [2.0, 0.0], step=0)
        >>> est.stale(["a", "b"], step=1), est.stale(["b", "a"], step=2)
        ([], [0, 1])
        >>> [v.tolist() for v in est.get(["b", "a"])]
        [[0.0, 0.5], [0.0, 2.0]]
    """

    def __init__(self, refresh_steps: int = 10) -> None:
        self.refresh_steps = check_int(refresh_steps, "refresh_steps", minimum=1)
        self.table: dict[str, tuple[float, float, int]] = {}

    def __len__(self) -> int:
        return len(self.table)

    def stale(self, keys: Sequence[str], step: int) -> list[int]:
        """Positions in ``keys`` with no estimate or one ``refresh_steps`` or more steps old."""
        out = []
        for i, key in enumerate(keys):
            entry = self.table.get(key)
            if entry is None or step - entry[2] >= self.refresh_steps:
                out.append(i)
        return out

    def update(
        self, keys: Sequence[str], accept_rate: ArrayLike, grad_norm: ArrayLike, step: int
    ) -> None:
        """Stores fresh estimates made at optimiser ``step``.

        Raises:
            ValueError: If the lengths differ, a rate is outside [0, 1] or a norm is negative or
                non-finite.
        """
        p = as_float_array(accept_rate, "accept_rate", finite=True)
        g = as_float_array(grad_norm, "grad_norm", finite=True)
        if p.shape != (len(keys),) or g.shape != (len(keys),):
            raise ValueError(
                f"accept_rate, grad_norm: expected two vectors of the {len(keys)} keys, got "
                f"{p.shape} and {g.shape}"
            )
        if np.any((p < 0) | (p > 1)) or np.any(g < 0):
            raise ValueError("accept_rate, grad_norm: expected rates in [0, 1] and norms >= 0")
        for key, rate, norm in zip(keys, p, g, strict=True):
            self.table[key] = (float(rate), float(norm), int(step))

    def get(self, keys: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        """The ``[K]`` acceptance rates and ``[K]`` gradient norms of ``keys``.

        Raises:
            KeyError: If a key has never been estimated.
        """
        missing = [k for k in keys if k not in self.table]
        if missing:
            raise KeyError(f"keys: no GVM estimate for {missing[:3]!r}")
        rows = [self.table[k] for k in keys]
        return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])

    def state_dict(self) -> dict[str, Any]:
        """The full state, JSON-serialisable."""
        return {
            "refresh_steps": self.refresh_steps,
            "estimates": {
                k: {"accept_rate": p, "grad_norm": g, "step": s}
                for k, (p, g, s) in self.table.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output.

        Raises:
            ValueError: If a key is missing or a value is invalid.
        """
        missing = {"refresh_steps", "estimates"} - set(state)
        if missing:
            raise ValueError(f"state: missing keys {sorted(missing)}")
        self.refresh_steps = check_int(state["refresh_steps"], "refresh_steps", minimum=1)
        table = {}
        for key, entry in state["estimates"].items():
            p, g = float(entry["accept_rate"]), float(entry["grad_norm"])
            if not (0.0 <= p <= 1.0 and np.isfinite(g) and g >= 0):
                raise ValueError(f"state: invalid estimate for {key!r}: {entry!r}")
            table[str(key)] = (p, g, int(entry["step"]))
        self.table = table


def allocate_budget(
    accept_rate: ArrayLike,
    grad_norm: ArrayLike,
    budget: int,
    *,
    alpha: float = 1e-3,
    beta: float = 2.0,
) -> tuple[IntArray, bool]:
    """GVM counts ``[P]`` summing to ``budget``, or the uniform split when GVM has no signal.

    When no prompt has both p_i > 0 and G_i > 0 (nothing accepted in pre-sampling), the GVM
    weights are all zero. The reference skips such a batch; an online trainer cannot skip its
    step, so the budget is split as evenly as possible instead ([O]; ties to the lowest index).

    Args:
        accept_rate: ``[P]`` acceptance rates.
        grad_norm: ``[P]`` gradient norms.
        budget: Completions to allocate, >= P.
        alpha: GVM regulariser α.
        beta: GVM exponent β.

    Returns:
        ``(counts, uniform_fallback)``.

    Raises:
        ValueError: On bad estimates or a budget below the number of prompts.

    Example:
        >>> counts, fallback = allocate_budget([0.25, 1.0, 0.5, 0.0], [1.0, 2.0, 0.0, 1.0], 16)
        >>> counts.tolist(), fallback
        ([8, 8, 0, 0], False)
        >>> counts, fallback = allocate_budget([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 10)
        >>> counts.tolist(), fallback
        ([4, 3, 3], True)
    """
    weights = gvm_weights(accept_rate, grad_norm, alpha=alpha, beta=beta)
    if isinstance(budget, bool) or int(budget) != budget or budget < weights.size:
        raise ValueError(f"budget: expected an int >= {weights.size} (the prompts), got {budget!r}")
    if not np.any(weights > 0):
        return integerise_preserving_sum(np.full(weights.size, 1.0 / weights.size), budget), True
    return gvm_allocation(accept_rate, grad_norm, int(budget), alpha=alpha, beta=beta), False
