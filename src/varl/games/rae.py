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
from varl.games._mv_kernels import (
    SMALL_N,
    entropic_newton,
    entropic_newton_gram,
    entropic_small,
    entropic_start,
    simplex_qp,
)
from varl.games.normal_form import NormalFormGame, as_game

__all__ = [
    "RAESolution",
    "check_profile",
    "expected_payoff",
    "mean_variance_best_response",
    "mean_variance_utility",
    "payoff_covariance",
    "payoff_matrix",
    "payoff_scale",
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


def _as_payoff_matrix(m: ArrayLike) -> FloatArray:
    """``m`` as a non-empty float64 ``[n, m]`` matrix (finiteness: :func:`_expected_payoffs`)."""
    mat = m if isinstance(m, np.ndarray) and m.dtype == np.float64 else as_float_array(m, "m")
    if mat.ndim != 2 or 0 in mat.shape:
        raise ValueError(f"m: expected a non-empty [n, m] matrix, got shape {mat.shape}")
    return mat


_SCAN_MAX = 4096  # payoff matrices up to this size are scanned for NaN/inf directly


def _expected_payoffs(mat: FloatArray, weights: FloatArray) -> FloatArray:
    """``μ = M w``, raising if M holds NaN or inf.

    A small M is scanned (one ``isfinite`` pass and one reduction). A large one is not: every
    NaN/inf of M reaches μ (``0·inf`` is NaN and ``w >= 0``), so only a non-finite μ triggers a
    scan — this saves a pass over M and, for ``abs(M)``, a temporary of M's size.
    """
    if mat.size <= _SCAN_MAX:
        if not bool(np.isfinite(mat).all()):
            raise ValueError("m: contains NaN or inf")
        return mat @ weights
    with np.errstate(invalid="ignore", over="ignore"):
        mu = mat @ weights
    if not bool(np.isfinite(mu).all()) and not bool(np.isfinite(mat).all()):
        raise ValueError("m: contains NaN or inf")
    return mu


def _as_weights(w: ArrayLike, size: int) -> tuple[FloatArray, float]:
    """``w`` as a probability vector of length ``size`` and its smallest entry (the check of
    ``as_probability_vector`` with two reductions; vectors off the simplex by rounding are
    clipped and renormalised)."""
    if not (isinstance(w, np.ndarray) and w.dtype == np.float64 and w.shape == (size,)):
        arr = as_probability_vector(w, "w", size=size)
        return arr, float(arr.min())
    if size <= 64:  # two reductions of a short vector are cheaper through Python floats
        wl = w.tolist()
        total, low = sum(wl), min(wl)
    else:
        total, low = float(w.sum()), float(w.min())
    if not (math.isfinite(total) and low >= -1e-6 and abs(total - 1.0) <= 1e-6):
        return as_probability_vector(w, "w", size=size), 0.0  # raises with the full message
    if low < 0.0:
        arr = np.maximum(w, 0.0)
        return arr / float(arr.sum()), 0.0
    if total != 1.0:
        return w / total, low
    return w, low


def _nonnegative(value: float, name: str) -> float:
    """:func:`check_nonnegative` with a fast path for a Python float (one comparison)."""
    if type(value) is float and 0.0 <= value < math.inf:
        return value
    return check_nonnegative(value, name)


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
    arrays). With ``μ = M w``, ``Σ = Z diag(w) Z^T``, ``Z = M − μ 1^T`` and the factor
    ``Y = Z diag(sqrt(2γw))`` (so ``γ p^T Σ p = ½ ||Y^T p||²``):

    * ``τ = 0``: a primal active-set method for the concave QP on the simplex. Only the columns
      of ``Σ`` of the free actions are formed and each face is solved exactly (Cholesky in a
      basis of ``{Σ d = 0}``; an eigen-decomposition decides on singular faces, e.g. duplicate
      actions). It is exact up to rounding and returns one maximiser (unique when Σ is positive
      definite on the simplex).
    * ``τ > 0`` (strictly concave, unique maximiser): Newton's method on the smooth, strongly
      convex dual ``min_λ τ·logsumexp((μ − Y λ)/τ) + ½ ||λ||²``, whose primal point is
      ``p(λ) = softmax((μ − Y λ)/τ)``, stopped when the exact duality gap ``½ ||λ − Y^T p||²``
      — an upper bound on how far ``p``'s objective is from the optimum — is at most ``tol``.
      Each Newton system is factored in the smaller of the support of ``p`` and the opponent
      actions (with at most 24 own actions, in the n-space of ``Q = Y Y^T``). Without
      ``init``, a small τ starts from the τ = 0 solution; if Newton stalls, the solve follows
      the central path (τ' from the payoff spread down to τ).
    * ``γ = 0`` or Σ = 0: ``softmax(μ/τ)``, or the lowest-index maximiser of μ when τ = 0.

    Every internal tolerance is relative to the problem's scale, so scaling the payoffs by
    ``c > 0``, γ by ``1/c`` and τ, ``tol`` by ``c`` returns the same strategy up to rounding.

    Args:
        m: Payoffs ``[n, m]`` of the n own actions against m joint opponent actions.
        w: Opponent joint-action probabilities ``[m]``.
        gamma: Risk aversion γ >= 0.
        tau: Entropy temperature τ >= 0 (in payoff units).
        init: Optional warm start ``[n]`` on the simplex (e.g. the previous response of a
            learning loop); used by the τ > 0 solver only.
        tol: Required duality gap (objective accuracy, in payoff units) for τ > 0; the
            strategy itself is then within about ``sqrt(2 tol / κ)`` of the maximiser, κ the
            objective's curvature (pass ~1e-14 for strategies accurate to ~1e-8). Values below
            float64 resolution (1e-15 times the payoff spread) are raised to it.
        max_iter: Newton (τ > 0) or active-set (τ = 0, times n) iteration budget.

    Returns:
        The best response ``p [n]`` on the simplex.

    Raises:
        TypeError: On non-numeric payoffs or weights.
        ValueError: On non-finite payoffs, ``w`` off the simplex, or γ, τ, tol < 0.
        RuntimeError: If the solver does not reach ``tol`` within its budget.
    """
    mat = _as_payoff_matrix(m)
    weights, low = _as_weights(w, mat.shape[1])
    gam = _nonnegative(gamma, "gamma")
    tmp = _nonnegative(tau, "tau")
    _nonnegative(tol, "tol")
    start = None if init is None else as_probability_vector(init, "init", size=mat.shape[0])
    mu: FloatArray | None = _expected_payoffs(mat, weights)  # also the NaN/inf check of m
    if low <= 0.0:
        keep = weights > 0.0
        mat, weights, mu = mat[:, keep], weights[keep], None
    mu, y = _factor(mat, weights, gam, mu)
    p, _ = _solve(mu, y, gam > 0.0, tmp, start, tol, max_iter, value=False)
    return p


def _factor(
    m: FloatArray, w: FloatArray, gamma: float, mu: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """``μ = M w`` (unless given) and the factor ``Y = Z diag(sqrt(2γw))`` of ``2γΣ = Y Y^T``
    (``Y = Z`` when γ = 0), formed in place in one temporary of M's size (a second one, as
    ``Z`` then ``Y``, costs page faults for large games)."""
    if mu is None:
        mu = m @ w
    y = m - mu[:, None]
    if gamma > 0.0:
        y *= np.sqrt((2.0 * gamma) * w)
    return mu, y


def _objective_y(p: FloatArray, mu: FloatArray, y: FloatArray, risk: bool, tau: float) -> float:
    """:func:`_objective` from the factor of :func:`_factor`: ``p^T μ − ½ ||Y^T p||² + τ H(p)``
    (``risk``: γ > 0, else Y is the unscaled Z and the variance term is 0)."""
    value = float(p @ mu)
    if risk:
        v = p @ y
        value -= 0.5 * float(v @ v)
    if tau > 0.0:
        value += tau * _entropy(p)
    return value


def _solve(
    mu: FloatArray,
    y: FloatArray,
    risk: bool,
    tau: float,
    init: FloatArray | None,
    tol: float,
    max_iter: int,
    *,
    value: bool = True,
) -> tuple[FloatArray, float]:
    """The best response and its objective value (NaN for τ = 0 when ``value`` is False: the
    caller only wants the response), given the factor ``Y = Z diag(sqrt(2γw))`` of
    :func:`_factor` (``risk``: γ > 0)."""
    if risk and tau == 0.0:  # the active set handles Y = 0 (its start is the best vertex)
        p = simplex_qp(mu, y, max_iter * (len(mu) + 1))
        return p, _objective_y(p, mu, y, True, 0.0) if value else math.nan
    if not risk:
        return _linear_response(mu, tau)
    return _entropic(mu, y, tau, init, tol, max_iter)  # it checks for Y = 0 itself


def _linear_response(mu: FloatArray, tau: float) -> tuple[FloatArray, float]:
    """The response without variance term (γ = 0 or Y = 0): ``softmax(μ/τ)``, or the
    lowest-index maximiser of μ when τ = 0, and its objective value."""
    if tau > 0.0:  # softmax(μ/τ), shifted before dividing so that μ/τ cannot overflow
        top = float(mu.max())
        with np.errstate(over="ignore"):  # a gap over τ·709 underflows to weight 0
            e = np.exp((mu - top) / tau)
        total = float(e.sum())
        return e / total, top + tau * math.log(total)
    p = np.zeros_like(mu)
    p[int(np.argmax(mu))] = 1.0
    return p, float(mu.max())


def _entropic(
    mu: FloatArray,
    y: FloatArray,
    tau: float,
    init: FloatArray | None,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, float]:
    """Entropy-regularised best response (τ > 0, Y ≠ 0) by dual Newton (see the kernel).

    The dual optimum is ``λ = Y^T p``, which maps a primal warm start to a dual one. For small τ
    the log-sum-exp is nearly piecewise linear and Newton can zig-zag between its kinks; a cold
    start therefore uses the τ = 0 solution, smoothed for τ (``entropic_start``), when τ is below
    a tenth of the payoff spread. With at most ``SMALL_N`` actions that start is built and
    certified on Python floats (``entropic_small``) and Newton runs only if its gap is above
    ``tol``, from the τ = 0 optimum and on the Gram matrix ``Q = Y Y^T`` already formed
    (``entropic_newton_gram``). A start gets a short budget; if it stalls, the solve follows the
    central path instead: τ' = spread down to τ by factors of 10, each stage warm-started from
    the last. ``Y = 0`` (no variance) gives ``softmax(μ/τ)``.
    """
    n = len(mu)
    ql = None
    if n <= SMALL_N:  # reductions of short vectors are cheaper through Python floats
        mul = mu.tolist()
        if init is None:  # the cold start needs all of Q = Y Y^T; its diagonal gives the spread
            qa = y @ y.T
            ql = qa.tolist()
            top = max([ql[i][i] for i in range(n)])
        else:
            top = max(np.einsum("km,km->k", y, y).tolist())
        spread = max(mul) - min(mul) + top
    else:
        top = float(np.einsum("km,km->k", y, y).max())
        spread = float(mu.max() - mu.min()) + top
    if top == 0.0 and not bool(y.any()):  # Y = 0 (Q = 0 alone may be underflow)
        return _linear_response(mu, tau)
    if not math.isfinite(spread):
        raise ValueError(
            "m: payoffs too large for float64 in the mean-variance best response (the payoff "
            "spread or the variance overflows); rescale them (solve_rae does so itself)"
        )
    tol = max(tol, 1e-15 * spread)
    if init is not None:
        lam = init @ y
    elif tau < 0.1 * spread and ql is not None:  # all on Python floats, certified without Newton
        pl, value, start, ok = entropic_small(ql, mul, tau, tol)
        if ok:
            return np.array(pl), value
        p, value, ok = entropic_newton_gram(mu, y, qa, tau, np.array(start), tol, min(max_iter, 30))
        if ok:
            return p, value
        return _central_path(mu, y, tau, spread, tol, max_iter)
    elif tau < 0.1 * spread:
        lam = entropic_start(mu, y, tau, tol)
    else:
        a = mu / tau
        soft = np.exp(a - a.max())
        lam = (soft / soft.sum()) @ y
    p, value, lam, ok = entropic_newton(mu, y, tau, lam, tol, min(max_iter, 30))
    if ok:
        return p, value
    return _central_path(mu, y, tau, spread, tol, max_iter)


def _central_path(
    mu: FloatArray, y: FloatArray, tau: float, spread: float, tol: float, max_iter: int
) -> tuple[FloatArray, float]:
    """The fallback of :func:`_entropic`: τ' = spread down to τ by factors of 10, each stage's
    Newton warm-started from the last."""
    stage_tau = max(spread, tau)
    lam = np.zeros(y.shape[1])  # λ = 0 is the optimum's neighbour when τ' is large
    while True:
        last = stage_tau <= tau
        stage_tol = tol if last else max(tol, 1e-3 * stage_tau)
        p, value, lam, ok = entropic_newton(mu, y, stage_tau, lam, stage_tol, max_iter)
        if last:
            break
        stage_tau = max(stage_tau / 10.0, tau)
    if ok:
        return p, value
    raise RuntimeError(
        f"mean-variance best response did not converge to tol {tol:.3g} in {max_iter} Newton "
        "steps per stage (raise max_iter or tol)"
    )


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
    mu, y = _factor(m, w, gam)
    return _solve(mu, y, gam > 0.0, tmp, None, tol, 200, value=False)[0]


def _player_gaps(
    g: NormalFormGame, prof: Profile, gammas: FloatArray, tau: float, tol: float = 1e-12
) -> FloatArray:
    gaps = np.empty(g.num_players)
    for i in range(g.num_players):
        m, w = _reduce(g.payoffs[i], prof, i)
        gam = float(gammas[i])
        mu, y = _factor(m, w, gam)
        _, best = _solve(mu, y, gam > 0.0, tau, prof[i], tol, 200)
        gaps[i] = max(0.0, best - _objective_y(prof[i], mu, y, gam > 0.0, tau))
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
        gap: RAE gap of ``profile`` (τ = 0, the same γ), in payoff units.
        perturbed_gap: Gap of ``profile`` in the perturbed game, in payoff units: equal to
            ``rae_gap(game, profile, gamma=γ, tau=τ·scale)``, the quantity the loop drives to 0.
        iterations: Fictitious-play iterations run.
        converged: Whether ``perturbed_gap <= tol·scale`` was reached.
        trajectory: Beliefs of each player at every recorded iteration, ``[R, n_i]`` each.
        trajectory_iterations: The recorded iteration numbers ``[R]`` (0 is the initial
            belief; the final iterate is always recorded).
        gap_trajectory: Perturbed gap at each recorded iteration ``[R]`` (payoff units).
        scale: The payoff scale s that τ and ``tol`` are measured in (see :func:`solve_rae`).
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
    scale: float = 1.0


def payoff_scale(game: GameLike) -> float:
    """The payoff scale ``s = max_i (max u_i − min u_i)`` of a game: its largest per-player
    payoff range (1.0 when every player's payoffs are constant).

    :func:`solve_rae` measures τ and ``tol`` in units of ``s``. It is positively homogeneous
    (``payoff_scale(c·game) = c·payoff_scale(game)``) and ignores constants added to a player's
    payoffs.

    Example:
        >>> payoff_scale([[[1, 1], [2, -10]], [[1, 0], [0, 1]]])  # row player's range 12
        12.0
    """
    g = as_game(game)
    s = max(float(t.max() - t.min()) for t in g.payoffs)
    return s if s > 0.0 else 1.0


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

    Scale: τ and ``tol`` are relative to the payoff scale ``s =`` :func:`payoff_scale` (the
    largest per-player payoff range). The loop runs on the payoffs divided by s with γ
    multiplied by s (the variance scales with the square of the payoffs), i.e. on the
    perturbation ``τ·s H`` in payoff units. Hence, for every ``c > 0``,
    ``solve_rae(c·game, gamma=γ/c)`` returns the same profile (up to float rounding) as
    ``solve_rae(game, gamma=γ)``, with means ×c, variances ×c² and gaps ×c; adding a constant
    to a player's payoffs changes no strategy either. (The array-level
    :func:`rae_best_response` and :func:`rae_gap` take τ in payoff units.)

    Reconstruction: Algorithm 1 of the paper could not be read; this is its standard SFP reading
    with our step size and stopping rule (spec §0, §1.6).

    Args:
        game: The game (or its payoff tensors).
        gamma: Risk aversion, one number or one per player, each >= 0 (0: risk-neutral SFP).
        tau: Entropy temperature τ > 0 relative to the payoff scale (the equilibrium found is an
            ε-RAE with ε -> 0 as τ -> 0).
        iterations: Maximum number of updates T >= 0.
        init: Initial beliefs, one mixed strategy per player (default uniform).
        tol: Stop when the perturbed gap is at most ``tol·scale`` (>= 0).
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
    scale = payoff_scale(g)
    if symmetric:
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
    mats = [_own_matrix(t, i) / scale for i, t in enumerate(g.payoffs)]
    gam_s = [float(v) * scale for v in gammas]
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
            risk = gam_s[i] > 0.0
            mu, y = _factor(mats[i] if keep.all() else mats[i][:, keep], w, gam_s[i])
            b, best = _solve(mu, y, risk, tmp, responses[i], 1e-10, 200)
            gap += max(0.0, best - _objective_y(x[i], mu, y, risk, tmp))
            new.append(b)
        pgap = gap
        done = pgap <= tol or t >= iterations
        if t % record_every == 0 or done:
            rec_t.append(t)
            rec_gap.append(pgap * scale)
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
        perturbed_gap=float(pgap * scale),
        iterations=t,
        converged=bool(pgap <= tol),
        trajectory=tuple(np.asarray(r) for r in rec_x),
        trajectory_iterations=np.asarray(rec_t, dtype=np.float64),
        gap_trajectory=np.asarray(rec_gap),
        scale=scale,
    )
