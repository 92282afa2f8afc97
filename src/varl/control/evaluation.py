"""Policy evaluation and environment helpers shared by the agent, experiments and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np


def make_env(env_id: str, reward_scale: float = 1.0) -> gym.Env[Any, Any]:
    """``gym.make(env_id)``, with rewards multiplied by ``reward_scale`` when it is not 1.

    Raises:
        ValueError: If ``reward_scale`` is not a finite number > 0.
    """
    scale = float(reward_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"reward_scale: expected a finite number > 0, got {reward_scale!r}")
    env = gym.make(env_id)
    if scale != 1.0:
        env = gym.wrappers.TransformReward(env, lambda r: scale * float(r))
    return env


def evaluate_policy(
    act: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]],
    env: gym.Env[Any, Any],
    episodes: int,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and (population) std of the undiscounted return of ``act`` over ``episodes``.

    Episode k is reset with seed ``seed + k``, so two policies evaluated with the same seed
    face the same initial states.

    Args:
        act: Maps one observation ``[O]`` to one environment action ``[A]``.
        env: The evaluation environment (a single, non-vectorised ``Env``).
        episodes: Number of episodes, >= 1.
        seed: Seed of the first episode.

    Raises:
        ValueError: If ``episodes`` < 1 or a return is not finite.
    """
    if episodes < 1:
        raise ValueError(f"episodes: expected >= 1, got {episodes}")
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = bool(terminated or truncated)
        if not np.isfinite(total):
            raise ValueError(f"env: non-finite return in evaluation episode {k}")
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))
