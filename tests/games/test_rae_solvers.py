"""Accuracy of the mean–variance best-response solvers and the scale invariance of solve_rae."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from varl.games._mv_kernels import (
    SMALL_N,
    _add_rows,
    _chol_back,
    _chol_forward,
    _chol_rows,
    _equality_step,
    _face_step,
    _face_step_4,
    _face_step_py,
    _qp_lists,
    _smooth_face,
    _smooth_face_np,
    entropic_newton,
    entropic_newton_gram,
    entropic_small,
    entropic_start,
    simplex_qp,
    simplex_qp_lists,
)
from varl.games.normal_form import NormalFormGame
from varl.games.rae import _factor as _rae_factor
from varl.games.rae import (
    _moments,
    _objective,
    _objective_y,
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


# --- τ > 0: the smoothed τ = 0 start and the Python-float certificate -------------------------


def _dual_gap(mu: np.ndarray, y: np.ndarray, tau: float, lam: np.ndarray) -> float:
    """Exact duality gap ``½ ||λ − y^T p(λ)||²`` of a dual point (numpy, for reference)."""
    a = (mu - y @ lam) / tau
    p = np.exp(a - a.max())
    p /= p.sum()
    g = lam - p @ y
    return float(0.5 * g @ g)


def _factor(mat: np.ndarray, w: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    mu, z = _moments(mat, w)
    return mu, z * np.sqrt(2.0 * gamma * w)


@pytest.mark.parametrize("tau", [1e-3, 3e-2])
def test_python_certificate_matches_numpy_newton(tau: float) -> None:
    # entropic_small (QP, smoothing, certificate on Python floats) against the numpy dual
    # Newton run from λ = 0 to a tight gap, on random and degenerate instances.
    smoothed = 0
    for mat, w in _instances(13, 18):
        mu, y = _factor(mat, w, 0.8)
        if not y.any():
            continue
        p, value, start, ok = entropic_small((y @ y.T).tolist(), mu.tolist(), tau, 1e-10)
        assert min(p) >= 0.0 and sum(p) == pytest.approx(1.0, abs=1e-14)
        if np.isnan(value):  # many near-active actions: the τ = 0 optimum is handed back
            assert not ok and p == start
            assert p == simplex_qp_lists((y @ y.T).tolist(), mu.tolist(), 10000)
            continue
        smoothed += 1
        assert sum(start) == pytest.approx(1.0, abs=1e-12) and min(start) >= 0.0
        lam = np.array(start) @ y
        gap = _dual_gap(mu, y, tau, lam)
        assert ok == (gap <= 1e-10) or abs(gap - 1e-10) < 1e-14
        # The reported value is f(p(λ)), exactly the primal objective of the returned p.
        pa = np.array(p)
        f = float(pa @ mu) - 0.5 * float(np.sum((pa @ y) ** 2))
        f -= tau * float(pa @ np.log(np.where(pa > 0.0, pa, 1.0)))  # 0 log 0 = 0
        assert value == pytest.approx(f, abs=1e-12)
        ref, ref_value, _, ref_ok = entropic_newton(mu, y, tau, np.zeros(y.shape[1]), 1e-15, 200)
        assert ref_ok
        if ok:
            assert value >= ref_value - 1e-10
            assert_allclose(p, ref, atol=3e-4)  # gap 1e-10 bounds |p − p*| by ~sqrt(tol/κ)
    assert smoothed >= 12


def test_smoothing_paths_agree() -> None:
    # Closed forms (2 and 3 actions), Python Cholesky (4 to 6) and LAPACK agree, and each
    # Newton step keeps the point strictly inside the simplex.
    rng = np.random.default_rng(21)
    for k in (2, 3, 4, 6):
        for trial in range(4):
            f = rng.normal(size=(k, k + 1))
            if trial == 1:
                f[1] = f[0]  # duplicate actions: Q singular, Q + τ diag(1/p) is not
            q = f @ f.T
            mu = rng.normal(size=k)
            p0 = rng.dirichlet(np.ones(k))
            tau = float(rng.choice([1e-3, 1e-2, 0.3]))
            py = _smooth_face(q.tolist(), mu.tolist(), p0.tolist(), tau, 0.0)
            nps = _smooth_face_np(q, mu, p0, tau, 0.0)
            assert_allclose(py, nps, rtol=1e-9, atol=1e-13)
            assert min(py) > 0.0 and sum(py) == pytest.approx(1.0, abs=1e-13)


@pytest.mark.parametrize("n", [30, 64])
def test_smoothed_start_for_larger_games(n: int) -> None:
    # The numpy path (n > 24): with few candidate actions (small τ) the smoothed start is
    # nearly optimal (a gap at most 1e-6 of the payoff scale, against ~1e-2 for the plain τ = 0
    # start); with many (τ = 1e-2 here) it is the plain start. Both solves agree with cvxpy.
    rng = np.random.default_rng(n)
    mat, w = rng.uniform(-1, 1, (n, n)), rng.dirichlet(np.ones(n))
    for tau in (1e-3, 1e-2):
        mu, y = _factor(mat, w, 0.5)
        plain = simplex_qp(mu, y, 10000) @ y
        smooth = entropic_start(mu, y, tau, 1e-10)
        if tau == 1e-3:
            assert _dual_gap(mu, y, tau, smooth) <= 1e-6
            assert _dual_gap(mu, y, tau, smooth) < 1e-3 * _dual_gap(mu, y, tau, plain)
        else:
            assert _dual_gap(mu, y, tau, smooth) <= _dual_gap(mu, y, tau, plain)
        ours = _value(mat, w, mean_variance_best_response(mat, w, gamma=0.5, tau=tau), 0.5, tau)
        theirs = _cvxpy_value(mat, w, 0.5, tau)
        assert theirs - 1e-10 <= ours <= theirs + 1e-7


def test_small_face_closed_forms_match_eigen_solution() -> None:
    # Faces of two to four actions are solved in closed form; on positive definite faces the
    # step is the unique face minimiser, which the eigen-decomposition path also returns.
    rng = np.random.default_rng(8)
    for k in (2, 3, 4):
        for _ in range(50):
            f = rng.normal(size=(k, k + 1))
            q, g = f @ f.T, rng.normal(size=k)
            d, unbounded = _face_step_py(q.tolist(), g.tolist(), 1e-12)
            ref, ref_unbounded = _equality_step(q, g, 1e-12)
            assert not unbounded and not ref_unbounded
            assert_allclose(d, ref, rtol=1e-8, atol=1e-10)
            assert sum(d) == pytest.approx(0.0, abs=1e-12)
        # A singular face (two identical actions) with slope: a descent ray, as before.
        f = rng.normal(size=(k, 2))
        f[1] = f[0]
        g = np.zeros(k)
        g[0], g[1] = 1.0, -1.0
        d, unbounded = _face_step_py((f @ f.T).tolist(), g.tolist(), 1e-12)
        assert unbounded and d[1] > 0.0 > d[0]


def test_python_cholesky_solves_and_flags_singular_matrices() -> None:
    # By hand: [[4, 2], [2, 5]] = L L^T with L = [[2, 0], [1, 2]], and it maps (0.5, 1) to (4, 6).
    rows = _chol_rows([[4.0], [2.0, 5.0]], 0.0)
    assert rows == [[2.0], [1.0, 2.0]]
    assert _chol_forward(rows, [4.0, 6.0]) == [2.0, 2.0]
    assert _chol_back(rows, [2.0, 2.0]) == [0.5, 1.0]
    # Rank one ([[1, 1], [1, 1]]): the second squared pivot is 0.
    assert _chol_rows([[1.0], [1.0, 1.0]], 1e-14) is None
    rng = np.random.default_rng(11)
    for k in (1, 3, 6, 9):
        f = rng.normal(size=(k, k + 2))
        a, b = f @ f.T, rng.normal(size=k)
        lower = [row[: i + 1] for i, row in enumerate(a.tolist())]
        fac = _chol_rows(lower, 0.0)
        assert fac is not None
        x = _chol_back(fac, _chol_forward(fac, b.tolist()))
        assert_allclose(x, np.linalg.solve(a, b), rtol=1e-9, atol=1e-12)


def test_face_steps_agree_with_the_eigen_solution() -> None:
    # Faces of four to ten actions: the Python Cholesky (up to _PY_FACE actions) and the LAPACK
    # path both return the unique face minimiser on positive definite faces.
    rng = np.random.default_rng(12)
    for k in range(4, 11):
        for _ in range(10):
            f = rng.normal(size=(k, k + 1))
            q, g = f @ f.T, rng.normal(size=k)
            ref, ref_unbounded = _equality_step(q, g, 1e-12)
            assert not ref_unbounded
            for d, unbounded in (
                _face_step_py(q.tolist(), g.tolist(), 1e-12),
                _face_step(q, g, 1e-12),
            ):
                assert not unbounded
                assert_allclose(d, ref, rtol=1e-7, atol=1e-9)
        # Two identical actions and a slope between them: a descent ray on both paths.
        f = rng.normal(size=(k, k))
        f[1] = f[0]
        g = np.zeros(k)
        g[0], g[1] = 1.0, -1.0
        for d, unbounded in (
            _face_step_py((f @ f.T).tolist(), g.tolist(), 1e-12),
            _face_step(f @ f.T, g, 1e-12),
        ):
            assert unbounded and d[1] > 0.0 > d[0]


def _kkt_violation(mu: np.ndarray, y: np.ndarray, p: np.ndarray) -> float:
    """Largest KKT violation of p for min ½||y^T p||² − μ^T p on the simplex (0 at the optimum):
    g_j − ν >= 0 everywhere and = 0 on the support, ν the mean of g on the support."""
    g = y @ (p @ y) - mu
    support = p > 1e-12
    nu = float(g[support].mean())
    return max(float(np.abs(g[support] - nu).max()), float(max(0.0, -(g - nu).min())))


def test_numpy_active_set_satisfies_kkt_on_random_problems() -> None:
    # The numpy active set (n > SMALL_N) on random problems of several shapes, including
    # low-rank Q (m < n) and supports large enough for the LAPACK faces.
    rng = np.random.default_rng(13)
    for n, m in ((30, 30), (64, 8), (80, 200), (150, 150)):
        for _ in range(3):
            y = rng.normal(size=(n, m)) * rng.uniform(0.05, 1.0)
            mu = rng.normal(size=n)
            p = simplex_qp(mu, y, 100 * n)
            assert p.min() >= 0.0 and p.sum() == pytest.approx(1.0, abs=1e-14)
            assert _kkt_violation(mu, y, p) <= 1e-9 * max(1.0, float((y * y).sum(1).max()))


def test_best_response_wrapper_checks_and_degenerate_inputs() -> None:
    # NaN/inf in m is an error, also in a column of weight 0, for small matrices (scanned) and
    # large ones (found through μ = M w).
    for n in (2, 80):
        for bad in (np.nan, np.inf, -np.inf):
            mat = np.ones((n, n))
            mat[1, -1] = bad
            w = np.zeros(n)
            w[0] = 1.0
            with pytest.raises(ValueError, match="m: contains NaN or inf"):
                mean_variance_best_response(mat, w, gamma=1.0, tau=0.0)
    # Huge but finite payoffs are accepted (μ is a weighted mean: no overflow).
    huge = np.array([[1.7e308, 1.7e308], [1e308, 1e308]])
    assert_allclose(
        mean_variance_best_response(huge, np.array([0.6, 0.4]), gamma=0.0, tau=0.0), [1, 0]
    )
    # Weights off the simplex by rounding are clipped and renormalised (same response).
    mat = np.array([[2.0, 0.0], [0.6, 0.6], [0.0, 2.0]])
    ref = mean_variance_best_response(mat, np.array([0.5, 0.5]), gamma=1.0, tau=0.0)
    for wl in ([0.5 + 1e-9, 0.5], [1.0 + 1e-9, -1e-9]):
        got = mean_variance_best_response(mat, np.array(wl), gamma=1.0, tau=0.0)
        if wl[1] < 0.0:  # all mass on column 0: no risk, the best mean (action 0) wins
            assert_allclose(got, [1.0, 0.0, 0.0])
        else:
            assert_allclose(got, ref, atol=1e-8)
    # γ > 0 but no risk (constant rows) for n on both sides of SMALL_N: the lowest-index
    # maximiser of μ, as for γ = 0.
    for n in (5, 40):
        mat = np.repeat(np.arange(n, dtype=float)[:, None] % 3, 4, axis=1)
        expect = np.zeros(n)
        expect[2] = 1.0
        assert_allclose(
            mean_variance_best_response(mat, np.full(4, 0.25), gamma=2.0, tau=0.0), expect
        )


@pytest.mark.parametrize("tau", [3e-2, 0.2, 1.0])
def test_small_dual_newton_matches_the_general_path(tau: float) -> None:
    # entropic_newton with n <= SMALL_N and n <= m takes the streamlined Python path; padding
    # the problem with SMALL_N actions of payoff -1e6 (mass exactly 0, zero rows of y) routes
    # the same problem through the general support-based path. Both must reach the same
    # optimum, which satisfies the fixed point p = softmax((μ − Q p)/τ).
    checked = 0
    for mat, w in _instances(29, 24):
        if mat.shape[0] > mat.shape[1]:
            mat = mat[: mat.shape[1]]
        mu, y = _factor(mat, w, 1.5)
        if not y.any():
            continue
        n, m = y.shape
        lam0 = np.zeros(m)
        p, value, lam, ok = entropic_newton(mu, y, tau, lam0, 1e-15, 200)
        mu_pad = np.concatenate([mu, np.full(SMALL_N, -1e6)])
        y_pad = np.concatenate([y, np.zeros((SMALL_N, m))])
        ref, ref_value, ref_lam, ref_ok = entropic_newton(mu_pad, y_pad, tau, lam0, 1e-15, 200)
        assert ok and ref_ok
        assert_allclose(ref[n:], 0.0, atol=0.0)
        assert_allclose(p, ref[:n], atol=1e-6)
        assert value == pytest.approx(ref_value, abs=1e-12)
        assert_allclose(lam, ref_lam, atol=1e-6)
        a = (mu - (y @ y.T) @ p) / tau
        soft = np.exp(a - a.max())
        assert_allclose(p, soft / soft.sum(), atol=1e-6)
        # A zero budget reports the start's exact gap without moving.
        _, v0, l0, ok0 = entropic_newton(mu, y, tau, lam0, 1e-15, 0)
        assert not ok0 and np.array_equal(l0, lam0) and v0 <= value + 1e-12
        checked += 1
    assert checked >= 16


def test_factor_objective_matches_the_moment_form() -> None:
    # rae._factor builds Y = Z diag(sqrt(2γw)) in place; _objective_y on it equals _objective
    # on (μ, Z, w), for γ > 0, γ = 0 and a pure opponent.
    rng = np.random.default_rng(31)
    for gamma, tau in [(0.7, 0.0), (0.7, 0.02), (0.0, 0.1)]:
        for mat, w in _instances(37, 9):
            mu, z = _moments(mat, w)
            mu2, y = _rae_factor(mat, w, gamma)
            assert_allclose(mu2, mu, rtol=0.0, atol=1e-15)
            p = rng.dirichlet(np.ones(mat.shape[0]))
            ref = _objective(p, mu, z, w, gamma, tau)
            assert _objective_y(p, mu2, y, gamma > 0.0, tau) == pytest.approx(ref, abs=1e-13)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # numpy's, before ours
def test_huge_payoffs_raise_or_stay_finite_instead_of_hanging_or_nan() -> None:
    w = np.array([0.5, 0.5])
    # the variance overflows: a clear error (this call used to loop forever)
    with pytest.raises(ValueError, match="m: payoffs too large for float64"):
        mean_variance_best_response(np.array([[1e200, -1e200], [0.0, 0.0]]), w, gamma=1.0, tau=1.0)
    # risk-free rows with μ/τ beyond float64: the softmax is taken on μ − max μ (was [nan, nan])
    p = mean_variance_best_response(np.array([[1e300, 1e300], [0.0, 0.0]]), w, gamma=1.0, tau=1e-9)
    assert p.tolist() == [1.0, 0.0]


# --- speed paths for n <= SMALL_N: Gram-matrix Newton, unrolled face and gradient updates -------


def test_face_step_4_matches_the_cholesky_path_and_flags_singular_faces() -> None:
    # The unrolled L D L^T of four-action faces against the generic Python Cholesky (the same
    # reduced system), and None (eigen fallback) when two actions coincide.
    rng = np.random.default_rng(43)
    for _ in range(40):
        f = rng.normal(size=(4, int(rng.integers(4, 7))))
        q, g = f @ f.T, rng.normal(size=4)
        d = _face_step_4(q.tolist(), g.tolist())
        assert d is not None
        h = q[1:, 1:] - q[0, 1:][None, :] - q[0, 1:][:, None] + q[0, 0]
        rows = _chol_rows([row[: i + 1] for i, row in enumerate(h.tolist())], 0.0)
        assert rows is not None
        u = _chol_back(rows, _chol_forward(rows, (g[0] - g[1:]).tolist()))
        assert_allclose(d, [-sum(u), *u], rtol=1e-9, atol=1e-12)
    f = rng.normal(size=(4, 5))
    f[2] = f[1]
    assert _face_step_4((f @ f.T).tolist(), rng.normal(size=4).tolist()) is None


def test_add_rows_is_the_row_by_row_update() -> None:
    # One pass for up to four rows, bit for bit the sequential update it replaces.
    rng = np.random.default_rng(47)
    g = rng.normal(size=9).tolist()
    for k in range(1, 7):
        rows = rng.normal(size=(k, 9)).tolist()
        coefs = rng.normal(size=k).tolist()
        ref = g
        for row, c in zip(rows, coefs, strict=True):
            ref = [a + c * b for a, b in zip(ref, row, strict=True)]
        assert _add_rows(g, rows, coefs) == ref


def test_active_set_returns_its_gradient() -> None:
    # _qp_lists hands back the gradient Q p − μ it maintained: equal to the recomputed one up to
    # rounding, on random and degenerate problems (ties, grids, zero variance).
    for mat, w in _instances(53, 18):
        mu, y = _factor(mat, w, 0.9)
        q = y @ y.T
        p, g = _qp_lists(q.tolist(), mu.tolist(), 10000)
        assert p == simplex_qp_lists(q.tolist(), mu.tolist(), 10000)
        assert_allclose(g, q @ np.array(p) - mu, rtol=0.0, atol=1e-13)


@pytest.mark.parametrize("tau", [1e-3, 3e-2, 0.5])
def test_gram_newton_matches_the_dual_newton(tau: float) -> None:
    # entropic_newton_gram (coefficients c, λ = y^T c, n×n arrays only) against entropic_newton
    # run from λ = 0 to a tight gap, from the τ = 0 optimum and from the uniform strategy, on
    # random and degenerate instances (ties, m < n, integer grids). The value it reports is the
    # primal objective of its strategy.
    checked = 0
    for mat, w in _instances(59, 24):
        mu, y = _factor(mat, w, 1.2)
        if not y.any():
            continue
        n = len(mu)
        q = y @ y.T
        ref, ref_value, _, ref_ok = entropic_newton(mu, y, tau, np.zeros(y.shape[1]), 1e-15, 200)
        assert ref_ok
        starts = [np.array(simplex_qp_lists(q.tolist(), mu.tolist(), 10000)), np.full(n, 1 / n)]
        for k, c0 in enumerate(starts):
            p, value, ok = entropic_newton_gram(mu, y, q, tau, c0, 1e-14, 60)
            if not ok:  # a cold start at a small τ may stall: the caller then re-routes
                assert k == 1 and tau < 0.1
                continue
            assert p.min() >= 0.0 and p.sum() == pytest.approx(1.0, abs=1e-14)
            assert value == pytest.approx(_objective_y(p, mu, y, True, tau), abs=1e-12)
            assert ref_value - 1e-13 <= value <= ref_value + 1e-13
            assert_allclose(p, ref, atol=1e-5)
            checked += 1
        # A zero budget certifies the start exactly (its gap is the dual gap of y^T c).
        _, _, ok0 = entropic_newton_gram(mu, y, q, tau, starts[0], 1e-14, 0)
        assert ok0 == (_dual_gap(mu, y, tau, starts[0] @ y) <= 1e-14)
    assert checked >= 30


def test_small_games_with_many_near_active_actions_take_the_gram_newton() -> None:
    # n = 16, τ = 1e-2 (the benchmark case): more than _PY_SMOOTH near-active actions, so the
    # Python-float certificate hands back the τ = 0 optimum and the Gram Newton finishes. The
    # response matches the general dual Newton's optimum.
    rerouted = 0
    for seed in range(116, 124):
        rng = np.random.default_rng(seed)
        mat, w = rng.uniform(-1, 1, (16, 16)), rng.dirichlet(np.ones(16))
        mu, y = _factor(mat, w, 0.5)
        _, value, _, _ = entropic_small((y @ y.T).tolist(), mu.tolist(), 1e-2, 1e-10)
        rerouted += bool(np.isnan(value))
        p = mean_variance_best_response(mat, w, gamma=0.5, tau=1e-2)
        ref, ref_value, _, ok = entropic_newton(mu, y, 1e-2, np.zeros(16), 1e-15, 200)
        assert ok
        assert _objective_y(p, mu, y, True, 1e-2) >= ref_value - 1e-10
        assert_allclose(p, ref, atol=1e-4)
    assert rerouted >= 3


def test_variance_below_float64_resolution_still_runs_the_solver() -> None:
    # Payoffs of order 1e-170: Q = Y Y^T underflows to 0 while Y does not, so the solve is not
    # mistaken for the risk-free case; with a variance that small the response is softmax(μ/τ).
    mat = 1e-170 * np.array([[1.0, -1.0, 0.5], [0.2, 0.3, -0.4], [-1.0, 1.0, 0.0]])
    w = np.array([0.2, 0.5, 0.3])
    mu = mat @ w
    p = mean_variance_best_response(mat, w, gamma=1.0, tau=1e-171)
    soft = np.exp((mu - mu.max()) / 1e-171)
    assert_allclose(p, soft / soft.sum(), atol=1e-9)
    # And a risk-free problem (constant rows) with τ > 0 is exactly softmax(μ/τ) for both sizes.
    for n in (4, 30):
        rows = np.linspace(0.0, 0.1, n)
        mat = np.repeat(rows[:, None], 3, axis=1)
        p = mean_variance_best_response(mat, np.full(3, 1 / 3), gamma=2.0, tau=0.05)
        soft = np.exp((rows - rows.max()) / 0.05)
        assert_allclose(p, soft / soft.sum(), rtol=1e-14)
