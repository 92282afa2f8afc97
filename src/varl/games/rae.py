"""Risk-averse equilibrium (RAE): mean–variance best responses, the RAE gap, and smooth FP.

Paper: O. Slumbers, D. H. Mguni, S. B. Blumberg, S. M. McAleer, Y. Yang, J. Wang, "A
Game-Theoretic Framework for Managing Risk in Multi-Agent Systems", ICML 2023 (arXiv 2205.15434).

Reconstruction: the paper's body (its definitions and Algorithm 1) could not be read; only its
abstract could. What this module computes is the mean–variance ("Markowitz") reading of that
abstract and of the authors' follow-up (DRAE, arXiv 2510.03446), which describes RAE as
expected reward minus γ times the reward variance *caused by the other players' strategies*,
computed by stochastic fictitious play on a utility perturbed by a quadratic risk term. The
paper's own symbols, constants and step sizes may differ.

Definitions (player i, opponents' mixed profile π_{-i}, player i's payoffs reduced to a matrix
``M [n_i, m]`` whose columns are the opponents' joint actions, weighted by ``w = ⊗_{k≠i} π_k``):

    μ_i = M w                                   (return of each own action)
    Σ_i = Σ_j w_j (M[:, j] − μ_i)(M[:, j] − μ_i)^T   (covariance over the opponents' draw)
    E_i(π) = π_i^T μ_i,   Var_i(π) = π_i^T Σ_i π_i
    U_i(π) = E_i(π) − γ_i Var_i(π) + τ H(π_i),   H(p) = −Σ_k p_k log p_k

Own randomisation is not risk (Σ_i does not depend on π_i), which makes U_i concave in π_i, so a
maximiser always exists and an RAE — a profile where every π_i maximises U_i(·, π_{-i}) —
exists by Kakutani's theorem for every γ_i >= 0. γ = 0 and τ = 0 give Nash equilibrium; any
pure opponent profile has Σ_i = 0, so every pure Nash equilibrium is an RAE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from varl._checks import FloatArray, as_float_array, as_probability_vector, check_nonnegative
from varl.games.normal_form import NormalFormGame, as_game

__all__ = [
    "RAESolution",
    "check_profile",
    "expected_payoff",
    "mean_variance_best_response",
    "mean_variance_utility",
    "payoff_covariance",
    "payoff_matrix",
    "payoff_variance",
    "rae_best_response",
    "rae_gap",
    "solve_rae",
]

GameLike = NormalFormGame | Sequence[ArrayLike]
Profile = tuple[FloatArray, ...]


# --- validation -------------------------------------------------------------------------------


def check_profile(game: NormalFormGame, profile: Sequence[ArrayLike]) -> Profile:
    """Validates a mixed-strategy profile: one probability vector ``[n_i]`` per player.

    Raises:
        ValueError: If the number of strategies or a length is wrong, or a strategy is off the
            simplex (by more than 1e-6) or holds NaN/inf; the message names ``profile[i]``.
    """
    if isinstance(profile, str) or len(profile) != game.num_players:
        raise ValueError(
            f"profile: expected one mixed strategy per player ({game.num_players}), "
            f"got {len(profile)}"
        )
    return tuple(
        as_probability_vector(p, f"profile[{i}]", size=n)
        for i, (p, n) in enumerate(zip(profile, game.shape, strict=True))
    )


def _check_player(game: NormalFormGame, player: int) -> int:
    if isinstance(player, bool) or not isinstance(player, int | np.integer):
        raise TypeError(f"player: expected an int, got {type(player).__name__}")
    if not 0 <= player < game.num_players:
        raise ValueError(f"player: expected 0 <= player < {game.num_players}, got {player}")
    return int(player)


def _per_player(value: float | Sequence[float], n: int, name: str) -> FloatArray:
    """Broadcasts a scalar or checks a per-player sequence of finite numbers >= 0."""
    arr = as_float_array(value, name, finite=True)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    elif arr.shape != (n,):
        raise ValueError(
            f"{name}: expected a number or {n} numbers (one per player), got {arr.shape}"
        )
    for k, v in enumerate(arr):
        check_nonnegative(float(v), name if arr.ndim == 0 else f"{name}[{k}]")
    return arr


# --- the reduced problem of one player ----------------------------------------------------------


def payoff_matrix(
    game: GameLike, profile: Sequence[ArrayLike], player: int
) -> tuple[FloatArray, FloatArray]:
    """Player ``player``'s payoffs against the opponents' joint actions, and their weights.

    Args:
        game: The game (or its list of payoff tensors).
        profile: Mixed strategy of every player, ``[n_k]`` each (``profile[player]`` is only
            validated, not used).
        player: Index i of the player.

    Returns:
        ``(M, w)``: ``M [n_i, m]`` with ``M[a, j] = u_i(a, a_{-i} = j)`` over the m joint opponent
        actions of positive probability, and their probabilities ``w [m]`` (the product of the
        opponents' mixtures, summing to 1).
    """
    g = as_game(game)
    i = _check_player(g, player)
    prof = check_profile(g, profile)
    return _reduce(g.payoffs[i], prof, i)


def _own_matrix(tensor: FloatArray, player: int) -> FloatArray:
    """``[n_i, prod_{k≠i} n_k]``: own action first, opponents' actions in C order."""
    moved = np.moveaxis(tensor, player, 0)
    return moved.reshape(moved.shape[0], -1)


def _opponent_weights(profile: Profile, player: int) -> FloatArray:
    w = np.ones(1)
    for k, p in enumerate(profile):
        if k != player:
            w = np.multiply.outer(w, p).ravel()
    return w


def _reduce(tensor: FloatArray, profile: Profile, player: int) -> tuple[FloatArray, FloatArray]:
    m = _own_matrix(tensor, player)
    w = _opponent_weights(profile, player)
    keep = w > 0.0
    return m[:, keep], w[keep]


def _moments(m: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``μ = M w`` and the centred matrix ``Z = M − μ 1^T`` (so ``Σ = Z diag(w) Z^T``)."""
    mu = m @ w
    return mu, m - mu[:, None]


def _entropy(p: FloatArray) -> float:
    """``H(p) = −Σ_k p_k log p_k`` with ``0 log 0 = 0``."""
    return float(-(p @ np.log(np.where(p > 0.0, p, 1.0))))


def _objective(
    p: FloatArray, mu: FloatArray, z: FloatArray, w: FloatArray, gamma: float, tau: float
) -> float:
    """``p^T μ − γ Σ_j w_j (z_j^T p)^2 + τ H(p)``: U_i with own strategy ``p``."""
    value = float(p @ mu)
    if gamma > 0.0:
        y = z.T @ p
        value -= gamma * float(w @ (y * y))
    if tau > 0.0:
        value += tau * _entropy(p)
    return value


# --- moments of a profile ---------------------------------------------------------------------


def expected_payoff(game: GameLike, profile: Sequence[ArrayLike], player: int) -> float:
    """Expected payoff ``E_i = π_i^T M_i w_{-i}`` of ``player`` under a mixed profile.

    Args:
        game: The game (or its payoff tensors).
        profile: One mixed strategy ``[n_k]`` per player.
        player: Index i.

    Returns:
        ``E_i`` as a float.
    """
    g = as_game(game)
    i = _check_player(g, player)
    prof = check_profile(g, profile)
    m, w = _reduce(g.payoffs[i], prof, i)
    return float(prof[i] @ m @ w)


def payoff_covariance(game: GameLike, profile: Sequence[ArrayLike], player: int) -> FloatArray:
    """Covariance ``Σ_i [n_i, n_i]`` of player i's action returns over the opponents' draw.

    ``Σ_i[k, l] = Σ_j w_j (M[k, j] − μ_k)(M[l, j] − μ_l)`` with ``w = ⊗_{k≠i} π_k`` (spec
    rae.md §1.2). Positive semi-definite; zero when the opponents play pure strategies.
    Reconstruction: the paper's variance term is read as this Markowitz covariance.
    """
    g = as_game(game)
    i = _check_player(g, player)
    prof = check_profile(g, profile)
    m, w = _reduce(g.payoffs[i], prof, i)
    _, z = _moments(m, w)
    sigma = (z * w) @ z.T
    return np.asarray((sigma + sigma.T) / 2.0, dtype=np.float64)  # exactly symmetric


def payoff_variance(game: GameLike, profile: Sequence[ArrayLike], player: int) -> float:
    """Reward variance ``Var_i = π_i^T Σ_i(π_{-i}) π_i`` caused by the opponents' randomisation.

    Computed in the equivalent closed form ``Σ_j w_j (π_i^T M[:, j] − E_i)^2``: the variance,
    over the opponents' joint action, of player i's own-strategy-averaged payoff. Player i's own
    randomisation is not counted (spec rae.md §1.2).

    Args:
        game: The game (or its payoff tensors).
        profile: One mixed strategy ``[n_k]`` per player.
        player: Index i.

    Returns:
        ``Var_i >= 0``.

    Example:
        >>> A, B = [[1, 1], [2, -10]], [[1, 0], [0, 1]]
        >>> payoff_variance([A, B], [[0.5, 0.5], [11 / 12, 1 / 12]], 0)  # spec §6 T1: 2.75
        2.75
    """
    g = as_game(game)
    i = _check_player(g, player)
    prof = check_profile(g, profile)
    m, w = _reduce(g.payoffs[i], prof, i)
    y = prof[i] @ m
    dev = y - float(y @ w)
    return float(w @ (dev * dev))


def mean_variance_utility(
    game: GameLike, profile: Sequence[ArrayLike], player: int, *, gamma: float, tau: float = 0.0
) -> float:
    """Mean–variance utility ``U_i = E_i − γ Var_i + τ H(π_i)`` (spec rae.md §1.3–1.4).

    Args:
        game: The game (or its payoff tensors).
        profile: One mixed strategy ``[n_k]`` per player.
        player: Index i.
        gamma: Risk aversion γ >= 0 (γ = 0: risk neutral).
        tau: Entropy temperature τ >= 0 of the perturbed utility (0: unperturbed).

    Returns:
        ``U_i`` as a float.
    """
    g = as_game(game)
    i = _check_player(g, player)
    gam = check_nonnegative(gamma, "gamma")
    tmp = check_nonnegative(tau, "tau")
    prof = check_profile(g, profile)
    m, w = _reduce(g.payoffs[i], prof, i)
    mu, z = _moments(m, w)
    return _objective(prof[i], mu, z, w, gam, tmp)


# --- best responses ---------------------------------------------------------------------------


def mean_variance_best_response(
    m: ArrayLike,
    w: ArrayLike,
    *,
    gamma: float,
    tau: float,
    init: ArrayLike | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> FloatArray:
    """Maximiser over the simplex of ``p^T μ − γ p^T Σ p + τ H(p)`` for one payoff matrix.

    The array-level solver behind :func:`rae_best_response` (nashpy style: a function of payoff
    arrays). With ``μ = M w`` and ``Σ = Z diag(w) Z^T``, ``Z = M − μ 1^T``:

    * ``τ > 0`` (strictly concave, unique maximiser): Newton's method on the smooth, strongly
      convex dual ``min_λ τ·logsumexp((μ − Z λ)/τ) + Σ_j λ_j² / (4 γ w_j)``, whose primal point
      is ``p(λ) = softmax((μ − Z λ)/τ)``. It stops when the duality gap — an upper bound on how
      far ``p`` is from the optimal value — is at most ``tol``. Each Newton system is solved in
      the support of ``p`` (Woodbury identity), so a near-pure response is cheap.
    * ``τ = 0``: a primal active-set method for the concave QP on the simplex; it is exact up to
      rounding and returns one maximiser (unique when Σ is positive definite on the simplex).
    * ``γ = 0`` or Σ = 0: ``softmax(μ/τ)``, or the lowest-index maximiser of μ when τ = 0.

    Args:
        m: Payoffs ``[n, m]`` of the n own actions against m joint opponent actions.
        w: Opponent joint-action probabilities ``[m]``.
        gamma: Risk aversion γ >= 0.
        tau: Entropy temperature τ >= 0.
        init: Optional warm start ``[n]`` on the simplex (e.g. the previous response of a
            learning loop); used by the τ > 0 solver only.
        tol: Required duality gap (objective accuracy, in payoff units) for τ > 0; the
            strategy itself is then within about ``sqrt(2 tol / κ)`` of the maximiser, κ the
            objective's curvature (pass ~1e-14 for strategies accurate to ~1e-8).
        max_iter: Newton (τ > 0) or active-set (τ = 0, times n) iteration budget.

    Returns:
        The best response ``p [n]`` on the simplex.

    Raises:
        ValueError: On non-finite payoffs, ``w`` off the simplex, or γ, τ < 0.
        RuntimeError: If the solver does not reach ``tol`` within its budget.
    """
    mat = as_float_array(m, "m", finite=True)
    if mat.ndim != 2 or 0 in mat.shape:
        raise ValueError(f"m: expected a non-empty [n, m] matrix, got shape {mat.shape}")
    weights = as_probability_vector(w, "w", size=mat.shape[1])
    gam = check_nonnegative(gamma, "gamma")
    tmp = check_nonnegative(tau, "tau")
    check_nonnegative(tol, "tol")
    start = None if init is None else as_probability_vector(init, "init", size=mat.shape[0])
    keep = weights > 0.0
    mu, z = _moments(mat[:, keep], weights[keep])
    p, _ = _best_response(mu, z, weights[keep], gam, tmp, start, tol, max_iter)
    return p


def _best_response(
    mu: FloatArray,
    z: FloatArray,
    w: FloatArray,
    gamma: float,
    tau: float,
    init: FloatArray | None,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, float]:
    """Dispatches to the right solver; returns the response and its objective value."""
    risky = gamma > 0.0 and bool(np.any(z != 0.0))
    if not risky:
        if tau > 0.0:
            a = mu / tau
            e = np.exp(a - a.max())
            p = e / e.sum()
            return p, tau * float(a.max() + np.log(e.sum()))
        p = np.zeros_like(mu)
        p[int(np.argmax(mu))] = 1.0
        return p, float(mu.max())
    if tau > 0.0:
        return _entropic_newton(mu, z, w, gamma, tau, init, tol, max_iter)
    p = _simplex_qp(mu, z, w, gamma, max_iter * (len(mu) + 1))
    return p, _objective(p, mu, z, w, gamma, 0.0)


def _entropic_newton(
    mu: FloatArray,
    z: FloatArray,
    w: FloatArray,
    gamma: float,
    tau: float,
    init: FloatArray | None,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, float]:
    """Newton on the dual of the entropy-regularised mean–variance problem (τ, γ > 0).

    Dual: ``D(λ) = τ·lse((μ − Zλ)/τ) + Σ_j λ_j² / (2 c_j)`` with ``c = 2γw``; its gradient is
    ``−Z^T p + λ/c`` and its Hessian ``diag(1/c) + Z^T (diag(p) − p p^T) Z / τ``. At the optimum
    ``λ = c ⊙ Z^T p``, which also maps a primal warm start to a dual one.

    For small τ the log-sum-exp is nearly piecewise linear and Newton can zig-zag between its
    kinks. A warm start gets a short budget; if it stalls, the solve follows the central path
    instead: τ' = ``spread(μ)`` down to τ by factors of 10, each stage warm-started from the last.
    """
    c = 2.0 * gamma * w  # [m] > 0
    if init is None:
        a0 = mu / tau
        init = np.exp(a0 - a0.max())
        init /= init.sum()
    lam = c * (z.T @ init)
    p, primal, lam, ok = _newton_stage(mu, z, w, c, gamma, tau, lam, tol, min(max_iter, 30))
    if ok:
        return p, primal
    spread = float(np.ptp(mu)) + float(np.abs(z).max()) ** 2 * gamma + tau
    stage_tau = max(spread, tau)
    lam = np.zeros_like(c)  # λ = 0 is the optimum's neighbour when τ' is large
    while True:
        last = stage_tau <= tau
        stage_tol = tol if last else max(tol, 1e-3 * stage_tau)
        p, primal, lam, ok = _newton_stage(mu, z, w, c, gamma, stage_tau, lam, stage_tol, max_iter)
        if last:
            break
        stage_tau = max(stage_tau / 10.0, tau)
    if ok:
        return p, primal
    raise RuntimeError(
        f"mean-variance best response did not converge to tol {tol:.3g} in {max_iter} Newton "
        "steps per stage (raise max_iter or tol)"
    )


def _newton_stage(
    mu: FloatArray,
    z: FloatArray,
    w: FloatArray,
    c: FloatArray,
    gamma: float,
    tau: float,
    lam: FloatArray,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, float, FloatArray, bool]:
    """Damped Newton on the dual at one τ; returns ``(p, primal value, λ, converged)``."""

    def dual(lam: FloatArray) -> tuple[float, FloatArray]:
        a = (mu - z @ lam) / tau
        top = float(a.max())
        e = np.exp(a - top)
        total = float(e.sum())
        return tau * (top + math.log(total)) + 0.5 * float(lam @ (lam / c)), e / total

    d_val, p = dual(lam)
    scale = 1.0 + abs(d_val)
    for _ in range(max_iter):
        y = z.T @ p
        primal = float(p @ mu) - gamma * float(w @ (y * y)) + tau * _entropy(p)
        if d_val - primal <= tol:
            return p, primal, lam, True
        grad = lam / c - y
        support = p > 1e-16
        ps = p[support]
        ys = z[support]  # [k, m]
        v = -c * grad  # A^{-1}(−g), A = diag(1/c)
        kmat = (ys * c) @ ys.T  # [k, k]
        cmat = (np.diag(ps) - np.outer(ps, ps)) / tau
        x = np.linalg.solve(np.eye(len(ps)) + cmat @ kmat, cmat @ (ys @ v))
        step = v - c * (ys.T @ x)
        slope = float(grad @ step)
        if not slope < 0.0:
            break
        t = 1.0
        while t > 1e-6:  # smaller steps mean the model is wrong: let the caller re-route
            new_val, new_p = dual(lam + t * step)
            if new_val <= d_val + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break
        lam, d_val, p = lam + t * step, new_val, new_p
    y = z.T @ p
    primal = float(p @ mu) - gamma * float(w @ (y * y)) + tau * _entropy(p)
    # Rounding can stall the line search just above a tiny tol: accept what float64 allows.
    return p, primal, lam, d_val - primal <= max(tol, 1e-12 * scale)


def _simplex_qp(
    mu: FloatArray, z: FloatArray, w: FloatArray, gamma: float, max_iter: int
) -> FloatArray:
    """Primal active-set method: minimise ``½ p^T Q p − μ^T p`` over the simplex, with the PSD
    ``Q = 2γ Z diag(w) Z^T`` used through products and its free-set block only.

    Keeps a free set F (the other coordinates are fixed at 0). Each step solves the
    equality-constrained problem on F (``1^T d = 0``) in an orthonormal basis of that subspace;
    if Q is singular there and the gradient has a component along its null space, that
    zero-curvature descent direction is followed to the boundary. A zero step with every
    multiplier ``g_k − ν`` of the fixed coordinates >= 0 is optimal (KKT for a convex QP);
    otherwise the most negative one is freed.
    """
    n = len(mu)
    zw = z * w  # [n, m]
    diag = 2.0 * gamma * np.einsum("km,km->k", zw, z)  # |Q_kl| <= max diag (Q is PSD)
    scale = max(1.0, float(np.abs(mu).max()), float(diag.max()))
    eps = 1e-12 * scale
    start = int(np.argmax(mu - 0.5 * diag))
    p = np.zeros(n)
    p[start] = 1.0
    free = [start]
    face_optimal = True  # a vertex is optimal on its own (zero-dimensional) face
    for _ in range(max_iter):
        grad = 2.0 * gamma * (zw @ (z.T @ p)) - mu
        f_idx = np.asarray(free)
        if not face_optimal:
            q_free = 2.0 * gamma * (zw[f_idx] @ z[f_idx].T)
            d_free, unbounded = _equality_step(q_free, grad[f_idx], eps)
            if unbounded or float(np.abs(d_free).max(initial=0.0)) > 1e-12:
                neg = d_free < -1e-15
                ratios = np.full(len(f_idx), np.inf)
                ratios[neg] = -p[f_idx][neg] / d_free[neg]
                block = int(np.argmin(ratios))
                alpha = float(ratios[block]) if unbounded else min(1.0, float(ratios[block]))
                p[f_idx] += alpha * d_free
                blocked = alpha == ratios[block]
                if blocked:
                    p[f_idx[block]] = 0.0
                    free.remove(int(f_idx[block]))
                # A full step lands on the minimiser of the current face.
                face_optimal = not blocked
                continue
        # Optimal on the face: KKT multipliers of the coordinates held at zero.
        nu = float(grad[f_idx].mean())
        mult = grad - nu
        mult[f_idx] = np.inf
        k = int(np.argmin(mult))
        if mult[k] >= -eps:
            out: FloatArray = np.clip(p, 0.0, None)
            out /= out.sum()
            return out
        free.append(k)
        face_optimal = False
    raise RuntimeError(f"active-set QP did not terminate in {max_iter} steps (cycling)")


def _equality_step(q: FloatArray, g: FloatArray, eps: float) -> tuple[FloatArray, bool]:
    """Minimiser ``d`` of ``½ d^T Q d + g^T d`` subject to ``Σ d = 0``, or a descent ray.

    Returns ``(d, unbounded)``; ``unbounded`` means ``d`` is a direction of zero curvature and
    negative slope (the problem on this face has no finite minimiser).
    """
    f = len(g)
    if f == 1:
        return np.zeros(1), False
    # Householder reflection mapping e_1 to 1/sqrt(f): its other columns span {Σ d = 0}.
    u = np.full(f, 1.0 / math.sqrt(f))
    v = u.copy()
    v[0] -= 1.0
    v /= np.linalg.norm(v)
    basis = (np.eye(f) - 2.0 * np.outer(v, v))[:, 1:]  # [f, f-1], orthonormal
    h = basis.T @ q @ basis
    b = basis.T @ g
    evals, evecs = np.linalg.eigh(h)
    coef = evecs.T @ b
    flat = evals <= 1e-12 * max(1.0, float(np.abs(evals).max()))
    if np.any(np.abs(coef[flat]) > eps):
        ray = -(evecs[:, flat] @ coef[flat])
        return basis @ ray, True
    y = np.zeros_like(coef)
    y[~flat] = -coef[~flat] / evals[~flat]
    return basis @ (evecs @ y), False


def rae_best_response(
    game: GameLike,
    profile: Sequence[ArrayLike],
    player: int,
    *,
    gamma: float,
    tau: float,
    tol: float = 1e-10,
) -> FloatArray:
    """Player i's mean–variance best response to the others' strategies in ``profile``.

    ``argmax_{p ∈ Δ(A_i)} p^T μ_i − γ p^T Σ_i p + τ H(p)`` (spec rae.md §1.3–1.4), computed by
    :func:`mean_variance_best_response`. For τ > 0 the objective is strictly concave and the
    maximiser unique; for τ = 0 one maximiser is returned.

    Reconstruction: the paper's perturbed best response is read as this entropy-regularised
    mean–variance portfolio problem (spec §0, §1.4).

    Args:
        game: The game (or its payoff tensors).
        profile: One mixed strategy ``[n_k]`` per player; ``profile[player]`` is ignored.
        player: Index i.
        gamma: Risk aversion γ >= 0.
        tau: Entropy temperature τ >= 0.
        tol: Objective accuracy (duality gap) for τ > 0.

    Returns:
        The best response ``[n_i]``.

    Example:
        >>> A, B = [[1, 1], [2, -10]], [[1, 0], [0, 1]]
        >>> rae_best_response([A, B], [[1, 0], [0.5, 0.5]], 0, gamma=1.0, tau=0.0)
        array([1., 0.])
    """
    g = as_game(game)
    i = _check_player(g, player)
    gam = check_nonnegative(gamma, "gamma")
    tmp = check_nonnegative(tau, "tau")
    prof = check_profile(g, profile)
    m, w = _reduce(g.payoffs[i], prof, i)
    mu, z = _moments(m, w)
    return _best_response(mu, z, w, gam, tmp, None, tol, 200)[0]


def _player_gaps(
    g: NormalFormGame, prof: Profile, gammas: FloatArray, tau: float, tol: float = 1e-12
) -> FloatArray:
    gaps = np.empty(g.num_players)
    for i in range(g.num_players):
        m, w = _reduce(g.payoffs[i], prof, i)
        mu, z = _moments(m, w)
        _, best = _best_response(mu, z, w, float(gammas[i]), tau, prof[i], tol, 200)
        gaps[i] = max(0.0, best - _objective(prof[i], mu, z, w, float(gammas[i]), tau))
    return gaps


def rae_gap(
    game: GameLike,
    profile: Sequence[ArrayLike],
    *,
    gamma: float | Sequence[float],
    tau: float = 0.0,
) -> float:
    """RAE gap, the mean–variance analogue of NashConv (spec rae.md §3):

        gap(π) = Σ_i [ max_{p ∈ Δ} U_i(p, π_{-i}) − U_i(π_i, π_{-i}) ] >= 0,

    with ``U_i = E_i − γ_i Var_i + τ H``. It is 0 exactly at an RAE (at the perturbed
    equilibrium when τ > 0); with γ = τ = 0 it equals NashConv. Per-player terms that rounding
    pushes below 0 are clipped at 0.

    Reconstruction: the gap is our convergence measure; the paper's is not known (spec §0).

    Args:
        game: The game (or its payoff tensors).
        profile: One mixed strategy ``[n_k]`` per player.
        gamma: Risk aversion, one number for all players or one per player, each >= 0.
        tau: Entropy temperature τ >= 0.

    Returns:
        The gap as a float.
    """
    g = as_game(game)
    gammas = _per_player(gamma, g.num_players, "gamma")
    tmp = check_nonnegative(tau, "tau")
    prof = check_profile(g, profile)
    return float(_player_gaps(g, prof, gammas, tmp).sum())


# --- smooth fictitious play -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RAESolution:
    """The outcome of :func:`solve_rae`.

    Attributes:
        profile: Final beliefs, one mixed strategy ``[n_i]`` per player.
        mean: Expected payoff of each player ``[N]``.
        variance: Opponent-induced payoff variance of each player ``[N]``.
        gap: RAE gap of ``profile`` (τ = 0, the same γ).
        perturbed_gap: Gap of ``profile`` in the τ-perturbed game, the quantity the loop drives
            to 0 and stops on.
        iterations: Fictitious-play iterations run.
        converged: Whether ``perturbed_gap <= tol`` was reached.
        trajectory: Beliefs of each player at every recorded iteration, ``[R, n_i]`` each.
        trajectory_iterations: The recorded iteration numbers ``[R]`` (0 is the initial
            belief; the final iterate is always recorded).
        gap_trajectory: Perturbed gap at each recorded iteration ``[R]``.
    """

    profile: Profile
    mean: FloatArray
    variance: FloatArray
    gap: float
    perturbed_gap: float
    iterations: int
    converged: bool
    trajectory: tuple[FloatArray, ...]
    trajectory_iterations: FloatArray
    gap_trajectory: FloatArray


def solve_rae(
    game: GameLike,
    *,
    gamma: float | Sequence[float],
    tau: float = 1e-3,
    iterations: int = 2000,
    init: Sequence[ArrayLike] | None = None,
    tol: float = 1e-4,
    record_every: int = 1,
    symmetric: bool = False,
) -> RAESolution:
    """Risk-averse equilibrium by smooth fictitious play (spec rae.md §1.6, "Algorithm 1 SFP").

    Starting from beliefs ``x^0`` (uniform unless ``init``), every player best-responds to the
    others' beliefs with the perturbed mean–variance response, and beliefs move towards the
    responses with the classical fictitious-play step ``α_t = 1/(t+1)``:

        b_i^t = argmax_{p ∈ Δ} p^T μ_i(x_{-i}) − γ_i p^T Σ_i(x_{-i}) p + τ H(p)
        x_i^t = x_i^{t-1} + (b_i^t − x_i^{t-1}) / (t + 1),   t = 1, 2, ...

    All players update simultaneously. With ``symmetric`` (a two-player game with
    ``payoffs[1] == payoffs[0].T`` and one γ) both players share a single belief — the
    one-population dynamics whose rest points are symmetric equilibria, as symmetric PSRO
    needs; two-population dynamics can leave a symmetric mixed equilibrium (e.g. in chicken).
    The loop stops after ``iterations`` updates or as soon
    as the τ-perturbed gap of the beliefs (computed for free from the responses) is <= ``tol``.
    Convergence is known for the game classes where SFP converges (zero-sum, potential, 2×2);
    in other general-sum games report ``gap`` rather than assume it.

    Reconstruction: Algorithm 1 of the paper could not be read; this is its standard SFP reading
    with our step size and stopping rule (spec §0, §1.6).

    Args:
        game: The game (or its payoff tensors).
        gamma: Risk aversion, one number or one per player, each >= 0 (0: risk-neutral SFP).
        tau: Entropy temperature τ > 0 (the equilibrium found is an ε-RAE with ε -> 0 as τ -> 0).
        iterations: Maximum number of updates T >= 0.
        init: Initial beliefs, one mixed strategy per player (default uniform).
        tol: Stop when the perturbed gap is at most this (>= 0).
        record_every: Record the beliefs every this many iterations (>= 1).
        symmetric: Run the one-population dynamics of a symmetric two-player game.

    Returns:
        An :class:`RAESolution`.

    Raises:
        ValueError: On negative γ, τ <= 0, a bad ``init`` or a non-positive count.

    Example:
        >>> sol = solve_rae([[[1, 1], [2, -10]], [[1, 0], [0, 1]]], gamma=0.5)
        >>> bool(sol.variance[0] < 0.275)  # >= 10x below the Nash variance 2.75 (spec §6 T2)
        True
    """
    g = as_game(game)
    n = g.num_players
    gammas = _per_player(gamma, n, "gamma")
    tmp = float(tau)
    if not (math.isfinite(tmp) and tmp > 0.0):
        raise ValueError(f"tau: smooth fictitious play needs a finite temperature > 0, got {tau!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations: expected an int >= 0, got {iterations!r}")
    if isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every: expected an int >= 1, got {record_every!r}")
    check_nonnegative(tol, "tol")
    x = [np.full(k, 1.0 / k) for k in g.shape] if init is None else list(check_profile(g, init))
    if symmetric:
        scale = max(1.0, float(np.abs(g.payoffs[0]).max()))
        if (
            n != 2
            or g.payoffs[0].shape[0] != g.payoffs[0].shape[1]
            or not np.allclose(g.payoffs[1], g.payoffs[0].T, rtol=0.0, atol=1e-9 * scale)
            or gammas[0] != gammas[1]
        ):
            raise ValueError(
                "symmetric: needs a two-player game with payoffs[1] == payoffs[0].T and one gamma"
            )
        x[1] = x[0]
    mats = [_own_matrix(t, i) for i, t in enumerate(g.payoffs)]
    responses: list[FloatArray | None] = [None] * n
    rec_x: list[list[FloatArray]] = [[] for _ in range(n)]
    rec_t: list[int] = []
    rec_gap: list[float] = []
    t = 0
    pgap = math.inf
    while True:
        gap = 0.0
        new: list[FloatArray] = []
        for i in range(n):
            if symmetric and i == 1:  # the column player's problem is the row player's
                gap *= 2.0
                new.append(new[0])
                break
            w = _opponent_weights(tuple(x), i)
            keep = w > 0.0
            if not keep.all():
                w = w[keep]
            mu, z = _moments(mats[i] if keep.all() else mats[i][:, keep], w)
            b, best = _best_response(mu, z, w, float(gammas[i]), tmp, responses[i], 1e-10, 200)
            gap += max(0.0, best - _objective(x[i], mu, z, w, float(gammas[i]), tmp))
            new.append(b)
        pgap = gap
        done = pgap <= tol or t >= iterations
        if t % record_every == 0 or done:
            rec_t.append(t)
            rec_gap.append(pgap)
            for i in range(n):
                rec_x[i].append(x[i].copy())
        if done:
            break
        t += 1
        for i in range(n):
            x[i] = x[i] + (new[i] - x[i]) / (t + 1)
            responses[i] = new[i]
        if symmetric:
            x[1] = x[0]
    prof = tuple(x)
    means = np.empty(n)
    variances = np.empty(n)
    for i in range(n):
        m, w = _reduce(g.payoffs[i], prof, i)
        y = prof[i] @ m
        means[i] = float(y @ w)
        variances[i] = float(w @ (y - means[i]) ** 2)
    return RAESolution(
        profile=prof,
        mean=means,
        variance=variances,
        gap=float(_player_gaps(g, prof, gammas, 0.0).sum()),
        perturbed_gap=float(pgap),
        iterations=t,
        converged=bool(pgap <= tol),
        trajectory=tuple(np.asarray(r) for r in rec_x),
        trajectory_iterations=np.asarray(rec_t, dtype=np.float64),
        gap_trajectory=np.asarray(rec_gap),
    )
