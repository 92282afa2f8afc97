"""Game theory with risk: normal-form games, risk-averse equilibrium (RAE), Nash baselines, PSRO.

Paper: Slumbers et al., "A Game-Theoretic Framework for Managing Risk in Multi-Agent Systems",
ICML 2023 (arXiv 2205.15434). Reconstruction: the paper's body could not be read, so RAE here
is the mean–variance ("Markowitz") reading of its abstract — each player maximises
``E_i − γ·Var_i`` where ``Var_i`` is the payoff variance caused by the *other* players'
randomisation (see ``varl.games.rae``).

Modules:
    normal_form   NormalFormGame: payoff tensors, JSON and Gambit .nfg files
    rae           mean–variance moments, RAE best response, RAE gap, smooth fictitious play
    nash          Nash baselines (nashpy for two players, risk-neutral SFP for N), NashConv
    psro          PSRO with RAE / Nash / uniform meta-solvers, exact oracles, checkpoints
    markov        tabular two-player Markov games: stag hunt gridworld, two-way road toy
    openspiel     rae_meta_strategy for OpenSpiel's psro_v2 (imports pyspiel; not loaded here)
    pg_oracle     policy-gradient PSRO oracle in torch (imports torch; not loaded here)

Only numpy and scipy are imported by this package (nashpy only when a nashpy method runs).
The PSRO loop is ``varl.games.psro.psro`` (not re-exported, so that ``varl.games.psro`` stays
the module).

Example:
    >>> from varl.games import NormalFormGame, solve_rae
    >>> game = NormalFormGame.from_bimatrix([[1, 1], [2, -10]], [[1, 0], [0, 1]])
    >>> sol = solve_rae(game, gamma=0.5)
    >>> [round(float(p), 2) for p in sol.profile[0]]
    [0.74, 0.26]
"""

from varl.games.nash import exploitability, nash_conv, nash_equilibria, solve_nash
from varl.games.normal_form import NormalFormGame, as_game, parse_nfg
from varl.games.psro import (
    MarkovProblem,
    MatrixOracle,
    MatrixProblem,
    PSROResult,
    ValueIterationOracle,
    rae_meta_solver,
)
from varl.games.rae import (
    RAESolution,
    expected_payoff,
    mean_variance_best_response,
    mean_variance_utility,
    payoff_covariance,
    payoff_variance,
    rae_best_response,
    rae_gap,
    solve_rae,
)

__all__ = [
    "MarkovProblem",
    "MatrixOracle",
    "MatrixProblem",
    "NormalFormGame",
    "PSROResult",
    "RAESolution",
    "ValueIterationOracle",
    "as_game",
    "expected_payoff",
    "exploitability",
    "mean_variance_best_response",
    "mean_variance_utility",
    "nash_conv",
    "nash_equilibria",
    "parse_nfg",
    "payoff_covariance",
    "payoff_variance",
    "rae_best_response",
    "rae_gap",
    "rae_meta_solver",
    "solve_nash",
    "solve_rae",
]
