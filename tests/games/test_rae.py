"""Tests for varl.games.rae: mean–variance moments, best responses, the RAE gap and SFP."""

from __future__ import annotations

import doctest
import importlib
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import brentq

from varl.games.normal_form import NormalFormGame
from varl.games.rae import (
    expected_payoff,
    mean_variance_best_response,
    mean_variance_utility,
    payoff_covariance,
    payoff_matrix,
    payoff_variance,
    rae_best_response,
    rae_gap,
    solve_rae,
)

# Spec rae.md §6 T2: Safe = [1, 1], Risky = [2, -10] (rare catastrophe); the column player
# wants to punish Risky. Unique Nash equilibrium x = (1/2, 1/2), y = (11/12, 1/12).
T2 = NormalFormGame.from_bimatrix([[1, 1], [2, -10]], [[1, 0], [0, 1]])
T2_NASH = ([0.5, 0.5], [11 / 12, 1 / 12])
STAG = NormalFormGame.from_bimatrix([[4, 0], [3, 3]], [[4, 3], [0, 3]])  # spec §6 T3


def _three_player() -> NormalFormGame:
    # u_0(a0, a1, a2) = 3 if a0 == 0 else a1 + a2; the others get a0 + a1 + a2.
    a0, a1, a2 = np.indices((2, 2, 2))
    u0 = np.where(a0 == 0, 3.0, a1 + a2)
    total = (a0 + a1 + a2).astype(float)
    return NormalFormGame([u0, total, total])


def test_doctests() -> None:
    assert (
        doctest.testmod(importlib.import_module("varl.games.rae"), raise_on_error=True).failed == 0
    )


# --- moments ------------------------------------------------------------------------------------


def test_t1_variance_is_2_75_and_mean_1() -> None:
    profile = ([0.5, 0.5], [11 / 12, 1 / 12])
    assert expected_payoff(T2, profile, 0) == pytest.approx(1.0, abs=1e-15)
    assert payoff_variance(T2, profile, 0) == pytest.approx(2.75, abs=1e-14)
    # The risky row alone: mean 1, variance 144 * (1/12) * (11/12) = 11; the quadratic form agrees.
    sigma = payoff_covariance(T2, profile, 0)
    assert_allclose(sigma, [[0, 0], [0, 11]], atol=1e-13)
    assert payoff_variance(T2, ([0, 1], [11 / 12, 1 / 12]), 0) == pytest.approx(11.0)
    # Column player: B^T rows, against x = (1/2, 1/2): payoffs (1, 0) or (0, 1), E = 1/2.
    assert payoff_variance(T2, profile, 1) == pytest.approx(
        0.5 * (11 / 12 - 0.5) ** 2 + 0.5 * (1 / 12 - 0.5) ** 2
    )


def test_three_player_moments_by_hand() -> None:
    game = _three_player()
    profile = ([0.5, 0.5], [0.5, 0.5], [0.5, 0.5])
    # Own payoff averaged over own mix: 1.5 + (a1 + a2)/2 in {1.5, 2, 2, 2.5}, each w.p. 1/4.
    assert expected_payoff(game, profile, 0) == pytest.approx(2.0)
    assert payoff_variance(game, profile, 0) == pytest.approx(0.125)
    assert payoff_variance(game, ([0, 1], [0.5, 0.5], [0.5, 0.5]), 0) == pytest.approx(0.5)
    m, w = payoff_matrix(game, ([0, 1], [1, 0], [0.25, 0.75]), 0)
    assert_allclose(m, [[3, 3], [0, 1]])  # zero-probability opponent columns are dropped
    assert_allclose(w, [0.25, 0.75])


def test_utility_is_mean_minus_gamma_variance_plus_tau_entropy() -> None:
    profile = ([0.25, 0.75], [11 / 12, 1 / 12])
    mean = expected_payoff(T2, profile, 0)
    var = payoff_variance(T2, profile, 0)
    entropy = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    got = mean_variance_utility(T2, profile, 0, gamma=0.3, tau=0.2)
    assert got == pytest.approx(mean - 0.3 * var + 0.2 * entropy, abs=1e-14)


small_games = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1)).map(
    lambda t: (
        np.random.default_rng(t[2]).integers(-5, 6, size=(2, t[0], t[1])).astype(float),
        np.random.default_rng(t[2] + 1),
    )
)


def _random_profile(rng: np.random.Generator, shape: tuple[int, ...]) -> list[np.ndarray]:
    profile = []
    for n in shape:
        p = rng.dirichlet(np.full(n, 0.7))
        if rng.random() < 0.3:  # sparse supports and pure strategies occur too
            p = np.where(p < 0.2, 0.0, p)
            p = p / p.sum() if p.sum() > 0 else np.eye(n)[0]
        profile.append(p)
    return profile


@settings(max_examples=60, deadline=None)
@given(small_games)
def test_variance_invariants(case: tuple[np.ndarray, np.random.Generator]) -> None:
    payoffs, rng = case
    game = NormalFormGame(payoffs)
    profile = _random_profile(rng, game.shape)
    for i in range(2):
        var = payoff_variance(game, profile, i)
        assert var >= 0.0
        sigma = payoff_covariance(game, profile, i)
        assert_allclose(sigma, sigma.T)
        assert np.linalg.eigvalsh(sigma).min() >= -1e-9
        assert var == pytest.approx(profile[i] @ sigma @ profile[i], abs=1e-9)
        # Closed form: variance over the opponents' draw of the own-averaged payoff.
        m, w = payoff_matrix(game, profile, i)
        y = profile[i] @ m
        assert var == pytest.approx(w @ y**2 - (w @ y) ** 2, abs=1e-8)
        # A pure opponent leaves no risk, whatever the player mixes.
        pure = list(profile)
        pure[1 - i] = np.eye(game.shape[1 - i])[rng.integers(game.shape[1 - i])]
        assert payoff_variance(game, pure, i) == 0.0
        assert_allclose(payoff_covariance(game, pure, i), 0.0)


# --- best responses -----------------------------------------------------------------------------


def test_best_response_hedges_by_hand() -> None:
    # M = [[2, 0], [0, 1]] against w = (1/2, 1/2): U(q) = (1+q)/2 - γ (3q-1)²/4, so at γ = 1 the
    # maximiser is q = (1 + 1/(3γ))/3 = 4/9 — neither action alone.
    m = [[2.0, 0.0], [0.0, 1.0]]
    p = mean_variance_best_response(m, [0.5, 0.5], gamma=1.0, tau=0.0)
    assert_allclose(p, [4 / 9, 5 / 9], atol=1e-13)
    # Perfect hedge: opposite risks cancel at q = 1/2 whatever γ > 0.
    p = mean_variance_best_response([[1, -1], [-1, 1]], [0.5, 0.5], gamma=0.1, tau=0.0)
    assert_allclose(p, [0.5, 0.5], atol=1e-13)


@pytest.mark.parametrize(("gamma", "tau"), [(1.0, 1e-3), (0.5, 0.1), (2.0, 1.0), (0.5, 1e-4)])
def test_entropic_best_response_matches_scalar_root(gamma: float, tau: float) -> None:
    # Stationarity of U(q) + τH(q) for the 2x2 case above: 1/2 - 1.5γ(3q-1) + τ log((1-q)/q) = 0.
    def dU(q: float) -> float:
        return 0.5 - 1.5 * gamma * (3 * q - 1) + tau * np.log((1 - q) / q)

    q = brentq(dU, 1e-300, 1 - 1e-16, xtol=1e-15, rtol=1e-15)
    # tol bounds the objective error; the strategy error is about sqrt(tol / curvature).
    p = mean_variance_best_response([[2, 0], [0, 1]], [0.5, 0.5], gamma=gamma, tau=tau, tol=1e-14)
    assert_allclose(p, [q, 1 - q], atol=1e-8)
    loose = mean_variance_best_response([[2, 0], [0, 1]], [0.5, 0.5], gamma=gamma, tau=tau)
    assert_allclose(loose, [q, 1 - q], atol=1e-4)


def test_t2_best_responses() -> None:
    # Against y = (1/2, 1/2) the risky row has mean -4: Safe for every γ.
    assert_allclose(rae_best_response(T2, ([0, 1], [0.5, 0.5]), 0, gamma=0.0, tau=0.0), [1, 0])
    # Against the Nash y the row is indifferent in mean; any γ > 0 strictly prefers Safe.
    br = rae_best_response(T2, T2_NASH, 0, gamma=0.01, tau=0.0)
    assert_allclose(br, [1, 0], atol=1e-12)
    # Against a pure column there is no risk: γ does not matter.
    for gamma in (0.0, 1.0, 100.0):
        assert_allclose(rae_best_response(T2, ([1, 0], [1, 0]), 0, gamma=gamma, tau=0.0), [0, 1])


@settings(max_examples=60, deadline=None)
@given(
    small_games,
    st.sampled_from([0.0, 0.1, 1.0, 5.0]),
    st.sampled_from([0.0, 1e-3, 0.1, 1.0]),
)
def test_best_response_is_optimal_on_the_simplex(
    case: tuple[np.ndarray, np.random.Generator], gamma: float, tau: float
) -> None:
    payoffs, rng = case
    game = NormalFormGame(payoffs)
    profile = _random_profile(rng, game.shape)
    for i in range(2):
        br = rae_best_response(game, profile, i, gamma=gamma, tau=tau)
        assert br.min() >= 0.0 and br.sum() == pytest.approx(1.0, abs=1e-12)
        best = mean_variance_utility(game, [br if k == i else profile[k] for k in range(2)], i,
                                     gamma=gamma, tau=tau)  # fmt: skip
        candidates = list(np.eye(game.shape[i])) + list(rng.dirichlet(np.ones(game.shape[i]), 20))
        for c in candidates:
            other = [c if k == i else profile[k] for k in range(2)]
            assert mean_variance_utility(game, other, i, gamma=gamma, tau=tau) <= best + 1e-9


@settings(max_examples=60, deadline=None)
@given(small_games)
def test_risk_neutral_best_response_is_a_nash_best_response(
    case: tuple[np.ndarray, np.random.Generator],
) -> None:
    payoffs, rng = case
    game = NormalFormGame(payoffs)
    profile = _random_profile(rng, game.shape)
    for i in range(2):
        m, w = payoff_matrix(game, profile, i)
        mu = m @ w
        br = rae_best_response(game, profile, i, gamma=0.0, tau=0.0)
        assert set(np.flatnonzero(br)) <= set(np.flatnonzero(mu == mu.max()))


def test_best_response_warm_start_and_three_players() -> None:
    m = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
    w = np.array([0.2, 0.5, 0.3])
    # Strategies agree to ~sqrt(2 tol / curvature): pass a tight tol to compare them at 1e-7.
    cold = mean_variance_best_response(m, w, gamma=0.7, tau=1e-3, tol=1e-14)
    warm = mean_variance_best_response(m, w, gamma=0.7, tau=1e-3, init=[0.0, 0.0, 1.0], tol=1e-14)
    assert_allclose(cold, warm, atol=1e-7)
    game = _three_player()
    # Player 0 facing (1/2, 1/2) twice: risky mean 1 < 3 safe, so Safe at any γ.
    profile = ([0.5, 0.5], [0.5, 0.5], [0.5, 0.5])
    assert_allclose(rae_best_response(game, profile, 0, gamma=1.0, tau=0.0), [1, 0])


# --- RAE gap ------------------------------------------------------------------------------------


def test_gap_by_hand_and_zero_at_pure_nash() -> None:
    # (Safe, L): row earns 1 but Risky would earn 2; column earns B[0,0] = 1, its best: gap 1.
    assert rae_gap(T2, ([1, 0], [1, 0]), gamma=0.0) == pytest.approx(1.0)
    for gamma in (0.0, 0.5, 3.0):  # pure Nash equilibria are RAE for every γ
        assert rae_gap(STAG, ([1, 0], [1, 0]), gamma=gamma) == 0.0
        assert rae_gap(STAG, ([0, 1], [0, 1]), gamma=gamma) == 0.0
    assert rae_gap(T2, T2_NASH, gamma=0.0) == pytest.approx(0.0, abs=1e-12)
    # At the Nash point the row player loses γ·2.75 of utility it can avoid by playing Safe.
    assert rae_gap(T2, T2_NASH, gamma=[0.2, 0.0]) == pytest.approx(0.2 * 2.75, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(small_games, st.sampled_from([0.0, 0.5, 2.0]), st.sampled_from([0.0, 0.01]))
def test_gap_nonnegative_and_zero_for_best_responders(
    case: tuple[np.ndarray, np.random.Generator], gamma: float, tau: float
) -> None:
    payoffs, rng = case
    game = NormalFormGame(payoffs)
    profile = _random_profile(rng, game.shape)
    assert rae_gap(game, profile, gamma=gamma, tau=tau) >= 0.0
    # When the row player best-responds, only the column player's term is left.
    br = rae_best_response(game, profile, 0, gamma=gamma, tau=tau)
    after = [br, profile[1]]
    col_br = rae_best_response(game, after, 1, gamma=gamma, tau=tau)
    col_term = mean_variance_utility(game, [br, col_br], 1, gamma=gamma, tau=tau) - (
        mean_variance_utility(game, after, 1, gamma=gamma, tau=tau)
    )
    assert col_term >= -1e-12
    assert rae_gap(game, after, gamma=gamma, tau=tau) == pytest.approx(max(col_term, 0), abs=1e-9)


# --- smooth fictitious play ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def t2_runs() -> dict[float, object]:
    # The spec's table (§6 T2) was computed at τ = 1e-3 and tol 1e-4 in payoff units; solve_rae
    # measures both relative to the payoff scale, which is 12 here.
    return {
        gamma: solve_rae(T2, gamma=gamma, iterations=2000, tau=1e-3 / 12, tol=1e-4 / 12)
        for gamma in (0.0, 0.1, 0.5, 2.0)
    }


def test_t2_rae_cuts_variance_tenfold_and_converges(t2_runs: dict[float, object]) -> None:
    sol = t2_runs[0.5]
    assert sol.gap <= 1e-2  # spec §6 T2 (c)
    assert sol.variance[0] <= 0.1 * 2.75  # (a): >= 10x below the Nash variance
    assert_allclose(sol.profile[0], [0.70, 0.30], atol=0.02)
    assert_allclose(sol.profile[1], [0.98, 0.02], atol=0.01)
    assert sol.mean[0] >= 1.0  # the lower risk did not cost the row player reward here
    variances = [t2_runs[g].variance[0] for g in (0.0, 0.1, 0.5, 2.0)]  # (b)
    assert all(a >= b for a, b in itertools.pairwise(variances))


def test_t2_risk_neutral_sfp_approaches_nashpy(t2_runs: dict[float, object]) -> None:
    nashpy = pytest.importorskip("nashpy")
    (x, y) = next(nashpy.Game(*T2.payoffs).support_enumeration())
    sol = t2_runs[0.0]
    assert np.abs(sol.profile[0] - x).sum() <= 0.05  # (d)
    assert np.abs(sol.profile[1] - y).sum() <= 0.05


def test_solution_fields_and_trajectory(t2_runs: dict[float, object]) -> None:
    sol = solve_rae(T2, gamma=0.5, iterations=50, tol=0.0, record_every=10)
    assert sol.iterations == 50 and not sol.converged
    assert_allclose(sol.trajectory_iterations, [0, 10, 20, 30, 40, 50])
    assert sol.trajectory[0].shape == (6, 2)
    assert_allclose(sol.trajectory[0][0], [0.5, 0.5])  # uniform start
    assert_allclose(sol.trajectory[1][-1], sol.profile[1])
    assert sol.gap_trajectory.shape == (6,)
    assert sol.mean[0] == pytest.approx(expected_payoff(T2, sol.profile, 0))
    assert sol.variance[1] == pytest.approx(payoff_variance(T2, sol.profile, 1))
    assert sol.gap == pytest.approx(rae_gap(T2, sol.profile, gamma=0.5))
    # τ is relative to the payoff scale (T2's row payoffs span 12): 1e-3 * 12 in payoff units.
    assert sol.scale == 12.0
    assert sol.perturbed_gap == pytest.approx(rae_gap(T2, sol.profile, gamma=0.5, tau=12e-3))
    stopped = solve_rae(STAG, gamma=0.0, init=([1, 0], [1, 0]), tol=1e-3)
    assert stopped.converged and stopped.iterations < 20


def _stag_limit(q0: float, gamma: float) -> int:
    sol = solve_rae(STAG, gamma=gamma, init=([q0, 1 - q0], [q0, 1 - q0]), iterations=300)
    return int(sol.profile[0][0] > 0.5)  # 1: the dynamics end at (Stag, Stag)


def test_t3_stag_basin_shrinks_as_gamma_grows() -> None:
    q0s = np.round(np.arange(0.05, 1.0, 0.05), 2)
    basins = {g: {q for q in q0s if _stag_limit(float(q), g)} for g in (0.0, 0.1, 0.5)}
    assert basins[0.5] <= basins[0.1] <= basins[0.0]
    assert len(basins[0.5]) < len(basins[0.0])
    assert 0.8 in basins[0.0] and 0.8 not in basins[0.5]  # the discriminating start (spec T3)
    assert min(basins[0.0]) >= 0.75  # risk-neutral threshold 3/4


def test_per_player_gamma_and_three_player_potential_game() -> None:
    only_row = solve_rae(T2, gamma=[0.5, 0.0], iterations=2000)
    assert only_row.gap == pytest.approx(rae_gap(T2, only_row.profile, gamma=[0.5, 0.0]))
    assert only_row.variance[0] < 2.75
    # Identical-interest 3-player coordination game (a potential game): all-0 pays 2 to
    # everyone, all-1 pays 1. From uniform beliefs the risk-neutral dynamics pick all-0; with
    # γ = 0.5 the high-variance action loses (U = 0.5 - 0.375 < 0.25 - 0.094) and all-1 wins.
    a = np.indices((2, 2, 2)).sum(axis=0)
    common = np.where(a == 0, 2.0, np.where(a == 3, 1.0, 0.0))
    neutral = solve_rae([common, common, common], gamma=0.0, iterations=500)
    averse = solve_rae([common, common, common], gamma=0.5, iterations=500)
    assert all(p[0] > 0.98 for p in neutral.profile)
    assert all(p[1] > 0.98 for p in averse.profile)
    # Classical 1/t averaging: the gap falls like 1/t once the responses settle.
    assert averse.gap < 0.05 and neutral.gap < 0.05
    late = averse.gap_trajectory[100:]
    assert np.all(np.diff(late) <= 1e-12)


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: payoff_variance(T2, ([0.5, 0.6], [1, 0]), 0), ValueError, r"profile\[0\]"),
        (lambda: payoff_variance(T2, ([1.2, -0.2], [1, 0]), 0), ValueError, r"profile\[0\]"),
        (lambda: payoff_variance(T2, ([1, 0], [np.nan, 1]), 0), ValueError, r"profile\[1\]"),
        (lambda: payoff_variance(T2, ([1, 0], [1, 0, 0]), 0), ValueError, r"profile\[1\]"),
        (lambda: payoff_variance(T2, ([1, 0],), 0), ValueError, "profile: expected one"),
        (lambda: payoff_variance(T2, T2_NASH, 2), ValueError, "player: expected 0 <= player"),
        (lambda: payoff_variance(T2, T2_NASH, True), TypeError, "player: expected an int"),
        (lambda: rae_best_response(T2, T2_NASH, 0, gamma=-1, tau=0), ValueError, "gamma"),
        (lambda: rae_best_response(T2, T2_NASH, 0, gamma=1, tau=-1e-3), ValueError, "tau"),
        (lambda: rae_gap(T2, T2_NASH, gamma=[0.1, -0.1]), ValueError, r"gamma\[1\]"),
        (lambda: rae_gap(T2, T2_NASH, gamma=[0.1, 0.1, 0.1]), ValueError, "gamma: expected"),
        (lambda: rae_gap(T2, T2_NASH, gamma=np.inf), ValueError, "gamma"),
        (lambda: solve_rae(T2, gamma=0.5, tau=0.0), ValueError, "tau"),
        (lambda: solve_rae(T2, gamma=0.5, iterations=-1), ValueError, "iterations"),
        (lambda: solve_rae(T2, gamma=0.5, record_every=0), ValueError, "record_every"),
        (lambda: solve_rae(T2, gamma=0.5, init=([2, -1], [1, 0])), ValueError, r"profile\[0\]"),
        (
            lambda: mean_variance_best_response([[1, np.inf]], [0.5, 0.5], gamma=1, tau=0),
            ValueError,
            "m: contains NaN",
        ),
        (
            lambda: mean_variance_best_response([[1, 2]], [0.4, 0.4], gamma=1, tau=0),
            ValueError,
            "w: expected probabilities",
        ),
    ],
)
def test_bad_input_is_named(call: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()  # type: ignore[operator]
