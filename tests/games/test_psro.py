"""Tests for varl.games.psro: the loop, oracles, meta-solvers, checkpoints and resumption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from varl.games.markov import event_probability, make_stag_hunt, make_two_way, tabular
from varl.games.markov.stag_hunt import StagHuntConfig, stag_chaser_policy
from varl.games.nash import exploitability
from varl.games.normal_form import NormalFormGame
from varl.games.psro import (
    MarkovProblem,
    MatrixOracle,
    MatrixProblem,
    PSROResult,
    PSROState,
    ValueIterationOracle,
    mean_variance_score,
    psro,
    rae_meta_solver,
    uniform_meta_solver,
)
from varl.games.rae import payoff_variance, rae_gap

T2 = NormalFormGame.from_bimatrix([[1, 1], [2, -10]], [[1, 0], [0, 1]])
RPS = NormalFormGame.from_bimatrix([[0, -1, 1], [1, 0, -1], [-1, 1, 0]])


def _action_profile(result: PSROResult, game: NormalFormGame) -> list[np.ndarray]:
    problem = MatrixProblem(game)
    return [
        problem.mixed_strategy(result.populations[i], result.meta_strategy[i], i) for i in range(2)
    ]


def test_mean_variance_score_by_hand() -> None:
    # Returns (2, -10) against weights (0.95, 0.05): mean 1.4, variance 144 * 0.95 * 0.05.
    got = mean_variance_score([[1, 1], [2, -10]], [0.95, 0.05], 0.5)
    assert_allclose(got, [1.0, 1.4 - 0.5 * 144 * 0.95 * 0.05])
    assert_allclose(mean_variance_score([[2, -10]], [0.95, 0.05], 0.0), [1.4])


def test_matrix_oracle_risk_aware_and_neutral() -> None:
    problem = MatrixProblem(T2)
    populations, sigma = [[0, 1], [0, 1]], [np.array([0.5, 0.5]), np.array([0.95, 0.05])]
    rng = np.random.default_rng(0)
    assert MatrixOracle()(problem, 0, populations, sigma, 0.5, rng) == 0  # Safe
    assert MatrixOracle(risk_aware=False)(problem, 0, populations, sigma, 0.5, rng) == 1
    with pytest.raises(TypeError, match="normal-form"):
        MatrixOracle()(MarkovProblem(make_two_way()), 0, populations, sigma, 0.5, rng)


def test_t5_psro_rae_on_the_high_risk_game() -> None:
    rae = psro(T2, meta_solver="rae", gamma=0.5, iterations=10, seed=0)
    nash = psro(T2, meta_solver="nash", gamma=0.0, iterations=10, seed=0)
    assert rae.converged and 0 in rae.populations[0]  # Safe is in the support
    x_rae, x_nash = _action_profile(rae, T2), _action_profile(nash, T2)
    assert x_rae[0][0] > 0.5
    assert rae_gap(T2, x_rae, gamma=0.5) < 1e-2
    assert payoff_variance(T2, x_rae, 0) < payoff_variance(T2, x_nash, 0)
    assert rae.history[0]["population_sizes"] == [1, 1]
    assert {"meta_strategy", "gains", "added", "meta_gap", "seconds"} <= set(rae.history[-1])


def test_psro_nash_solves_rps() -> None:
    result = psro(RPS, meta_solver="nash", gamma=0.0, iterations=10, seed=1)
    assert sorted(result.populations[0]) == [0, 1, 2] and result.converged
    profile = _action_profile(result, RPS)
    assert_allclose(profile[0], [1 / 3] * 3, atol=0.02)
    assert exploitability(RPS, profile) < 0.02


def test_uniform_and_callable_meta_solvers() -> None:
    uniform = psro(RPS, meta_solver="uniform", iterations=5, seed=0)
    assert all(np.allclose(s, 1 / len(s)) for s in uniform.meta_strategy)
    custom = psro(RPS, meta_solver=uniform_meta_solver, iterations=5, seed=0)
    assert custom.populations == uniform.populations
    assert uniform_meta_solver([np.zeros((2, 3)), np.zeros((2, 3))])[1].tolist() == [1 / 3] * 3


def test_checkpoint_resume_gives_the_same_run(tmp_path: Path) -> None:
    game = make_two_way()
    straight = psro(MarkovProblem(game, symmetric=True), iterations=3, seed=4, gamma=0.5)
    ckpt = tmp_path / "run"
    psro(MarkovProblem(game, symmetric=True), iterations=1, seed=4, gamma=0.5, checkpoint=ckpt)
    assert (ckpt / "psro_state.json").is_file() and (ckpt / "psro_state.npz").is_file()
    resumed = psro(
        MarkovProblem(game, symmetric=True),
        iterations=3,
        seed=4,
        gamma=0.5,
        checkpoint=ckpt,
        resume=True,
    )
    assert resumed.iterations == straight.iterations
    assert len(resumed.populations[0]) == len(straight.populations[0])
    for a, b in zip(resumed.populations[0], straight.populations[0], strict=True):
        assert_array_equal(np.asarray(a), np.asarray(b))
    assert_allclose(resumed.meta_game[0], straight.meta_game[0])

    def strip(history: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert strip(resumed.history) == strip(straight.history)
    with pytest.raises(ValueError, match=r"other settings \(\['gamma', 'meta_solver'\]\)"):
        psro(
            MarkovProblem(game, symmetric=True),
            iterations=3,
            seed=4,
            gamma=0.1,
            checkpoint=ckpt,
            resume=True,
        )


def test_state_dict_round_trip() -> None:
    result = psro(T2, iterations=2, seed=0, gamma=0.5)
    problem = MatrixProblem(T2)
    state = PSROState(populations=result.populations, meta_game=result.meta_game, iteration=2)
    back = PSROState.from_state_dict(state.state_dict(problem), problem)
    assert back.populations == result.populations and back.iteration == 2
    assert_allclose(back.meta_game[1], result.meta_game[1])
    fresh = PSROState(populations=[[0], [0]], meta_game=[])
    fresh.load_state_dict(state.state_dict(problem), problem)
    assert fresh.populations == result.populations and fresh.iteration == 2


def test_symmetric_two_way_rae_crashes_less_than_nash() -> None:
    game = make_two_way()

    def crash_rate(meta_solver: str, gamma: float) -> float:
        problem = MarkovProblem(game, symmetric=True)
        result = psro(problem, meta_solver=meta_solver, gamma=gamma, iterations=8, seed=1)
        sigma = result.meta_strategy
        assert_allclose(sigma[0], sigma[1])  # one shared population, one shared mixture
        pop = result.populations[0]
        return sum(
            sigma[0][j]
            * sigma[1][k]
            * event_probability(game, a, problem.policy_for(1, b), "crash")
            for j, a in enumerate(pop)
            for k, b in enumerate(pop)
        )

    assert crash_rate("rae", 1.0) < 0.5 * crash_rate("nash", 0.0)


def test_symmetric_stag_hunt_rae_forages_nash_hunts() -> None:
    cfg = StagHuntConfig()
    game = make_stag_hunt(cfg)
    rng = np.random.default_rng(1001)
    initial = [[tabular.random_policy(game, rng, stochastic=True), stag_chaser_policy(cfg, 0)]]

    def stag_rate(meta_solver: str, gamma: float) -> float:
        problem = MarkovProblem(game, initial=initial, symmetric=True)
        result = psro(problem, meta_solver=meta_solver, gamma=gamma, iterations=5, seed=1)
        pop, sigma = result.populations[0], result.meta_strategy
        return sum(
            sigma[0][j] * sigma[1][k] * event_probability(game, a, problem.policy_for(1, b), "stag")
            for j, a in enumerate(pop)
            for k, b in enumerate(pop)
        )

    assert stag_rate("rae", 0.5) < 0.01
    assert stag_rate("nash", 0.0) > 0.99


def test_value_iteration_oracle_and_monte_carlo_entries() -> None:
    game = make_two_way()
    result = psro(game, oracle=ValueIterationOracle(risk_aware=False), iterations=2, seed=0,
                  sims_per_entry=200)  # fmt: skip
    assert result.meta_game[0].shape == tuple(len(p) for p in result.populations)
    assert np.all(np.isfinite(result.meta_game[0]))
    with pytest.raises(TypeError, match="tabular Markov"):
        ValueIterationOracle()(MatrixProblem(T2), 0, [[0], [0]], [np.ones(1)] * 2, 0.0, None)  # type: ignore[arg-type]


def test_rae_meta_solver_is_solve_rae() -> None:
    # τ = 1e-3 in payoff units, as in the spec's table: solve_rae's τ is relative to the scale 12.
    sigma = rae_meta_solver(0.5, tau=1e-3 / 12)([np.asarray(p) for p in T2.payoffs])
    assert_allclose(sigma[0], [0.70, 0.30], atol=0.02)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"iterations": -1}, "iterations"),
        ({"meta_solver": "alpharank"}, "meta_solver"),
        ({"resume": True}, "resume: needs a checkpoint"),
        ({"sims_per_entry": 0}, "sims_per_entry"),
        ({"gamma": -0.5}, "gamma"),
        ({"tau": 0.0}, "tau"),
    ],
)
def test_bad_settings(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        psro(T2, **kwargs)  # type: ignore[arg-type]


def test_bad_problems() -> None:
    with pytest.raises(ValueError, match="symmetric: the game is not symmetric"):
        MatrixProblem(T2, symmetric=True)
    with pytest.raises(ValueError, match="initial: expected one action index"):
        MatrixProblem(T2, initial=[0, 5])
    with pytest.raises(ValueError, match=r"initial: expected 1 non-empty"):
        MarkovProblem(make_two_way(), initial=[[], []], symmetric=True)


def test_nash_and_uniform_are_risk_neutral_by_default() -> None:
    with pytest.raises(ValueError, match="gamma: the 'nash' meta-solver is risk neutral"):
        psro(T2, meta_solver="nash", gamma=0.5, iterations=1, seed=0)
    default = psro(T2, meta_solver="nash", iterations=3, seed=0)
    explicit = psro(T2, meta_solver="nash", gamma=0.0, iterations=3, seed=0)
    assert [h["population_sizes"] for h in default.history] == [
        h["population_sizes"] for h in explicit.history
    ]


def test_checkpoint_is_one_atomic_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    psro(T2, meta_solver="rae", iterations=2, seed=0, checkpoint=ckpt)
    (ckpt / "psro_state.json").unlink()  # the json is a readable copy only
    resumed = psro(T2, meta_solver="rae", iterations=3, seed=0, checkpoint=ckpt, resume=True)
    assert resumed.iterations == 3
