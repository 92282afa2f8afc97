"""RAE as a meta-solver for OpenSpiel's PSRO (``open_spiel.python.algorithms.psro_v2``).

Paper: Slumbers et al., ICML 2023 (arXiv 2205.15434), "PSRO-RAE" — the authors used OpenSpiel's
PSRO before (spec rae.md §3), so this adapter lets the same experiment run there.
Reconstruction: the RAE is the mean–variance equilibrium of :mod:`varl.games.rae`.

OpenSpiel calls a meta-solver as ``method(solver, return_joint=False)`` and reads the
empirical game from ``solver.get_meta_game()`` (one payoff tensor per player, or a single
matrix for two-player zero-sum games). Bind γ and τ with :func:`functools.partial`::

    import functools
    from open_spiel.python.algorithms.psro_v2 import psro_v2
    from varl.games.openspiel import rae_meta_strategy

    solver = psro_v2.PSROSolver(
        game, oracle, initial_policies=...,
        meta_strategy_method=functools.partial(rae_meta_strategy, gamma=0.5),
    )

This module imports pyspiel and OpenSpiel (``pip install varl[games]``); nothing else in
``varl.games`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyspiel
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import exploitability
from open_spiel.python.algorithms.psro_v2 import best_response_oracle, psro_v2

from varl._checks import FloatArray
from varl.games.rae import solve_rae

__all__ = ["joint_from_marginals", "make_psro_v2", "nash_conv_of", "rae_meta_strategy"]


def joint_from_marginals(marginals: Sequence[FloatArray]) -> FloatArray:
    """The product distribution over joint profiles, flattened in C order (the layout OpenSpiel
    expects for ``return_joint=True``)."""
    joint = np.ones(1)
    for p in marginals:
        joint = np.multiply.outer(joint, np.asarray(p, dtype=np.float64)).ravel()
    return joint


def rae_meta_strategy(
    solver: Any,
    return_joint: bool = False,
    *,
    gamma: float | Sequence[float] = 0.5,
    tau: float = 1e-3,
    iterations: int = 2000,
) -> list[FloatArray] | tuple[list[FloatArray], FloatArray]:
    """Risk-averse equilibrium of PSRO's empirical game, in OpenSpiel's meta-solver signature.

    Args:
        solver: An OpenSpiel PSRO solver (anything with ``get_meta_game()``).
        return_joint: Also return the joint distribution, as OpenSpiel's solvers do.
        gamma: Risk aversion γ >= 0 (one number or one per player).
        tau: SFP temperature τ > 0.
        iterations: SFP iterations.

    Returns:
        The per-player meta-strategies, or ``(marginals, joint)`` with ``return_joint``.
    """
    meta = solver.get_meta_game()
    tensors = [np.asarray(m, dtype=np.float64) for m in meta] if isinstance(meta, list) else None
    if tensors is None:  # a single matrix: two-player zero-sum
        matrix = np.asarray(meta, dtype=np.float64)
        tensors = [matrix, -matrix]
    sol = solve_rae(tensors, gamma=gamma, tau=tau, iterations=iterations)
    marginals = [np.asarray(p) for p in sol.profile]
    if not return_joint:
        return marginals
    return marginals, joint_from_marginals(marginals)


def make_psro_v2(
    game: Any,
    *,
    meta_strategy_method: str | Callable[..., Any] = "rae",
    gamma: float = 0.5,
    tau: float = 1e-3,
    sims_per_entry: int = 1,
) -> Any:
    """An OpenSpiel ``PSROSolver`` with exact best responses, starting from uniform policies.

    Args:
        game: A pyspiel game (a simultaneous-move game is converted to turn-based, which the
            best-response oracle needs) or a game name for ``pyspiel.load_game``.
        meta_strategy_method: ``"rae"`` for :func:`rae_meta_strategy` with ``gamma``/``tau``,
            any of OpenSpiel's names (``"nash"``, ``"prd"``, ``"uniform"``...), or a callable.
        gamma: γ of the RAE meta-solver.
        tau: τ of the RAE meta-solver.
        sims_per_entry: Episodes per meta-game entry (1 suffices for deterministic games).

    Returns:
        The ``psro_v2.PSROSolver``; call ``.iteration()`` to advance it.
    """
    if isinstance(game, str):
        game = pyspiel.load_game(game)
    if game.get_type().dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS:
        game = pyspiel.convert_to_turn_based(game)
    method = (
        functools.partial(rae_meta_strategy, gamma=gamma, tau=tau)
        if meta_strategy_method == "rae"
        else meta_strategy_method
    )
    uniform = os_policy.TabularPolicy(game)
    oracle = best_response_oracle.BestResponseOracle(game=game, policy=uniform)
    players = game.num_players()
    return psro_v2.PSROSolver(
        game,
        oracle,
        initial_policies=[uniform.__copy__() for _ in range(players)],
        sims_per_entry=sims_per_entry,
        meta_strategy_method=method,
        training_strategy_selector="probabilistic",
        sample_from_marginals=True,
    )


def nash_conv_of(solver: Any) -> float:
    """NashConv of the solver's current meta-strategy, its populations aggregated into one
    behaviour policy per player (OpenSpiel's ``policy_aggregator`` + ``exploitability``)."""
    from open_spiel.python.algorithms import policy_aggregator

    game = solver._game
    policies = solver.get_policies()
    probabilities = solver.get_meta_strategies()
    aggregator = policy_aggregator.PolicyAggregator(game)
    aggregated = aggregator.aggregate(range(game.num_players()), policies, probabilities)
    return float(exploitability.nash_conv(game, aggregated))
