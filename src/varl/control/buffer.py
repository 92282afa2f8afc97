"""A fixed-size FIFO replay buffer of transitions (s, a, r, s', terminated), numpy-backed."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from varl._checks import as_float_array

_FIELDS = ("obs", "act", "rew", "next_obs", "term")


class ReplayBuffer:
    """Circular storage of ``capacity`` transitions with uniform sampling.

    ``term`` is 1.0 only for a true termination; a time-limit truncation is stored as 0.0 so the
    target keeps bootstrapping (spec §1.2 item 4).

    Args:
        capacity: Maximum number of transitions kept; the oldest are overwritten.
        obs_dim: Observation size O.
        act_dim: Action size A.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: expected >= 1, got {capacity}")
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim/act_dim: expected >= 1, got {obs_dim}/{act_dim}")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.act = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rew = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.term = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Any, act: Any, rew: Any, next_obs: Any, term: Any) -> None:
        """Appends ``N`` transitions: ``obs, next_obs [N, O]``, ``act [N, A]``, ``rew, term [N]``.

        Raises:
            ValueError: On mismatched shapes or non-finite values.
        """
        o = as_float_array(obs, "obs", last_dim=self.obs.shape[1], finite=True).reshape(
            -1, self.obs.shape[1]
        )
        n = o.shape[0]
        a = as_float_array(act, "act", last_dim=self.act.shape[1], finite=True).reshape(n, -1)
        r = as_float_array(rew, "rew", finite=True).reshape(n)
        o2 = as_float_array(next_obs, "next_obs", finite=True).reshape(n, self.obs.shape[1])
        d = as_float_array(term, "term", finite=True).reshape(n)
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx], self.act[idx], self.rew[idx], self.next_obs[idx], self.term[idx] = (
            o,
            a,
            r,
            o2,
            d,
        )
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Draws ``batch_size`` transitions uniformly with replacement.

        Returns:
            Tensors ``obs [B, O]``, ``act [B, A]``, ``rew [B]``, ``next_obs [B, O]``, ``term [B]``.

        Raises:
            ValueError: If the buffer is empty.
        """
        if self.size == 0:
            raise ValueError("batch_size: cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return {name: torch.from_numpy(getattr(self, name)[idx]) for name in _FIELDS}

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions (as tensors, loadable with ``torch.load(weights_only=True)``)."""
        state: dict[str, Any] = {
            name: torch.from_numpy(getattr(self, name)[: self.size].copy()) for name in _FIELDS
        }
        state.update(pos=self.pos, size=self.size, capacity=self.capacity)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output into a buffer of the same capacity and sizes."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"state: buffer capacity {state['capacity']} differs from {self.capacity}"
            )
        size = int(state["size"])
        for name in _FIELDS:
            values: NDArray[np.float32] = np.asarray(state[name], dtype=np.float32)
            target = getattr(self, name)
            if values.shape[1:] != target.shape[1:] or values.shape[0] != size:
                raise ValueError(f"state: {name} has shape {values.shape}, expected {size} rows")
            target[:size] = values
        self.size = size
        self.pos = int(state["pos"])
