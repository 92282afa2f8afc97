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

Speed: these problems are small, so the cost is the number of interpreter-level operations, not
flops. Problems with at most ``SMALL_N`` actions run the active set on Python floats
(:func:`simplex_qp_lists`), and short reductions go through Python floats, since a numpy call
on a short vector costs more than the arithmetic it saves.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.lapack import dpotrf, dpotrs

from varl._checks import FloatArray

__all__ = ["SMALL_N", "entropic_newton", "simplex_qp", "simplex_qp_lists"]

SMALL_N = 24  # problems with at most this many actions are solved with Python floats
_PY_FACE = 6  # faces with at most this many coordinates are solved with Python floats
_ADD = 4  # most-violating coordinates freed per multiplier pass (fewer passes)
_PIVOT = 1e-11  # relative pivot below which a face's reduced Hessian counts as singular


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
    big = max(float(np.abs(mu).max()), float(diag.max()))
    out = np.zeros(n)
    start = int(np.argmax(mu - 0.5 * diag))
    if big == 0.0:
        out[start] = 1.0
        return out
    eps = 1e-12 * big
    cap = min(n, 8)
    cols = np.empty((n, cap))  # cols[:, i] = Q[:, free[i]]
    col = y @ y[start]
    cols[:, 0] = col
    rows = {start: col.tolist()}  # Q[a, :] as Python floats, for the face blocks
    free = [start]
    pf = [1.0]
    g = col - mu  # gradient Q p − μ
    gl = g.tolist()
    face_optimal = True  # a vertex is optimal on its own (zero-dimensional) face
    for _ in range(max_iter):
        k = len(free)
        if not face_optimal:
            qff = [[rows[a][b] for b in free] for a in free]
            gf = [gl[a] for a in free]
            if k <= _PY_FACE:
                d, unbounded = _face_step_py(qff, gf, eps)
            else:
                d, unbounded = _face_step(np.array(qff), np.array(gf), eps)
            if unbounded or max(map(abs, d)) > 1e-12:
                alpha, block = _ratio_test(pf, d, unbounded)
                if alpha == math.inf:  # no finite move possible: treat the face as solved
                    face_optimal = True
                    continue
                pf = [pi + alpha * di for pi, di in zip(pf, d, strict=True)]
                if block >= 0:
                    del free[block], pf[block]
                    cols[:, block : k - 1] = cols[:, block + 1 : k].copy()
                    k -= 1
                g = cols[:, :k] @ np.array(pf) - mu
                gl = g.tolist()
                face_optimal = block < 0  # a full step lands on the face's minimiser
                if not face_optimal:
                    continue
        # Optimal on the face: KKT multipliers of the coordinates held at zero.
        fa = np.array(free)
        mult = g - sum([gl[a] for a in free]) / k
        mult[fa] = np.inf
        j = int(mult.argmin())
        if not mult[j] < -eps:
            kept = [max(v, 0.0) for v in pf]
            total = sum(kept)
            out[fa] = [v / total for v in kept]
            return out
        add = [j]
        if _ADD > 1 and n - k > 1:  # free the runners-up too: fewer multiplier passes
            mult[j] = np.inf
            top = np.argpartition(mult, min(_ADD - 1, n - k - 1) - 1)[: _ADD - 1]
            add += [int(a) for a in top if mult[a] < -eps]
        if k + len(add) > cols.shape[1]:
            cols = np.concatenate([cols, np.empty((n, min(n, 2 * k + 2) - k))], axis=1)
        new_cols = y @ y[add].T  # [n, len(add)]
        cols[:, k : k + len(add)] = new_cols
        for a, col_a in zip(add, new_cols.T.tolist(), strict=True):
            rows[a] = col_a
            free.append(a)
            pf.append(0.0)
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
    r = k - 1
    h = [[ql[i + 1][j + 1] - q0[i + 1] - q0[j + 1] + q0[0] for j in range(i + 1)] for i in range(r)]
    tiny = _PIVOT * max(max([h[i][i] for i in range(r)]), 0.0)
    chol: list[list[float]] = []  # rows of L without their diagonal
    diag: list[float] = []
    for i in range(r):
        row = h[i]
        li: list[float] = []
        for j in range(i):
            li.append((row[j] - sum([x * y for x, y in zip(li, chol[j], strict=True)])) / diag[j])
        piv = row[i] - sum([x * x for x in li])
        if not piv > tiny:
            d, unb = _equality_step(np.array(ql), np.array(gl), eps)
            return d.tolist(), unb
        chol.append(li)
        diag.append(math.sqrt(piv))
    # Solve H u = −b, b = g_r − g_0: forward (L v = −b), then backward (L^T u = v).
    v: list[float] = []
    for i in range(r):
        v.append((g0 - gl[i + 1] - sum([x * y for x, y in zip(chol[i], v, strict=True)])) / diag[i])
    u = [0.0] * r
    for i in range(r - 1, -1, -1):
        u[i] = (v[i] - sum([chol[t][i] * u[t] for t in range(i + 1, r)])) / diag[i]
    return [-sum(u), *u], False


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
    n = len(mul)
    diag = [ql[i][i] for i in range(n)]
    big = max(max(diag), max(mul), -min(mul))
    out = [0.0] * n
    score = [mi - 0.5 * di for mi, di in zip(mul, diag, strict=True)]
    start = max(range(n), key=score.__getitem__)
    if big == 0.0 or n == 1:
        out[start] = 1.0
        return out
    eps = 1e-12 * big
    free = [start]
    pf = [1.0]
    g = [qi - mi for qi, mi in zip(ql[start], mul, strict=True)]
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
                for t in range(k):
                    st = alpha * d[t]
                    pf[t] += st
                    g = [gi + st * ri for gi, ri in zip(g, qrows[t], strict=True)]
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
            return [v / total for v in out]
        for a in order:
            if gm[a] - nu < -eps:
                free.append(a)
                pf.append(0.0)
        face_optimal = False
    raise RuntimeError(f"active-set QP did not terminate in {max_iter} steps (cycling)")


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
    mt = mu / tau
    yt = y / tau
    small = n <= SMALL_N  # reductions of short vectors are cheaper in Python than in numpy
    eye_n = np.eye(n) if small and n <= m else None  # small: every action, no support search

    def evaluate(lam: FloatArray) -> tuple[float, FloatArray]:
        a = mt - yt @ lam
        if small:
            al = a.tolist()
            top = max(al)
            el = [math.exp(v - top) for v in al]
            total = sum(el)
            p = np.array([v / total for v in el])
        else:
            top = float(a.max())
            e = np.exp(a - top)
            total = float(e.sum())
            p = e / total
        return tau * (top + math.log(total)) + 0.5 * _sumsq(lam), p

    d_val, p = evaluate(lam)
    for it in range(max_iter + 1):
        ybar = p @ y
        grad = lam - ybar
        gap = 0.5 * _sumsq(grad)
        if gap <= tol or it == max_iter:
            return p, d_val - gap, lam, gap <= tol
        if eye_n is not None:  # k-space (Woodbury) with every action: n <= m
            pl = p.tolist() if small else None
            root = np.sqrt(p / tau) if pl is None else np.array([math.sqrt(v / tau) for v in pl])
            v = (y - ybar) * root[:, None]  # [n, m]
            chol_f, info = dpotrf(v @ v.T + eye_n, lower=1, clean=0)
            if info != 0:
                break
            x, _ = dpotrs(chol_f, v @ grad, lower=1)
            step = v.T @ x - grad
        else:
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


def _sumsq(v: FloatArray) -> float:
    """``v @ v``, through Python floats for short vectors (a numpy reduction costs more)."""
    if len(v) <= 64:
        return float(sum([x * x for x in v.tolist()]))
    return float(v @ v)
