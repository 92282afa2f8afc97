"""Accuracy of the mean–variance best-response solvers and the scale invariance of solve_rae."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from varl.games._mv_kernels import simplex_qp, simplex_qp_lists
from varl.games.normal_form import NormalFormGame
from varl.games.rae import (
    _moments,
    _objective,
    mean_variance_best_response,
    payoff_scale,
    rae_best_response,
    rae_gap,
    solve_rae,
)

T2 = NormalFormGame.from_bimatrix([[1, 1], [2, -10]], [[1, 0], [0, 1]])


def _value(m: np.ndarray, w: np.ndarray, p: np.ndarray, gamma: float, tau: float) -> float:
    mu, z = _moments(m, w)
    return _objective(p, mu, z, w, gamma, tau)


def _cvxpy_value(m: np.ndarray, w: np.ndarray, gamma: float, tau: float) -> float:
    cp = pytest.importorskip("cvxpy")
    mu, z = _moments(m, w)
    p = cp.Variable(len(mu))
    objective = mu @ p - gamma * cp.sum_squares((np.sqrt(w)[:, None] * z.T) @ p)
    if tau > 0:
        objective = objective + tau * cp.sum(cp.entr(p))
    cp.Problem(cp.Maximize(objective), [p >= 0, cp.sum(p) == 1]).solve(solver="CLARABEL")
    q = np.clip(np.asarray(p.value).ravel(), 0.0, None)
    return _value(m, w, q / q.sum(), gamma, tau)


def _instances(seed: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random instances, a third of them degenerate: duplicate actions (ties), an integer
    payoff grid with many equal entries, or a pure opponent (zero variance)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        n, m = int(rng.integers(2, 9)), int(rng.integers(1, 9))
        mat = rng.uniform(-1, 1, (n, m))
        if k % 3 == 1:
            mat[1] = mat[0]  # two identical actions
        elif k % 3 == 2:
            mat = rng.integers(-2, 3, (n, m)).astype(float)
        w = rng.dirichlet(np.ones(m))
        if k % 7 == 0:
            w = np.eye(m)[int(rng.integers(m))]
        out.append((mat, w))
    return out


@pytest.mark.parametrize(("gamma", "tau"), [(0.5, 0.0), (3.0, 0.0), (0.5, 1e-3), (2.0, 0.05)])
def test_best_response_matches_cvxpy(gamma: float, tau: float) -> None:
    for mat, w in _instances(7, 15):
        ours = _value(mat, w, mean_variance_best_response(mat, w, gamma=gamma, tau=tau), gamma, tau)
        theirs = _cvxpy_value(mat, w, gamma, tau)
        # Ours is the more accurate one: never worse than the interior-point solution by more
        # than rounding, and never better than the optimum (cvxpy's error is ~1e-9).
        assert ours >= theirs - 1e-10
        assert ours <= theirs + 1e-7


def test_python_and_numpy_active_set_agree() -> None:
    rng = np.random.default_rng(3)
    for n in (3, 10, 24):
        for _ in range(5):
            y = rng.normal(size=(n, int(rng.integers(1, 2 * n))))
            y[1] = y[0]  # a singular face
            mu = rng.normal(size=n)
            mu[1] = mu[0]
            p_py = np.array(simplex_qp_lists((y @ y.T).tolist(), mu.tolist(), 1000))
            # The numpy path runs for n > 24: embed the problem among dominated copies.
            big_y = np.vstack([y, np.zeros((30, y.shape[1]))])
            big_mu = np.concatenate([mu, np.full(30, mu.min() - 10.0)])
            p_np = simplex_qp(big_mu, big_y, 1000)
            assert_allclose(p_np[n:], 0.0)

            def f(p: np.ndarray, y: np.ndarray = y, mu: np.ndarray = mu) -> float:
                return float(0.5 * (p @ y) @ (p @ y) - mu @ p)

            assert f(p_np[:n]) == pytest.approx(f(p_py), abs=1e-12)
            assert p_py.min() >= 0.0 and p_py.sum() == pytest.approx(1.0, abs=1e-14)


def test_degenerate_best_responses_by_hand() -> None:
    # Ties: two identical risky actions [2, 0] (mean 1, variance 1 against w = (1/2, 1/2)) and
    # a safe one [0.6, 0.6]. With mass q on the pair, U = 0.6 + 0.4 q − γ q², so at γ = 1 the
    # maximisers put q = 0.2 on the pair (split in any way: the face is singular).
    m = np.array([[2.0, 0.0], [2.0, 0.0], [0.6, 0.6]])
    p = mean_variance_best_response(m, [0.5, 0.5], gamma=1.0, tau=0.0)
    assert p[0] + p[1] == pytest.approx(0.2, abs=1e-12)
    assert p[2] == pytest.approx(0.8, abs=1e-12)
    # With τ > 0 the maximiser is unique and splits the tie evenly.
    p = mean_variance_best_response(m, [0.5, 0.5], gamma=1.0, tau=1e-2, tol=1e-14)
    assert p[0] == pytest.approx(p[1], abs=1e-9)
    # Zero variance (constant rows): the mean decides, whatever γ.
    flat = np.array([[1.0, 1.0], [3.0, 3.0], [2.0, 2.0]])
    for gamma in (0.0, 1.0, 1e6):
        assert_allclose(
            mean_variance_best_response(flat, [0.3, 0.7], gamma=gamma, tau=0), [0, 1, 0]
        )
    # γ = 0: a Nash best response (the lowest-index maximiser of the mean), or softmax(μ/τ).
    m = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert_allclose(mean_variance_best_response(m, [0.5, 0.5], gamma=0.0, tau=0.0), [1, 0, 0])
    soft = mean_variance_best_response(m, [0.25, 0.75], gamma=0.0, tau=0.1)
    mu = m @ [0.25, 0.75]
    assert_allclose(soft, np.exp(mu / 0.1) / np.exp(mu / 0.1).sum(), rtol=1e-12)


@pytest.mark.parametrize("c", [1e-6, 1e5])
def test_best_response_is_scale_free(c: float) -> None:
    # Payoffs ×c, γ ×1/c, τ and tol ×c: the same problem in other units.
    for mat, w in _instances(11, 9):
        for gamma, tau in ((0.7, 0.0), (0.7, 1e-3), (0.2, 0.3)):
            ref = mean_variance_best_response(mat, w, gamma=gamma, tau=tau, tol=1e-13)
            got = mean_variance_best_response(
                c * mat, w, gamma=gamma / c, tau=tau * c, tol=1e-13 * c
            )
            assert _value(mat, w, got, gamma, tau) == pytest.approx(
                _value(mat, w, ref, gamma, tau), abs=1e-11
            )


def test_tiny_relative_temperature_converges() -> None:
    # τ = 1e-3 in payoff units against payoffs of size 1e5 (τ/scale = 1e-8): no RuntimeError,
    # and the response is the τ = 0 one up to the entropy's effect.
    rng = np.random.default_rng(5)
    mat, w = 1e5 * rng.uniform(-1, 1, (6, 6)), rng.dirichlet(np.ones(6))
    smooth = mean_variance_best_response(mat, w, gamma=0.5e-5, tau=1e-3)
    exact = mean_variance_best_response(mat, w, gamma=0.5e-5, tau=0.0)
    assert np.abs(smooth - exact).sum() <= 1e-5


# --- solve_rae is scale-free ------------------------------------------------------------------


def _random_game(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))]


@pytest.mark.parametrize("c", [1e-3, 1.0, 1e5])
def test_solve_rae_is_invariant_to_payoff_scale(c: float) -> None:
    for payoffs, gamma, iterations in (
        ([np.asarray(p) for p in T2.payoffs], 0.5, 2000),
        (_random_game(0, 5), 0.3, 300),
    ):
        ref = solve_rae(payoffs, gamma=gamma, iterations=iterations)
        got = solve_rae([c * p for p in payoffs], gamma=gamma / c, iterations=iterations)
        assert got.iterations == ref.iterations
        for a, b in zip(got.profile, ref.profile, strict=True):
            assert_allclose(a, b, atol=1e-9)
        assert got.scale == pytest.approx(c * ref.scale, rel=1e-12)
        assert_allclose(got.mean, c * ref.mean, rtol=1e-6, atol=1e-9 * c)
        assert_allclose(got.variance, c**2 * ref.variance, rtol=1e-6, atol=1e-9 * c**2)
        assert got.gap == pytest.approx(c * ref.gap, rel=1e-5, abs=1e-9 * c)
        assert got.perturbed_gap == pytest.approx(c * ref.perturbed_gap, rel=1e-5, abs=1e-9 * c)


def test_large_payoffs_do_not_raise_and_gaps_are_in_payoff_units() -> None:
    big = [1e5 * np.asarray(p) for p in T2.payoffs]
    for gamma in (0.5e-5, 0.5):  # the same risk aversion as γ = 0.5 on T2, and a huge one
        sol = solve_rae(big, gamma=gamma, iterations=500)
        assert all(np.isfinite(p).all() for p in sol.profile)
        assert sol.gap == pytest.approx(rae_gap(big, sol.profile, gamma=gamma), rel=1e-9)
        assert sol.perturbed_gap == pytest.approx(
            rae_gap(big, sol.profile, gamma=gamma, tau=1e-3 * sol.scale), rel=1e-6
        )
    # A shifted game (constants added to a player's payoffs) gives the same strategies.
    shifted = [p + 1e5 * k for k, p in enumerate(np.asarray(T2.payoffs))]
    a = solve_rae(shifted, gamma=0.5, iterations=200)
    b = solve_rae(T2, gamma=0.5, iterations=200)
    for x, y in zip(a.profile, b.profile, strict=True):
        assert_allclose(x, y, atol=1e-8)


def test_payoff_scale() -> None:
    assert payoff_scale(T2) == 12.0
    assert payoff_scale([np.ones((2, 2)), np.full((2, 2), 5.0)]) == 1.0  # constant payoffs
    assert payoff_scale([3.0 * np.asarray(p) for p in T2.payoffs]) == 36.0
    # rae_best_response takes τ in payoff units: same answer as the array-level solver.
    br = rae_best_response(T2, ([0.5, 0.5], [0.9, 0.1]), 0, gamma=0.1, tau=0.0)
    assert_allclose(
        br, mean_variance_best_response([[1, 1], [2, -10]], [0.9, 0.1], gamma=0.1, tau=0)
    )
