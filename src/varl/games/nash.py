"""Nash-equilibrium baselines and NashConv / exploitability, on the same games and code paths.

Two-player games are solved exactly through nashpy (support enumeration, vertex enumeration,
Lemke–Howson; imported only when one of these methods is asked for). Any number of players can
be solved by risk-neutral smooth fictitious play, which *is* :func:`varl.games.rae.solve_rae`
with γ = 0, so an RAE and its Nash baseline differ in γ alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from varl.games.normal_form import NormalFormGame, as_game
from varl.games.rae import GameLike, Profile, _reduce, check_profile, solve_rae

__all__ = ["NASH_METHODS", "exploitability", "nash_conv", "nash_equilibria", "solve_nash"]

NASH_METHODS = ("lemke_howson", "support_enumeration", "vertex_enumeration", "sfp")
"""Choices of :func:`solve_nash`'s ``method`` (the first three need two players and nashpy)."""

_ENUMERATIONS = ("support_enumeration", "vertex_enumeration", "lemke_howson_enumeration")


def nash_conv(game: GameLike, profile: Sequence[ArrayLike]) -> float:
    """NashConv: the total gain of unilateral best deviations,

        NashConv(π) = Σ_i [ max_{a ∈ A_i} u_i(a, π_{-i}) − u_i(π) ] >= 0,

    0 exactly at a Nash equilibrium. Equal to :func:`varl.games.rae.rae_gap` with γ = τ = 0.

    Args:
        game: The game (or its payoff tensors).
        profile: One mixed strategy ``[n_i]`` per player.

    Returns:
        NashConv as a float (per-player terms below 0 by rounding are clipped at 0).

    Example:
        >>> nash_conv([[[1, 1], [2, -10]], [[1, 0], [0, 1]]], [[1, 0], [1, 0]])
        1.0
    """
    g = as_game(game)
    prof = check_profile(g, profile)
    total = 0.0
    for i in range(g.num_players):
        m, w = _reduce(g.payoffs[i], prof, i)
        mu = m @ w
        total += max(0.0, float(mu.max() - prof[i] @ mu))
    return total


def exploitability(game: GameLike, profile: Sequence[ArrayLike]) -> float:
    """Exploitability as OpenSpiel reports it: ``NashConv / N`` (for a two-player zero-sum game,
    the average amount a best-responding opponent wins against each player).

    Args:
        game: The game (or its payoff tensors).
        profile: One mixed strategy ``[n_i]`` per player.

    Returns:
        The exploitability as a float.
    """
    g = as_game(game)
    return nash_conv(g, profile) / g.num_players


def _nashpy_game(g: NormalFormGame, method: str) -> object:
    if g.num_players != 2:
        raise ValueError(
            f"method: {method!r} needs a 2-player game, this one has {g.num_players}; "
            "use method='sfp'"
        )
    import nashpy  # optional dependency (varl[games]); imported only for these methods

    return nashpy.Game(np.asarray(g.payoffs[0]), np.asarray(g.payoffs[1]))


def _as_profile(pair: Sequence[ArrayLike], g: NormalFormGame) -> Profile | None:
    """nashpy's output as a profile on the simplex, or None if it is not one."""
    out = []
    for p, n in zip(pair, g.shape, strict=True):
        arr = np.asarray(p, dtype=np.float64)
        if arr.shape != (n,) or not np.all(np.isfinite(arr)):
            return None
        arr = np.clip(arr, 0.0, None)
        if not arr.sum() > 0.0:
            return None
        out.append(arr / arr.sum())
    return tuple(out)


def nash_equilibria(game: GameLike, *, method: str = "vertex_enumeration") -> list[Profile]:
    """All Nash equilibria nashpy's enumeration finds in a two-player game.

    Args:
        game: A two-player game (or its two payoff matrices).
        method: ``"vertex_enumeration"`` (every extreme equilibrium; the default),
            ``"support_enumeration"`` (every equilibrium of a non-degenerate game in exact
            arithmetic — nashpy 0.0.43 tests best responses with float equality, so with
            non-integer payoffs it can miss mixed equilibria) or
            ``"lemke_howson_enumeration"`` (Lemke–Howson from every initial label; may repeat).

    Returns:
        The equilibria as ``(x, y)`` profiles, in nashpy's order (duplicates removed). A
        degenerate game can have infinitely many; enumeration returns the ones it finds.

    Raises:
        ValueError: For an unknown method or a game that is not two-player.
    """
    if method not in _ENUMERATIONS:
        raise ValueError(f"method: expected one of {_ENUMERATIONS}, got {method!r}")
    g = as_game(game)
    nash_game = _nashpy_game(g, method)
    if min(g.shape) == 1:
        return _single_action_equilibria(g)
    found: list[Profile] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nashpy's degeneracy notices
        for pair in getattr(nash_game, method)():
            profile = _as_profile(pair, g)
            if profile is None or nash_conv(g, profile) > 1e-8 * max(1.0, _scale(g)):
                continue  # Lemke–Howson on a degenerate game can end off the equilibrium set
            if not any(_same(profile, q) for q in found):
                found.append(profile)
    return found


def _single_action_equilibria(g: NormalFormGame) -> list[Profile]:
    """A player with one action: the other one's pure best replies (nashpy loops on these)."""
    k = 1 if g.shape[0] == 1 else 0
    payoff = g.payoffs[k].reshape(-1)
    out = []
    for a in np.flatnonzero(payoff == payoff.max()):
        profile = [np.ones(1), np.ones(1)]
        profile[k] = np.eye(len(payoff))[a]
        out.append(tuple(profile))
    return out


def _scale(g: NormalFormGame) -> float:
    return float(max(np.abs(p).max() for p in g.payoffs))


def _same(a: Profile, b: Profile) -> bool:
    return all(np.allclose(x, y, atol=1e-9) for x, y in zip(a, b, strict=True))


def solve_nash(
    game: GameLike,
    *,
    method: str = "lemke_howson",
    initial_dropped_label: int = 0,
    tau: float = 1e-3,
    iterations: int = 2000,
    init: Sequence[ArrayLike] | None = None,
    tol: float = 1e-4,
) -> Profile:
    """One Nash equilibrium (the baseline every RAE is compared with).

    Methods:
        ``"lemke_howson"``: nashpy's Lemke–Howson path from ``initial_dropped_label`` (two
        players, exact; the equilibrium is checked and an error raised if a degenerate game
        sends the path off the equilibrium set).
        ``"support_enumeration"`` / ``"vertex_enumeration"``: the first equilibrium nashpy's
        enumeration yields (two players).
        ``"sfp"``: risk-neutral smooth fictitious play for any number of players, i.e.
        :func:`varl.games.rae.solve_rae` with γ = 0 and the given ``tau``, ``iterations``,
        ``init`` and ``tol`` — an approximate (τ-perturbed) equilibrium; check
        :func:`nash_conv`.

    Args:
        game: The game (or its payoff tensors).
        method: One of :data:`NASH_METHODS`.
        initial_dropped_label: Lemke–Howson's starting label, ``0 <= label < n_0 + n_1``.
        tau: SFP temperature.
        iterations: SFP iterations.
        init: SFP initial beliefs.
        tol: SFP stopping tolerance on the perturbed gap.

    Returns:
        The equilibrium, one mixed strategy per player.

    Raises:
        ValueError: For an unknown method, a nashpy method on a game that is not two-player,
            or a bad label.
        RuntimeError: If the nashpy method finds no equilibrium (degenerate game).
    """
    if method not in NASH_METHODS:
        raise ValueError(f"method: expected one of {NASH_METHODS}, got {method!r}")
    g = as_game(game)
    if method == "sfp":
        return solve_rae(g, gamma=0.0, tau=tau, iterations=iterations, init=init, tol=tol).profile
    if method in ("support_enumeration", "vertex_enumeration"):
        found = nash_equilibria(g, method=method)
        if not found:
            raise RuntimeError(f"{method} found no equilibrium (degenerate game?); try 'sfp'")
        return found[0]
    n_labels = sum(g.shape)
    if not isinstance(initial_dropped_label, int) or not 0 <= initial_dropped_label < n_labels:
        raise ValueError(
            f"initial_dropped_label: expected an int in [0, {n_labels}), "
            f"got {initial_dropped_label!r}"
        )
    nash_game = _nashpy_game(g, method)
    if min(g.shape) == 1:
        return _single_action_equilibria(g)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pair = nash_game.lemke_howson(initial_dropped_label=initial_dropped_label)  # type: ignore[attr-defined]
    profile = _as_profile(pair, g)
    if profile is None or nash_conv(g, profile) > 1e-8 * max(1.0, _scale(g)):
        raise RuntimeError(
            "Lemke-Howson left the equilibrium set (the game is degenerate); use "
            "method='support_enumeration' or 'sfp'"
        )
    return profile
