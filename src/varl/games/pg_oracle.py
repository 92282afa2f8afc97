"""A policy-gradient PSRO oracle in torch with the variance-aware episode re-weighting of RAE.

Paper: Slumbers et al., ICML 2023 (arXiv 2205.15434), PSRO-RAE. Reconstruction (spec rae.md
§2.2, our derivation): a risk-aware oracle for player i maximises

    J(θ) = Σ_j σ_j R_j(θ) − γ Σ_j σ_j (R_j(θ) − R̄(θ))²,   R̄ = Σ_j σ_j R_j,

over opponent policies j drawn from the meta-strategy σ_{-i}. Its gradient is
``Σ_j σ_j (1 − 2γ (R_j − R̄)) ∇R_j``: ordinary REINFORCE in which every episode played against
opponent j is weighted by ``1 − 2γ (R̂_j − R̂)``, with ``R̂_j`` the batch mean return against j.
``risk_aware=False`` sets every weight to 1 (the risk-neutral oracle).

The policy is tabular and time-dependent (softmax logits ``[H, S, A]`` trained with Adam);
episodes are simulated in bulk from the game's tabular model. This module imports torch and is
not loaded by ``import varl.games``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from varl._checks import FloatArray
from varl.games.markov import tabular
from varl.games.psro import MarkovProblem

__all__ = ["PolicyGradientOracle", "episode_weights"]


def episode_weights(
    returns: FloatArray, opponent: np.ndarray, sigma: FloatArray, gamma: float
) -> tuple[FloatArray, FloatArray]:
    """Per-episode REINFORCE weights and baselines of the mean–variance objective.

    Args:
        returns: ``[B]`` episode returns of the learning player.
        opponent: ``[B]`` index j of the opponent policy of each episode.
        sigma: ``[J]`` meta-strategy over the opponent policies.
        gamma: Risk aversion γ >= 0 (0: all weights 1).

    Returns:
        ``(weights [B], baselines [B])``: ``1 − 2γ (R̂_j − R̄)`` and ``R̂_j`` of each episode's
        opponent, where ``R̂_j`` is the mean return against j in the batch (opponents absent
        from the batch count with their σ weight at the batch mean) and ``R̄ = Σ_j σ_j R̂_j``.
    """
    n_opp = len(sigma)
    counts = np.bincount(opponent, minlength=n_opp)
    sums = np.bincount(opponent, weights=returns, minlength=n_opp)
    overall = float(returns.mean())
    means = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    r_bar = float(sigma @ means)
    weights = 1.0 - 2.0 * gamma * (means[opponent] - r_bar)
    return np.asarray(weights, dtype=np.float64), np.asarray(means[opponent], dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class PolicyGradientOracle:
    """REINFORCE best response for two-player tabular Markov games (PSRO oracle (c)).

    Call as ``oracle(problem, player, populations, sigma, gamma, rng)``; returns a stochastic
    policy ``[H, S, A]``.
    """

    risk_aware: bool = True
    """Re-weight episodes by ``1 − 2γ (R̂_j − R̄)`` (False: plain REINFORCE, γ ignored)."""
    episodes: int = 256
    """Episodes per update."""
    updates: int = 150
    """Adam updates."""
    lr: float = 0.3
    """Adam learning rate on the logits."""

    def __post_init__(self) -> None:
        for name in ("episodes", "updates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: expected a finite number > 0, got {self.lr!r}")

    def __call__(
        self,
        problem: Any,
        player: int,
        populations: list[list[Any]],
        sigma: list[FloatArray],
        gamma: float,
        rng: np.random.Generator,
    ) -> FloatArray:
        """Trains a new policy for ``player`` against ``σ_{-i}`` and returns its probabilities."""
        if not isinstance(problem, MarkovProblem):
            raise TypeError("PolicyGradientOracle: expected a tabular Markov game")
        game = problem.game
        other = 1 - player
        weights_opp = np.asarray(sigma[other], dtype=np.float64)
        opp_probs = np.stack(
            [
                tabular.policy_probs(game, problem.policy_for(other, pol))
                for pol in populations[other]
            ]
        )  # [J, H, S, A]
        g = gamma if self.risk_aware else 0.0
        logits = torch.zeros((game.horizon, game.num_states, game.num_actions), requires_grad=True)
        optimiser = torch.optim.Adam([logits], lr=self.lr)
        n = self.episodes
        for _ in range(self.updates):
            opponent = rng.choice(len(weights_opp), size=n, p=weights_opp)
            state = rng.choice(game.num_states, size=n, p=game.initial)
            log_prob = torch.zeros(n)
            returns = np.zeros(n)
            for t in range(game.horizon):
                logp = torch.log_softmax(logits[t, torch.as_tensor(state)], dim=-1)  # [n, A]
                mine = _draw(logp.detach().exp().double().numpy(), rng)
                log_prob = log_prob + logp[torch.arange(n), torch.as_tensor(mine)]
                theirs = _draw(opp_probs[opponent, t, state], rng)
                a, b = (mine, theirs) if player == 0 else (theirs, mine)
                k = _draw(game.next_prob[state, a, b], rng)
                returns += game.reward[state, a, b, k, player]
                state = game.next_state[state, a, b, k]
            weights, baseline = episode_weights(returns, opponent, weights_opp, g)
            advantage = torch.as_tensor(weights * (returns - baseline), dtype=torch.float32)
            loss = -(advantage * log_prob).mean()
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        with torch.no_grad():
            probs = torch.softmax(logits, dim=-1).double().numpy()
        out: FloatArray = np.asarray(probs / probs.sum(axis=-1, keepdims=True), dtype=np.float64)
        return out


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``probs [n, m]`` (from the PSRO run's generator)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    draws: np.ndarray = np.minimum((u >= cdf).sum(axis=1), probs.shape[1] - 1)
    return draws
