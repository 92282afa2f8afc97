"""Tests for varl.games.pg_oracle: the variance-aware weights and a fixed-seed learning run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")

from varl.games.markov import make_two_way, tabular  # noqa: E402
from varl.games.pg_oracle import PolicyGradientOracle, episode_weights  # noqa: E402
from varl.games.psro import (  # noqa: E402
    MarkovProblem,
    MatrixProblem,
    ValueIterationOracle,
    mean_variance_score,
    psro,
)

torch.set_num_threads(1)
ROAD = make_two_way()
GO = np.ones((ROAD.horizon, ROAD.num_states), dtype=np.int64)
WAIT = np.zeros_like(GO)


def test_episode_weights_by_hand() -> None:
    returns = np.array([1.0, 3.0, 0.0, 2.0])
    opponent = np.array([0, 0, 1, 1])
    # Means 2 (vs 0) and 1 (vs 1), R̄ = 1.5: weights 1 - 2γ(±0.5) = 0.75 / 1.25 at γ = 0.25.
    weights, baseline = episode_weights(returns, opponent, np.array([0.5, 0.5]), 0.25)
    assert_allclose(weights, [0.75, 0.75, 1.25, 1.25])
    assert_allclose(baseline, [2, 2, 1, 1])
    flat, _ = episode_weights(returns, opponent, np.array([0.5, 0.5]), 0.0)
    assert_allclose(flat, 1.0)
    # An opponent missing from the batch counts at the batch mean (1.5): R̄ = 0.5*2+0.3*1+0.2*1.5.
    weights, _ = episode_weights(returns, opponent, np.array([0.5, 0.3, 0.2]), 0.5)
    assert_allclose(weights, [1 - (2 - 1.6), 1 - (2 - 1.6), 1 - (1 - 1.6), 1 - (1 - 1.6)])


def test_learns_to_watch_the_opponent_like_the_exact_oracle() -> None:
    problem = MarkovProblem(ROAD)
    populations, sigma = [[WAIT], [GO, WAIT]], [np.ones(1), np.array([0.5, 0.5])]

    def score(policy: np.ndarray) -> float:
        r = np.array([tabular.evaluate(ROAD, policy, o)[0] for o in populations[1]])
        return float(mean_variance_score(r[None], sigma[1], 0.5)[0])

    exact = ValueIterationOracle()(problem, 0, populations, sigma, 0.5, np.random.default_rng(0))
    learned = PolicyGradientOracle()(problem, 0, populations, sigma, 0.5, np.random.default_rng(0))
    assert learned.shape == (ROAD.horizon, ROAD.num_states, 2)
    assert_allclose(learned.sum(axis=-1), 1.0)
    # Waiting one step and then overtaking a waiter (but never a driver already out) scores
    # 0.076 here; the learned stochastic policy gets close, far above always-wait (-0.4).
    assert score(exact) == pytest.approx(0.0758, abs=1e-3)
    assert score(learned) > score(exact) - 0.1
    assert score(learned) > score(WAIT) + 0.3


def test_psro_with_the_policy_gradient_oracle_checkpoints(tmp_path: Path) -> None:
    oracle = PolicyGradientOracle(updates=30, episodes=128)
    problem = MarkovProblem(ROAD, symmetric=True)
    result = psro(problem, oracle=oracle, iterations=2, gamma=1.0, seed=0, checkpoint=tmp_path)
    assert len(result.populations[0]) >= 2
    assert all(np.asarray(p).dtype == np.float64 for p in result.populations[0])
    resumed = psro(
        MarkovProblem(ROAD, symmetric=True),
        oracle=oracle,
        iterations=2,
        gamma=1.0,
        seed=0,
        checkpoint=tmp_path,
        resume=True,
    )
    assert_allclose(resumed.meta_game[0], result.meta_game[0])


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="episodes"):
        PolicyGradientOracle(episodes=0)
    with pytest.raises(ValueError, match="lr"):
        PolicyGradientOracle(lr=-1.0)
    with pytest.raises(TypeError, match="tabular Markov"):
        PolicyGradientOracle()(
            MatrixProblem([np.eye(2), np.eye(2)]),
            0,
            [[0], [0]],
            [np.ones(1), np.ones(1)],
            0.0,
            np.random.default_rng(0),
        )
