"""What ``varl game solve`` and ``varl game psro`` do, kept out of ``varl/cli.py``.

Each command returns the text to print (a table, or JSON with ``as_json``) and raises
``ValueError`` on bad input, which the console script turns into a usage error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from varl._checks import FloatArray
from varl.games.markov import make_stag_hunt, make_two_way, tabular
from varl.games.nash import NASH_METHODS, nash_conv, solve_nash
from varl.games.normal_form import NormalFormGame
from varl.games.psro import (
    MarkovProblem,
    MatrixOracle,
    MatrixProblem,
    ProgressBar,
    PSROResult,
    ValueIterationOracle,
    psro,
)
from varl.games.rae import expected_payoff, payoff_variance, rae_gap, solve_rae

__all__ = ["ENVS", "psro_command", "solve_command"]

ENVS = ("stag_hunt", "two_way", "matrix:FILE")
"""Choices of ``varl game psro --env``."""


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _strategy_text(names: tuple[str, ...], p: FloatArray) -> str:
    shown = [f"{n}:{v:.3f}" for n, v in zip(names, p, strict=True) if v >= 5e-4]
    return " ".join(shown) if shown else "-"


def solve_command(
    path: str | Path,
    *,
    concept: str = "rae",
    gamma: float = 0.5,
    tau: float = 1e-3,
    iterations: int = 2000,
    method: str = "lemke_howson",
    as_json: bool = False,
) -> str:
    """Solves a ``.json`` / ``.nfg`` game for an RAE or a Nash equilibrium.

    Args:
        path: Game file.
        concept: ``"rae"`` (smooth fictitious play, :func:`~varl.games.rae.solve_rae`) or
            ``"nash"`` (:func:`~varl.games.nash.solve_nash` with ``method``).
        gamma: Risk aversion γ of the RAE, and the γ at which variances are reported.
        tau: SFP temperature.
        iterations: SFP iterations.
        method: Nash method (``lemke_howson``, ``support_enumeration``,
            ``vertex_enumeration``, ``sfp``).
        as_json: Return JSON instead of a table.

    Returns:
        The text to print: each player's strategy, mean, variance and the gap (the RAE gap for
        ``rae``, NashConv for ``nash``).
    """
    if concept not in ("rae", "nash"):
        raise ValueError(f"concept: expected 'rae' or 'nash', got {concept!r}")
    if method not in NASH_METHODS:
        raise ValueError(f"method: expected one of {NASH_METHODS}, got {method!r}")
    game = NormalFormGame.load(path)
    if concept == "rae":
        sol = solve_rae(game, gamma=gamma, tau=tau, iterations=iterations)
        profile, gap = sol.profile, sol.gap
        gap_name = "RAE gap"
    else:
        profile = solve_nash(game, method=method, tau=tau, iterations=iterations)
        gap, gap_name = nash_conv(game, profile), "NashConv"
    players = []
    for i, name in enumerate(game.players):
        players.append(
            {
                "player": name,
                "strategy": dict(zip(game.actions[i], profile[i].tolist(), strict=True)),
                "mean": expected_payoff(game, profile, i),
                "variance": payoff_variance(game, profile, i),
            }
        )
    out = {
        "game": str(path),
        "concept": concept,
        "gamma": gamma if concept == "rae" else 0.0,
        "gap_name": gap_name,
        "gap": gap,
        "rae_gap_at_gamma": rae_gap(game, profile, gamma=gamma),
        "players": players,
    }
    if as_json:
        return json.dumps(out, indent=2)
    rows = [["player", "strategy", "mean", "variance"]]
    for i, p in enumerate(players):
        rows.append(
            [
                str(p["player"]),
                _strategy_text(game.actions[i], profile[i]),
                f"{p['mean']:.4f}",
                f"{p['variance']:.4f}",
            ]
        )
    title = f"{concept.upper()} of {game.title or Path(path).name}"
    if concept == "rae":
        title += f" (gamma={gamma:g}, tau={tau:g})"
    return f"{title}\n{_table(rows)}\n{gap_name}: {gap:.3g}"


def _problem(env: str, symmetric: bool) -> MatrixProblem | MarkovProblem:
    if env.startswith("matrix:"):
        return MatrixProblem(NormalFormGame.load(env.split(":", 1)[1]), symmetric=symmetric)
    if env == "stag_hunt":
        return MarkovProblem(make_stag_hunt(), symmetric=symmetric)
    if env == "two_way":
        return MarkovProblem(make_two_way(), symmetric=symmetric)
    raise ValueError(f"env: expected one of {ENVS}, got {env!r}")


def _event_rates(problem: MarkovProblem, result: PSROResult) -> dict[str, float]:
    game = problem.game
    pops, sigma = result.populations, result.meta_strategy
    rates = dict.fromkeys(game.events, 0.0)
    for j, a in enumerate(pops[0]):
        for k, b in enumerate(pops[1]):
            w = float(sigma[0][j] * sigma[1][k])
            if w < 1e-12:
                continue
            final = tabular.state_distribution(game, a, problem.policy_for(1, b))[-1]
            for name, flag in game.events.items():
                rates[name] += w * float(final @ flag)
    return rates


def psro_command(
    env: str,
    *,
    meta_solver: str = "rae",
    gamma: float | None = None,
    iterations: int = 10,
    seed: int = 0,
    sims_per_entry: int | None = None,
    symmetric: bool = False,
    risk_neutral_oracle: bool = False,
    oracle: str = "exact",
    checkpoint: str | None = None,
    resume: bool = False,
    as_json: bool = False,
    progress: ProgressBar | None = None,
) -> str:
    """Runs PSRO on ``stag_hunt``, ``two_way`` or ``matrix:FILE`` and summarises the result.

    Returns:
        The text to print: per player the population size, the meta-strategy, the expected
        return and the opponent-induced variance under it; for the Markov games also the
        probability of each recorded event (e.g. crashes) under the meta-strategy.
    """
    if gamma is None:  # the RAE meta-solver's default; the others are risk neutral
        gamma = 0.5 if meta_solver == "rae" else 0.0
    if meta_solver not in ("rae", "nash", "uniform"):
        raise ValueError(f"meta_solver: expected 'rae', 'nash' or 'uniform', got {meta_solver!r}")
    if oracle not in ("exact", "pg"):
        raise ValueError(f"oracle: expected 'exact' or 'pg', got {oracle!r}")
    problem = _problem(env, symmetric)
    risk_aware = not risk_neutral_oracle
    chosen: Any
    if isinstance(problem, MatrixProblem):
        if oracle == "pg":
            raise ValueError("oracle: 'pg' needs a Markov game (stag_hunt or two_way)")
        chosen = MatrixOracle(risk_aware=risk_aware)
    elif oracle == "pg":
        from varl.games.pg_oracle import PolicyGradientOracle  # imports torch

        chosen = PolicyGradientOracle(risk_aware=risk_aware)
    else:
        chosen = ValueIterationOracle(risk_aware=risk_aware)
    result = psro(
        problem,
        meta_solver=meta_solver,
        oracle=chosen,
        iterations=iterations,
        sims_per_entry=sims_per_entry,
        gamma=gamma,
        seed=seed,
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
    )
    sigma = result.meta_strategy
    players: list[dict[str, Any]] = []
    for i in range(2 if isinstance(problem, MarkovProblem) else problem.num_players):
        players.append(
            {
                "player": i,
                "population": len(result.populations[i]),
                "meta_strategy": sigma[i].tolist(),
                "mean": expected_payoff(result.meta_game, sigma, i),
                "variance": payoff_variance(result.meta_game, sigma, i),
            }
        )
    out: dict[str, Any] = {
        "env": env,
        "meta_solver": meta_solver,
        "gamma": gamma,
        "iterations": result.iterations,
        "converged": result.converged,
        "meta_gap": rae_gap(result.meta_game, sigma, gamma=gamma if meta_solver == "rae" else 0),
        "players": players,
    }
    if isinstance(problem, MarkovProblem):
        out["events"] = _event_rates(problem, result)
    else:
        actions = [
            problem.mixed_strategy(result.populations[i], sigma[i], i)
            for i in range(problem.num_players)
        ]
        out["action_strategy"] = [a.tolist() for a in actions]
    if as_json:
        return json.dumps(out, indent=2)
    rows = [["player", "policies", "meta-strategy", "mean", "variance"]]
    for p in players:
        names = tuple(f"#{k}" for k in range(p["population"]))
        rows.append(
            [
                str(p["player"]),
                str(p["population"]),
                _strategy_text(names, np.asarray(p["meta_strategy"])),
                f"{p['mean']:.4f}",
                f"{p['variance']:.4f}",
            ]
        )
    lines = [
        f"PSRO-{meta_solver} on {env} (gamma={gamma:g}, seed={seed}): {result.iterations} "
        f"iterations, {'converged' if result.converged else 'not converged'}",
        _table(rows),
    ]
    if "events" in out:
        lines.append(
            "events under the meta-strategy: "
            + ", ".join(f"P({k})={v:.4f}" for k, v in out["events"].items())
        )
    return "\n".join(lines)
