"""Solver kernels for the mean–variance best response on the simplex (private to varl.games.rae).

Both kernels take the problem in factored form: own-action returns ``mu [n]`` and a matrix
``y [n, m]`` with ``Q = y y^T`` (for the best response ``y = Z diag(sqrt(2 γ w))``, so that
``½ p^T Q p = γ Var``). Inputs are trusted (validated by the caller) and every tolerance is
relative to the problem's own scale, so multiplying payoffs by ``c > 0`` and γ by ``1/c`` (and τ
by ``c``) gives the same strategy up to rounding.

* :func:`simplex_qp` (τ = 0): a primal active-set method for ``min ½ p^T Q p − μ^T p`` over the
  simplex. Columns of Q are formed only for the free coordinates; the face problems are solved
  in a basis of ``{Σ d = 0}`` by Cholesky (plain Python for small faces, LAPACK for larger ones),
  with an eigen-decomposition fallback for singular faces.
* :func:`entropic_newton` (τ > 0): damped Newton on the smooth, strongly convex dual of the
  entropy-regularised problem, stopped on its exact duality gap ``½ ||λ − y^T p(λ)||²`` (no
  cancellation between large primal and dual values).
* :func:`entropic_newton_gram` (τ > 0, small n): the same Newton iteration on coefficients
  ``λ = y^T c``, with only the n×n Gram matrix ``Q = y y^T`` in its linear algebra.
* :func:`entropic_start` / :func:`entropic_small` (τ > 0, small τ): the τ = 0 optimum smoothed
  for τ by a few primal Newton steps on its near-active actions, which gives a dual start whose
  gap is usually already below tolerance; for at most ``SMALL_N`` actions the whole solve,
  certificate included, runs on Python floats from ``Q`` and the dual Newton is only a
  fallback.

Speed: these problems are small, so the cost is the number of interpreter-level operations, not
flops. Problems with at most ``SMALL_N`` actions run the active set on Python floats
(:func:`simplex_qp_lists`), faces of two to four actions are solved in closed form, and short
reductions go through Python floats, since a numpy call on a short vector costs more than the
arithmetic it saves.
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import add as add_op
from operator import itemgetter
from operator import mul as mul_op
from operator import sub as sub_op

import numpy as np
from scipy.linalg.lapack import dgesv, dpotrf, dpotrs

from varl._checks import FloatArray

__all__ = [
    "SMALL_N",
    "entropic_newton",
    "entropic_newton_gram",
    "entropic_small",
    "entropic_start",
    "simplex_qp",
    "simplex_qp_lists",
]

SMALL_N = 24  # problems with at most this many actions are solved with Python floats
_PY_FACE = 6  # faces with at most this many coordinates are solved with Python floats
_ADD = 4  # most-violating coordinates freed per multiplier pass (fewer passes)
_PIVOT = 1e-11  # relative pivot below which a face's reduced Hessian counts as singular
_last = itemgetter(-1)


# --- τ = 0: active-set quadratic program ------------------------------------------------------


def simplex_qp(mu: FloatArray, y: FloatArray, max_iter: int) -> FloatArray:
    """Minimiser of ``½ ||y^T p||² − μ^T p`` over the simplex ``{p >= 0, Σ p = 1}``.

    Primal active set: the free set F starts at the best vertex; each face problem
    ``min_d ½ d^T Q_FF d + g_F^T d, Σ d = 0`` is solved exactly and followed until a coordinate
    hits 0 (then it leaves F); at a face optimum the KKT multipliers ``g_k − ν`` of the fixed
    coordinates are checked and the most negative ones (up to ``_ADD``; 2 on the Python path) are
    freed together, which saves multiplier passes. A face whose reduced Hessian is
    singular is handled by :func:`_equality_step` (a zero-curvature descent ray is followed to
    the boundary). Exact up to rounding; one maximiser is returned when there are several.

    Args:
        mu: Linear coefficients ``[n]``.
        y: Factor ``[n, m]`` of the PSD matrix ``Q = y y^T``.
        max_iter: Iteration budget.

    Returns:
        The minimiser ``p [n]``.

    Raises:
        RuntimeError: If the budget runs out (cycling; not observed in practice).
    """
    n = len(mu)
    if n <= SMALL_N:
        return np.array(simplex_qp_lists((y @ y.T).tolist(), mu.tolist(), max_iter))
    diag = np.einsum("km,km->k", y, y)
    big = max(float(mu.max()), -float(mu.min()), float(diag.max()))
    out = np.zeros(n)
    start = int(np.argmax(mu - 0.5 * diag))
    if big == 0.0:
        out[start] = 1.0
        return out
    eps = 1e-12 * big
    inf = math.inf
    cols = np.empty((n, min(n, 8)))  # cols[:, i] = Q[:, free[i]]
    col = y @ y[start]
    cols[:, 0] = col
    free = [start]
    pf = [1.0]
    g = col - mu  # gradient Q p − μ
    face_optimal = True  # a vertex is optimal on its own (zero-dimensional) face
    for _ in range(max_iter):
        k = len(free)
        if not face_optimal:
            gf = g[free]
            if k <= _PY_FACE:
                d, unbounded = _face_step_py(cols[free, :k].tolist(), gf.tolist(), eps)
            else:
                d, unbounded = _face_step(cols[free, :k], gf, eps)
            if unbounded or max(map(abs, d)) > 1e-12:
                alpha, block = _ratio_test(pf, d, unbounded)
                if alpha == inf:  # no finite move possible: treat the face as solved
                    face_optimal = True
                    continue
                pf = list(map(add_op, pf, map(mul_op, d, repeat(alpha))))
                if block >= 0:
                    del free[block], pf[block]
                    cols[:, block : k - 1] = cols[:, block + 1 : k].copy()
                    k -= 1
                g = cols[:, :k] @ pf - mu
                face_optimal = block < 0  # a full step lands on the face's minimiser
                if not face_optimal:
                    continue
        # Optimal on the face: KKT multipliers g_j − ν of the coordinates held at zero.
        mult = g.copy()
        mult[free] = inf
        j = int(mult.argmin())
        cut = float(g[free].sum()) / k - eps  # freed when g_j < ν − eps
        if not mult[j] < cut:
            total = 0.0
            for a, pa in zip(free, pf, strict=True):
                pa = max(pa, 0.0)
                out[a] = pa
                total += pa
            out /= total
            return out
        add = [j]
        if _ADD > 1 and n - k > 1:  # free the runners-up too: fewer multiplier passes
            mult[j] = inf
            top = np.argpartition(mult, min(_ADD - 1, n - k - 1) - 1)[: _ADD - 1]
            add += [a for a, v in zip(top.tolist(), mult[top].tolist(), strict=True) if v < cut]
        if k + len(add) > cols.shape[1]:
            extra = max(min(n, 2 * k + 2) - k, len(add))  # room for every freed column
            cols = np.concatenate([cols, np.empty((n, extra))], axis=1)
        cols[:, k : k + len(add)] = y @ y[add].T
        free += add
        pf += [0.0] * len(add)
        face_optimal = False
    raise RuntimeError(f"active-set QP did not terminate in {max_iter} steps (cycling)")


def _face_step(q: FloatArray, g: FloatArray, eps: float) -> tuple[list[float], bool]:
    """Step ``d`` minimising ``½ d^T q d + g^T d`` subject to ``Σ d = 0``, or a descent ray.

    In the basis ``d = (−Σ u, u)`` the problem is ``min ½ u^T H u + b^T u`` with
    ``H = q_rr − q_r0 1^T − 1 q_0r + q_00 1 1^T`` and ``b = g_r − g_0``; H is factored by
    Cholesky. If a pivot is below ``_PIVOT`` times H's largest diagonal entry the face is
    (numerically) singular and the eigen-decomposition of :func:`_equality_step` decides.

    Returns:
        ``(d, unbounded)`` with ``d`` a list of k floats.
    """
    k = len(g)
    if k <= _PY_FACE:
        return _face_step_py(q.tolist(), g.tolist(), eps)
    q0 = q[0]
    h = q[1:, 1:] - q0[1:, None] - q0[None, 1:] + q0[0]
    hmax = float(np.diagonal(h).max())
    chol_f, info = dpotrf(h, lower=1, clean=0)
    piv = np.diagonal(chol_f)
    if info != 0 or not float(piv.min()) ** 2 > _PIVOT * max(hmax, 0.0):
        d, unb = _equality_step(q, g, eps)
        return d.tolist(), unb
    u, _ = dpotrs(chol_f, g[0] - g[1:], lower=1)
    return [-float(u.sum()), *u.tolist()], False


def _face_step_py(ql: list[list[float]], gl: list[float], eps: float) -> tuple[list[float], bool]:
    """:func:`_face_step` with Python floats (``ql`` the face block as nested lists)."""
    k = len(gl)
    if k == 1:
        return [0.0], False
    q0, g0 = ql[0], gl[0]
    if k <= 3:  # one or two reduced coordinates: the Cholesky pivots in closed form
        h11 = ql[1][1] - 2.0 * q0[1] + q0[0]
        if k == 2:
            if h11 > _PIVOT * max(h11, 0.0):
                u1 = (g0 - gl[1]) / h11
                return [-u1, u1], False
        else:
            h22 = ql[2][2] - 2.0 * q0[2] + q0[0]
            h12 = ql[1][2] - q0[1] - q0[2] + q0[0]
            tiny = _PIVOT * max(h11, h22, 0.0)
            if h11 > tiny and h22 - h12 * h12 / h11 > tiny:
                b1, b2 = g0 - gl[1], g0 - gl[2]  # H u = −b with b = g_r − g_0
                det = h11 * h22 - h12 * h12
                u1 = (h22 * b1 - h12 * b2) / det
                u2 = (h11 * b2 - h12 * b1) / det
                return [-u1 - u2, u1, u2], False
        d, unb = _equality_step(np.array(ql), np.array(gl), eps)
        return d.tolist(), unb
    if k == 4:  # three reduced coordinates: an unrolled L D L^T (the Cholesky pivots squared)
        d3 = _face_step_4(ql, gl)
        if d3 is not None:
            return d3, False
        d, unb = _equality_step(np.array(ql), np.array(gl), eps)
        return d.tolist(), unb
    # Reduced Hessian rows h_ij = (q_ij − q_0j) + (q_00 − q_0i), i, j >= 1 (lower triangle).
    c = q0[0]
    h = [
        list(map(add_op, map(sub_op, ql[i][1 : i + 1], q0[1 : i + 1]), repeat(c - q0[i], i)))
        for i in range(1, k)
    ]
    rows = _chol_rows(h, _PIVOT * max(max(map(_last, h)), 0.0))
    if rows is None:
        d, unb = _equality_step(np.array(ql), np.array(gl), eps)
        return d.tolist(), unb
    u = _chol_back(rows, _chol_forward(rows, list(map(sub_op, repeat(g0, k - 1), gl[1:]))))
    return [-sum(u), *u], False


def _face_step_4(ql: list[list[float]], gl: list[float]) -> list[float] | None:
    """The face step of :func:`_face_step_py` for four coordinates, or None when singular.

    The reduced Hessian ``h_ij = q_ij − q_0i − q_0j + q_00`` (i, j = 1..3) is factored as
    ``L D L^T`` in closed form; ``D``'s entries are the squared Cholesky pivots, tested against
    the same ``_PIVOT`` threshold as :func:`_chol_rows`.
    """
    (q00, q01, q02, q03), (_, q11, q12, q13), (_, _, q22, q23), (_, _, _, q33) = ql
    h11 = q11 - 2.0 * q01 + q00
    h22 = q22 - 2.0 * q02 + q00
    h33 = q33 - 2.0 * q03 + q00
    tiny = _PIVOT * max(h11, h22, h33, 0.0)
    if not h11 > tiny:
        return None
    h12 = q12 - q01 - q02 + q00
    h13 = q13 - q01 - q03 + q00
    h23 = q23 - q02 - q03 + q00
    l21, l31 = h12 / h11, h13 / h11
    e2 = h22 - l21 * h12
    if not e2 > tiny:
        return None
    l32 = (h23 - l31 * h12) / e2
    e3 = h33 - l31 * h13 - l32 * l32 * e2
    if not e3 > tiny:
        return None
    g0 = gl[0]
    z1 = g0 - gl[1]  # H u = g_0 − g_r: forward, diagonal, backward
    z2 = g0 - gl[2] - l21 * z1
    z3 = g0 - gl[3] - l31 * z1 - l32 * z2
    u3 = z3 / e3
    u2 = z2 / e2 - l32 * u3
    u1 = z1 / h11 - l21 * u2 - l31 * u3
    return [-u1 - u2 - u3, u1, u2, u3]


def _chol_rows(h: list[list[float]], tiny: float) -> list[list[float]] | None:
    """Lower Cholesky factor of a small symmetric matrix on Python floats.

    Args:
        h: Lower-triangle rows, ``h[i]`` holding ``h_i0 ... h_ii``.
        tiny: Squared pivots at or below this count as singular.

    Returns:
        Rows of ``L`` in the same layout (``L[i][-1]`` the diagonal), or None if a squared pivot
        is at most ``tiny`` (not numerically positive definite).
    """
    rows: list[list[float]] = []
    for hi in h:
        li: list[float] = []
        for lj in rows:  # map stops at len(li): the first j entries of L_j
            li.append((hi[len(li)] - sum(map(mul_op, li, lj))) / lj[-1])
        piv = hi[len(li)] - sum(map(mul_op, li, li))
        if not piv > tiny:
            return None
        li.append(math.sqrt(piv))
        rows.append(li)
    return rows


def _chol_forward(rows: list[list[float]], b: list[float]) -> list[float]:
    """``L^{-1} b`` for the factor rows of :func:`_chol_rows`."""
    z: list[float] = []
    for li, bi in zip(rows, b, strict=True):
        z.append((bi - sum(map(mul_op, li, z))) / li[-1])
    return z


def _chol_back(rows: list[list[float]], z: list[float]) -> list[float]:
    """``L^{-T} z`` (column-oriented: each solved entry is eliminated from the ones above)."""
    x = z.copy()
    for i in range(len(rows) - 1, -1, -1):
        li = rows[i]
        xi = x[i] / li[-1]
        x[i] = xi
        if i:
            x[:i] = map(sub_op, x[:i], map(mul_op, li, repeat(xi)))
    return x


def simplex_qp_lists(ql: list[list[float]], mul: list[float], max_iter: int) -> list[float]:
    """:func:`simplex_qp` on Python floats, for small n (no numpy call per step).

    Args:
        ql: The dense PSD matrix ``Q [n, n]`` as nested lists.
        mul: Linear coefficients ``μ [n]``.
        max_iter: Iteration budget.

    Returns:
        The minimiser of ``½ p^T Q p − μ^T p`` over the simplex, as a list of n floats.

    Raises:
        RuntimeError: If the budget runs out.
    """
    return _qp_lists(ql, mul, max_iter)[0]


def _qp_lists(
    ql: list[list[float]], mul: list[float], max_iter: int
) -> tuple[list[float], list[float]]:
    """:func:`simplex_qp_lists` and the gradient ``Q p − μ`` it kept up to date (all n entries,
    at the optimum before its clipping and renormalisation: they differ by rounding only)."""
    n = len(mul)
    diag = [ql[i][i] for i in range(n)]
    big = max(max(diag), max(mul), -min(mul))
    out = [0.0] * n
    score = [mi - 0.5 * di for mi, di in zip(mul, diag, strict=True)]
    start = max(range(n), key=score.__getitem__)
    g = [qi - mi for qi, mi in zip(ql[start], mul, strict=True)]
    if big == 0.0 or n == 1:
        out[start] = 1.0
        return out, g
    eps = 1e-12 * big
    free = [start]
    pf = [1.0]
    face_optimal = True
    inf = math.inf
    for _ in range(max_iter):
        k = len(free)
        if not face_optimal:
            qrows = [ql[a] for a in free]
            d, unbounded = _face_step_py(
                [[row[b] for b in free] for row in qrows], [g[a] for a in free], eps
            )
            if unbounded or max(map(abs, d)) > 1e-12:
                alpha, block = _ratio_test(pf, d, unbounded)
                if alpha == inf:  # no finite move possible: treat the face as solved
                    face_optimal = True
                    continue
                steps = [alpha * dt for dt in d]
                pf = list(map(add_op, pf, steps))
                g = _add_rows(g, qrows, steps)
                if block >= 0:
                    del free[block], pf[block]
                face_optimal = block < 0
                continue
        nu = sum([g[a] for a in free]) / k
        gm = g.copy()
        for a in free:
            gm[a] = inf
        order = sorted(range(n), key=gm.__getitem__)[:2]  # the two most violating
        if not gm[order[0]] - nu < -eps:
            total = 0.0
            for a, pa in zip(free, pf, strict=True):
                out[a] = max(pa, 0.0)
                total += out[a]
            return [v / total for v in out], g
        for a in order:
            if gm[a] - nu < -eps:
                free.append(a)
                pf.append(0.0)
        face_optimal = False
    raise RuntimeError(f"active-set QP did not terminate in {max_iter} steps (cycling)")


def _add_rows(g: list[float], rows: list[list[float]], coefs: list[float]) -> list[float]:
    """``g + Σ_t coefs[t] rows[t]`` on Python floats, summed in the order of ``rows`` (one
    pass over ``g`` for up to four rows)."""
    k = len(rows)
    if k == 2:
        (r0, r1), (s0, s1) = rows, coefs
        return [a + s0 * b + s1 * c for a, b, c in zip(g, r0, r1, strict=True)]
    if k == 3:
        (r0, r1, r2), (s0, s1, s2) = rows, coefs
        return [a + s0 * b + s1 * c + s2 * e for a, b, c, e in zip(g, r0, r1, r2, strict=True)]
    if k == 4:
        (r0, r1, r2, r3), (s0, s1, s2, s3) = rows, coefs
        return [
            a + s0 * b + s1 * c + s2 * e + s3 * f
            for a, b, c, e, f in zip(g, r0, r1, r2, r3, strict=True)
        ]
    for row, st in zip(rows, coefs, strict=True):
        g = list(map(add_op, g, map(mul_op, row, repeat(st))))
    return g


def _ratio_test(pf: list[float], d: list[float], unbounded: bool) -> tuple[float, int]:
    """Largest ``α <= 1`` (any α for a ray) keeping ``pf + α d >= 0``, and the blocking index
    (-1 when a full step of 1 is taken)."""
    alpha, block = math.inf, -1
    for i, di in enumerate(d):
        if di < -1e-15:
            r = -pf[i] / di
            if r < alpha:
                alpha, block = r, i
    if not unbounded and alpha >= 1.0:
        return 1.0, -1
    return alpha, block


def _equality_step(q: FloatArray, g: FloatArray, eps: float) -> tuple[FloatArray, bool]:
    """Minimiser ``d`` of ``½ d^T Q d + g^T d`` subject to ``Σ d = 0``, or a descent ray.

    The robust path for singular faces: an eigen-decomposition in an orthonormal basis of
    ``{Σ d = 0}``. Returns ``(d, unbounded)``; ``unbounded`` means ``d`` is a direction of zero
    curvature and negative slope (the problem on this face has no finite minimiser); flat
    directions without slope are left out (one minimiser of a flat face is returned).
    """
    f = len(g)
    # Householder reflection mapping e_1 to 1/sqrt(f): its other columns span {Σ d = 0}.
    v = np.full(f, 1.0 / math.sqrt(f))
    v[0] -= 1.0
    v /= np.linalg.norm(v)
    basis = (np.eye(f) - 2.0 * np.outer(v, v))[:, 1:]  # [f, f-1], orthonormal
    h = basis.T @ q @ basis
    b = basis.T @ g
    evals, evecs = np.linalg.eigh(h)
    coef = evecs.T @ b
    flat = evals <= 1e-12 * max(float(np.abs(evals).max()), float(np.abs(np.diagonal(q)).max()))
    if np.any(np.abs(coef[flat]) > eps):
        ray = -(evecs[:, flat] @ coef[flat])
        return basis @ ray, True
    sol = np.zeros_like(coef)
    sol[~flat] = -coef[~flat] / evals[~flat]
    return basis @ (evecs @ sol), False


# --- τ > 0: Newton on the dual of the entropy-regularised problem -----------------------------


_EXT = 16.0  # coordinates within this many τ of the QP's multiplier join the smoothed start
_PY_SMOOTH = 6  # candidate sets up to this size are smoothed with Python floats
# At most this many coordinates in the smoothed start (else the plain τ = 0 one).
_START_MAX = SMALL_N


def _candidates(
    g: list[float], pl: list[float], tau: float, limit: int = _START_MAX
) -> tuple[list[int], list[float]]:
    """Candidate set E of the smoothed start and its initial masses (see :func:`entropic_start`).

    ``g`` is the QP gradient ``Q p* − μ`` and ``pl`` the QP optimum ``p*`` (both length n).
    Returns ``([], [])`` when E has more than ``limit`` actions.
    """
    n = len(pl)
    support = [a for a in range(n) if pl[a] > 0.0]
    nu = sum([g[a] for a in support]) / len(support)
    cut = nu + _EXT * tau
    cand = [a for a in range(n) if g[a] < cut or pl[a] > 0.0]
    if len(cand) > limit:
        return [], []
    # Initial masses: the QP's on its support, exp(−gap/τ) times their geometric mean outside.
    ref = math.exp(sum([math.log(pl[a]) for a in support]) / len(support))
    pe = [pl[a] if pl[a] > 0.0 else ref * math.exp((nu - g[a]) / tau) for a in cand]
    pe = [max(v, 1e-100) for v in pe]  # keeps τ / p and its products finite
    total = sum(pe)
    return cand, [v / total for v in pe]


def entropic_start(mu: FloatArray, y: FloatArray, tau: float, tol: float) -> FloatArray:
    """Dual starting point ``λ = y^T p̃`` for :func:`entropic_newton`, from the τ = 0 optimum.

    ``y^T p*`` with ``p*`` the QP optimum (τ = 0) is a poor start: ``p(y^T p*)`` is uniform on
    the support of ``p*`` (every free action has the same multiplier). Instead ``p*`` is
    smoothed for τ on a candidate set E, its support plus every action whose multiplier gap
    ``(Q p* − μ)_j − ν`` is below ``_EXT·τ`` (an action the entropy lifts to a mass of at least
    about ``exp(−_EXT)`` of the support's), by :func:`_smooth_face`. The dual gap of the result
    is typically below 1e-10 of the payoff scale, so the dual Newton needs zero or one step
    instead of three to five. When E has more than ``_START_MAX`` actions, ``y^T p*`` is
    returned.

    Args:
        mu: ``[n]``.
        y: ``[n, m]`` factor of ``Q = y y^T``.
        tau: Temperature τ > 0.
        tol: Duality-gap target of the solve (stops the smoothing early).

    Returns:
        The dual point ``λ [m]``.
    """
    n = len(mu)
    p = simplex_qp(mu, y, 200 * (n + 1))
    pl = p.tolist()
    cand, pe = _candidates((y @ (p @ y) - mu).tolist(), pl, tau)
    if not cand:
        return p @ y
    sub = y[cand]
    pe = _smooth_face((sub @ sub.T).tolist(), mu[cand].tolist(), pe, tau, tol)
    return np.array(pe) @ sub


def entropic_small(
    ql: list[list[float]], mul: list[float], tau: float, tol: float
) -> tuple[list[float], float, list[float], bool]:
    """The τ > 0 best response on Python floats for small n: QP, smoothing, exact certificate.

    Runs :func:`simplex_qp_lists`, smooths its optimum for τ (as :func:`entropic_start`) into
    ``p̃``, and evaluates the dual at ``λ = y^T p̃`` using only ``Q = y y^T``:
    ``y λ = Q p̃``, ``½ ||λ||² = ½ p̃^T Q p̃`` and the duality gap
    ``½ ||λ − y^T p(λ)||² = ½ (p̃ − p(λ))^T Q (p̃ − p(λ))``, with
    ``p(λ) = softmax((μ − Q p̃)/τ)``.

    Args:
        ql: ``Q [n, n]`` as nested lists.
        mul: ``μ [n]``.
        tau: Temperature τ > 0.
        tol: Required duality gap.

    Returns:
        ``(p(λ), f(p(λ)), p̃, certified)``: the primal point, its objective ``D(λ) − gap``, the
        smoothed point (``y^T p̃`` is a dual start for :func:`entropic_newton` when the gap
        is above ``tol``) and whether the gap is at most ``tol``. When more than
        ``_PY_SMOOTH`` actions are near-active, smoothing on Python floats would cost more
        than the Newton steps it saves: ``(p*, nan, p*, False)`` is returned at once.
    """
    n = len(mul)
    pl, g = _qp_lists(ql, mul, 200 * (n + 1))
    cand, pe = _candidates(g, pl, tau, _PY_SMOOTH)
    if not cand:  # many near-active actions: Newton from p* is cheaper
        return pl, math.nan, pl, False
    pe = _smooth_face(
        [[ql[a][b] for b in cand] for a in cand], [mul[a] for a in cand], pe, tau, tol
    )
    pt = [0.0] * n
    qpt = [0.0] * n  # Q p̃
    for a, pa in zip(cand, pe, strict=True):
        pt[a] = pa
        qpt = list(map(add_op, qpt, map(mul_op, ql[a], repeat(pa))))
    lse, ex, total = _lse_terms([(mi - ci) / tau for mi, ci in zip(mul, qpt, strict=True)])
    p = [v / total for v in ex]
    dual = tau * lse + 0.5 * sum(map(mul_op, pt, qpt))
    diff = [a - b for a, b in zip(pt, p, strict=True)]
    gap = 0.5 * sum(map(mul_op, diff, [sum(map(mul_op, row, diff)) for row in ql]))
    gap = max(gap, 0.0)  # Q is PSD up to rounding
    return p, dual - gap, pt, gap <= tol


def _smooth_face(
    qe: list[list[float]], mue: list[float], pe: list[float], tau: float, tol: float
) -> list[float]:
    """A few primal Newton steps for ``max μ^T p − ½ p^T Q p + τ H(p)`` on a simplex.

    ``pe`` must be strictly positive and sum to 1, and stays so (a fraction-to-boundary rule).
    Each step solves the KKT system ``(Q + τ diag(1/p)) d + ν 1 = −g``, ``Σ d = 0`` (g the
    gradient of the negated objective) with one Cholesky factorisation of the positive definite
    ``Q + τ diag(1/p)`` and two solves (closed forms for two and three actions): Python floats
    for at most ``_PY_SMOOTH`` coordinates, LAPACK above; at most four steps. The loop stops
    after a full step whose Newton decrement δ has ``δ² <= 0.1 τ tol`` (the dual gap after it,
    about ``δ²/τ``, is then near or below ``tol``).
    """
    k = len(pe)
    p = pe
    if k == 1:
        return p
    stop = 0.1 * tau * tol
    if k > _PY_SMOOTH:
        out: list[float] = _smooth_face_np(
            np.array(qe), np.array(mue), np.array(p), tau, stop
        ).tolist()
        return out
    for _ in range(4):
        grad = [
            sum(map(mul_op, row, p)) - mi + tau * math.log(pi)
            for row, mi, pi in zip(qe, mue, p, strict=True)
        ]
        if k == 2:  # d = (δ, −δ): one curvature along the edge
            (q00, q01), (_, q11) = qe
            delta = (grad[1] - grad[0]) / (q00 - 2.0 * q01 + q11 + tau / p[0] + tau / p[1])
            d = [delta, -delta]
        elif k == 3:  # d = (−u1 − u2, u1, u2): a 2×2 system in the basis of {Σ d = 0}
            (q00, q01, q02), (_, q11, q12), (_, _, q22) = qe
            e0, e1, e2 = tau / p[0], tau / p[1], tau / p[2]
            h11 = q11 + e1 - 2.0 * q01 + q00 + e0
            h22 = q22 + e2 - 2.0 * q02 + q00 + e0
            h12 = q12 - q01 - q02 + q00 + e0
            b1, b2 = grad[1] - grad[0], grad[2] - grad[0]
            det = h11 * h22 - h12 * h12
            if not det > 1e-14 * h11 * h22:
                return p
            u1 = (h12 * b2 - h22 * b1) / det
            u2 = (h12 * b1 - h11 * b2) / det
            d = [-u1 - u2, u1, u2]
        else:  # d = h^{-1}(ν 1 − grad), h = Q + τ diag(1/p) = L L^T, ν from Σ d = 0
            pairs = enumerate(zip(qe, p, strict=True))
            h = [[*row[:i], row[i] + tau / pi] for i, (row, pi) in pairs]
            rows = _chol_rows(h, 1e-14 * max(map(_last, h)))
            if rows is None:  # not positive definite in floating point: keep the current start
                return p
            zg = _chol_forward(rows, grad)
            z1 = _chol_forward(rows, [1.0] * k)
            nu = sum(map(mul_op, z1, zg)) / sum(map(mul_op, z1, z1))
            d = _chol_back(rows, list(map(sub_op, map(mul_op, z1, repeat(nu)), zg)))
        alpha = 1.0
        for pi, di in zip(p, d, strict=True):
            if di < 0.0 and 0.99 * pi < -di * alpha:
                alpha = 0.99 * pi / -di
        p = [pi + alpha * di for pi, di in zip(p, d, strict=True)]
        decrement = -sum(map(mul_op, grad, d))
        if alpha == 1.0 and decrement * decrement <= stop:
            break
    return p


def _smooth_face_np(
    q: FloatArray, mu: FloatArray, p: FloatArray, tau: float, stop: float
) -> FloatArray:
    """:func:`_smooth_face` with numpy and LAPACK (larger candidate sets)."""
    k = len(p)
    rhs = np.empty((k, 2))
    rhs[:, 1] = 1.0
    for _ in range(4):
        rhs[:, 0] = q @ p - mu + tau * np.log(p)
        hess = q.copy()
        hess.flat[:: k + 1] += tau / p
        chol_f, info = dpotrf(hess, lower=1, clean=0)
        if info != 0:
            return p
        sol, _ = dpotrs(chol_f, rhs, lower=1)
        d = sol[:, 1] * (float(sol[:, 0].sum()) / float(sol[:, 1].sum())) - sol[:, 0]
        neg = d < 0.0
        alpha = 1.0
        if neg.any():
            alpha = min(1.0, 0.99 * float((p[neg] / -d[neg]).min()))
        p = p + alpha * d
        decrement = -float(rhs[:, 0] @ d)
        if alpha == 1.0 and decrement * decrement <= stop:
            break
    return p


def entropic_newton(
    mu: FloatArray,
    y: FloatArray,
    tau: float,
    lam: FloatArray,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, float, FloatArray, bool]:
    """Damped Newton on ``D(λ) = τ·lse((μ − y λ)/τ) + ½ ||λ||²`` from ``λ``.

    This is the dual of ``max_p μ^T p − ½ ||y^T p||² + τ H(p)`` over the simplex; its primal
    point is ``p(λ) = softmax((μ − y λ)/τ)`` and, with ``g = λ − y^T p(λ)`` the gradient, the
    duality gap is exactly ``D(λ) − f(p(λ)) = ½ ||g||²`` — computed without cancellation, so the
    stopping rule works at any payoff scale. The Hessian ``I + V^T V`` with
    ``V = diag(sqrt(p/τ)) (y_S − 1 (y^T p)^T)`` over the support S of ``p`` is factored in the
    smaller of the two spaces (``|S|`` by Woodbury, or m).

    Args:
        mu: ``[n]``.
        y: ``[n, m]`` (here the dual variable is scaled so that ``λ = y^T p`` at the optimum).
        tau: Temperature τ > 0.
        lam: Starting dual point ``[m]``.
        tol: Required duality gap.
        max_iter: Newton-step budget.

    Returns:
        ``(p, f(p), λ, converged)`` with ``f`` the primal objective.
    """
    n, m = y.shape
    if n <= SMALL_N and n <= m:
        return _newton_small(mu, y, tau, lam, tol, max_iter)
    mt = mu / tau
    inv_tau = 1.0 / tau  # (y @ λ) / τ: no temporary of y's size (page faults for large n)

    def evaluate(lam: FloatArray) -> tuple[float, FloatArray]:
        a = mt - (y @ lam) * inv_tau
        top = float(a.max())
        e = np.exp(a - top)
        total = float(e.sum())
        return tau * (top + math.log(total)) + 0.5 * _sumsq(lam), e / total

    d_val, p = evaluate(lam)
    for it in range(max_iter + 1):
        ybar = p @ y
        grad = lam - ybar
        gap = 0.5 * _sumsq(grad)
        if gap <= tol or it == max_iter:
            return p, d_val - gap, lam, gap <= tol
        support = np.flatnonzero(p > 1e-15)
        k = len(support)
        ps = p[support]
        v = (y[support] - ybar) * np.sqrt(ps / tau)[:, None]  # [k, m]
        if k < m:
            chol_f, info = dpotrf(v @ v.T + np.eye(k), lower=1, clean=0)
            if info != 0:
                break
            x, _ = dpotrs(chol_f, v @ grad, lower=1)
            step = v.T @ x - grad
        else:
            chol_f, info = dpotrf(v.T @ v + np.eye(m), lower=1, clean=0)
            if info != 0:
                break
            step, _ = dpotrs(chol_f, -grad, lower=1)
        slope = float(grad @ step)
        if not slope < 0.0:
            break
        t = 1.0
        while t > 1e-6:  # smaller steps mean the model is wrong: let the caller re-route
            new_lam = lam + step if t == 1.0 else lam + t * step
            new_val, new_p = evaluate(new_lam)
            if new_val <= d_val + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break
        lam, d_val, p = new_lam, new_val, new_p
    ybar = p @ y
    grad = lam - ybar
    gap = 0.5 * _sumsq(grad)
    return p, d_val - gap, lam, gap <= tol


def _newton_small(
    mu: FloatArray, y: FloatArray, tau: float, lam: FloatArray, tol: float, max_iter: int
) -> tuple[FloatArray, float, FloatArray, bool]:
    """:func:`entropic_newton` for ``n <= SMALL_N`` actions and ``n <= m``.

    The same iteration with fewer interpreter-level operations: the Newton system is always
    factored in the n-space of every action (Woodbury, no support search; actions of negligible
    mass add rows of ~0 to ``V``), ``y/τ`` is formed once, the softmax runs on Python floats and
    the temporaries are updated in place.
    """
    n = len(mu)
    yt = y * (1.0 / tau)
    mtl = (mu * (1.0 / tau)).tolist()
    diag = slice(None, None, n + 1)

    def evaluate(lam: FloatArray) -> tuple[float, FloatArray, float]:
        lse, el, total = _lse_terms(list(map(sub_op, mtl, (yt @ lam).tolist())))
        inv = 1.0 / total
        lam2 = lam.tolist()
        half_sq = 0.5 * sum(map(mul_op, lam2, lam2))
        lse *= tau
        # Rounding level of D: a decrease below it cannot be seen by the line search.
        return lse + half_sq, np.array([v * inv for v in el]), 1e-15 * (abs(lse) + half_sq)

    d_val, p, _ = evaluate(lam)
    for it in range(max_iter + 1):
        ybar = p @ y
        grad = lam - ybar
        gl = grad.tolist()
        gap = 0.5 * sum(map(mul_op, gl, gl))
        if gap <= tol or it == max_iter:
            return p, d_val - gap, lam, gap <= tol
        v = y - ybar
        v *= np.sqrt(p * (1.0 / tau))[:, None]  # [n, m]
        h = v @ v.T
        h.flat[diag] += 1.0
        chol_f, info = dpotrf(h, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            break
        x, _ = dpotrs(chol_f, v @ grad, lower=1, overwrite_b=1)
        step = v.T @ x
        step -= grad
        slope = float(grad @ step)
        if not slope < 0.0:
            break
        t = 1.0
        while t > 1e-6:  # smaller steps mean the model is wrong: let the caller re-route
            new_lam = lam + step if t == 1.0 else lam + t * step
            new_val, new_p, noise = evaluate(new_lam)
            if new_val <= d_val + 1e-4 * t * slope + noise:
                break
            t *= 0.5
        else:
            break
        lam, d_val, p = new_lam, new_val, new_p
    ybar = p @ y
    grad = lam - ybar
    gap = 0.5 * _sumsq(grad)
    return p, d_val - gap, lam, gap <= tol


def entropic_newton_gram(
    mu: FloatArray,
    y: FloatArray,
    q: FloatArray,
    tau: float,
    coef: FloatArray,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, float, bool]:
    """:func:`entropic_newton` for small n given the Gram matrix ``Q = y y^T``, in coefficients.

    Every Newton iterate of the dual stays in the range of ``y^T`` when the start does (the
    gradient ``λ − y^T p`` and the step ``V^T x − grad`` both lie in it), so the iteration can
    run on coefficients ``c [n]`` with ``λ = y^T c`` and touch only n×n arrays:
    ``y λ = Q c``, ``½ ||λ||² = ½ c^T Q c``, the gradient is ``y^T r`` with ``r = c − p``, and
    the Newton step ``Δλ = −H^{-1} y^T r`` (``H = I + y^T Π y``, ``Π = (diag(p) − p p^T)/τ``)
    is ``Δλ = −y^T d`` with ``(I + Π Q) d = r`` — multiply by ``H`` to check:
    ``H y^T d = y^T (d + Π Q d) = y^T r``. ``I + Π Q = I + diag(p) (Q − 1 (Q p)^T)/τ`` is not
    symmetric but has real eigenvalues >= 1 (similar to ``I + Π^½ Q Π^½``), and one LU
    factorisation solves it. The stopping rule is the exact duality gap ``½ ||y^T r||²`` of
    :func:`entropic_newton` (computed from ``y``, not from ``Q``, so it has no cancellation);
    the line search and its rounding allowance are those of the general path.

    Args:
        mu: ``[n]``.
        y: ``[n, m]``.
        q: ``Q = y y^T`` ``[n, n]``.
        tau: Temperature τ > 0.
        coef: Starting coefficients ``[n]`` (dual start ``λ = y^T coef``; a primal strategy
            such as the τ = 0 optimum is a natural choice).
        tol: Required duality gap.
        max_iter: Newton-step budget.

    Returns:
        ``(p, f(p), converged)`` with ``f`` the primal objective.
    """
    n = len(mu)
    inv = 1.0 / tau
    qt = q * inv  # Q/τ: the gradient of the log-sum-exp argument and Π Q without 1/τ
    mtl = (mu * inv).tolist()
    diag = slice(None, None, n + 1)
    qtc = qt @ coef
    lse, el, total = _lse_terms(list(map(sub_op, mtl, qtc.tolist())))  # of (μ − y λ)/τ
    d_val = tau * (lse + 0.5 * float(coef @ qtc))  # D(λ)
    p = np.array(el) * (1.0 / total)
    for it in range(max_iter + 1):
        r = coef - p
        yr = (r @ y).tolist()
        gap = 0.5 * sum(map(mul_op, yr, yr))
        if gap <= tol or it == max_iter:
            return p, d_val - gap, gap <= tol
        qtp = qt @ p
        at = qt - qtp[:, None]  # (I + Π Q)^T, built in C order = I + Π Q in Fortran order
        at *= p
        at.flat[diag] += 1.0
        _, _, d, info = dgesv(at.T, r, overwrite_a=1)
        if info != 0:
            break
        slope = -tau * float((qtc - qtp) @ d)  # ∇D · Δλ = −(y^T r)·(y^T d) = −r^T Q d
        if not slope < 0.0:
            break
        t = 1.0
        while True:  # backtracking; tiny steps mean the model is wrong: let the caller re-route
            new_c = coef - d if t == 1.0 else coef - t * d
            new_qtc = qt @ new_c
            lse, el, total = _lse_terms(list(map(sub_op, mtl, new_qtc.tolist())))
            half = 0.5 * float(new_c @ new_qtc)
            new_val = tau * (lse + half)
            # 1e-15 (|lse| + half): D's rounding level, below which no decrease can be seen
            if new_val <= d_val + 1e-4 * t * slope + 1e-15 * tau * (abs(lse) + abs(half)):
                break
            t *= 0.5
            if t <= 1e-6:
                break
        if t <= 1e-6:
            break
        coef, qtc, d_val, p = new_c, new_qtc, new_val, np.array(el) * (1.0 / total)
    gap = 0.5 * _sumsq((coef - p) @ y)
    return p, d_val - gap, gap <= tol


def _lse_terms(arg: list[float]) -> tuple[float, list[float], float]:
    """``(lse, e, total)`` of a short list on Python floats: ``e = exp(arg − max arg)``,
    ``total = sum e`` and ``lse = log Σ exp(arg) = max arg + log total`` (no overflow)."""
    top = max(arg)
    e = [math.exp(v - top) for v in arg]
    total = sum(e)
    return top + math.log(total), e, total


def _sumsq(v: FloatArray) -> float:
    """``v @ v``, through Python floats for short vectors (a numpy reduction costs more)."""
    if len(v) <= 64:
        return float(sum([x * x for x in v.tolist()]))
    return float(v @ v)
