"""Policy-Space Response Oracles (PSRO) with an RAE meta-solver ("PSRO-RAE").

Paper: Slumbers et al., "A Game-Theoretic Framework for Managing Risk in Multi-Agent Systems",
ICML 2023 (arXiv 2205.15434), Algorithm 2; PSRO itself is Lanctot et al. (NeurIPS 2017).

The loop is written out in :func:`psro`:

1. meta-game: ``M_i[k_0, ..., k_{N-1}]`` = player i's expected return when each player k plays
   policy ``k_k`` of its population;
2. meta-strategy: ``σ = meta_solver(M)`` — an RAE of the meta-game (smooth fictitious play with
   the mean–variance best response), a risk-neutral SFP equilibrium ("nash"), uniform, or any
   ``callable(meta_game) -> list of marginals``;
3. best responses: a new policy per player from the oracle against ``σ_{-i}``;
4. expand: a new policy joins its population when it is not already there and improves on
   ``σ_i`` by more than ``gain_tol``; no additions means PSRO has converged;
5. re-evaluate: only the new rows and columns of the meta-game are simulated.

The populations, meta-game and history are checkpointed after every iteration, and a run
resumes from its checkpoint.

Reconstruction: the paper's Algorithm 2 could not be read. We use the RAE meta-solver of spec
rae.md §2.1 (covariance over the opponents' population policies weighted by σ_{-i}) and, by
default, a risk-aware oracle (§2.2) that maximises
``J(θ) = Σ_j σ_j R_j(θ) − γ Σ_j σ_j (R_j(θ) − R̄(θ))²`` over opponent policies j, with
``risk_aware=False`` giving the plain risk-neutral best response.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from varl._checks import FloatArray, check_nonnegative, check_positive
from varl._progress import ProgressBar
from varl.games.markov import tabular
from varl.games.markov.tabular import TabularMarkovGame
from varl.games.normal_form import NormalFormGame, as_game
from varl.games.rae import check_profile, rae_gap, solve_rae

__all__ = [
    "MarkovProblem",
    "MatrixOracle",
    "MatrixProblem",
    "MetaSolver",
    "PSROResult",
    "PSROState",
    "ProgressBar",
    "ValueIterationOracle",
    "as_problem",
    "mean_variance_score",
    "meta_solver_from_name",
    "nash_meta_solver",
    "psro",
    "rae_meta_solver",
    "uniform_meta_solver",
]

MetaSolver = Callable[[list[FloatArray]], list[FloatArray]]
"""``meta_solver(meta_game) -> marginals``: payoff tensors in, one mixture per player out."""


# --- meta-solvers -----------------------------------------------------------------------------


def rae_meta_solver(
    gamma: float | Sequence[float],
    *,
    tau: float = 1e-3,
    iterations: int = 2000,
    symmetric: bool = False,
) -> MetaSolver:
    """Meta-solver returning an RAE of the meta-game (:func:`varl.games.rae.solve_rae`).

    The covariance is over the opponents' population policies weighted by ``σ_{-i}`` (spec
    rae.md §2.1), which is what ``solve_rae`` computes on the meta-game tensors. ``symmetric``
    runs the one-population dynamics (a symmetric RAE, for symmetric PSRO).
    """

    def solve(meta_game: list[FloatArray]) -> list[FloatArray]:
        sol = solve_rae(meta_game, gamma=gamma, tau=tau, iterations=iterations, symmetric=symmetric)
        return list(sol.profile)

    solve.__qualname__ = (
        f"rae_meta_solver(gamma={gamma!r}, tau={tau!r}, iterations={iterations}, "
        f"symmetric={symmetric})"
    )
    return solve


def nash_meta_solver(
    *, tau: float = 1e-3, iterations: int = 2000, symmetric: bool = False
) -> MetaSolver:
    """Risk-neutral meta-solver: the same smooth fictitious play with γ = 0 (so PSRO-Nash and
    PSRO-RAE differ in γ only); for an exact two-player solver pass
    ``lambda m: list(varl.games.nash.solve_nash(m))`` instead."""

    def solve(meta_game: list[FloatArray]) -> list[FloatArray]:
        sol = solve_rae(meta_game, gamma=0.0, tau=tau, iterations=iterations, symmetric=symmetric)
        return list(sol.profile)

    solve.__qualname__ = (
        f"nash_meta_solver(tau={tau!r}, iterations={iterations}, symmetric={symmetric})"
    )
    return solve


def uniform_meta_solver(meta_game: list[FloatArray]) -> list[FloatArray]:
    """Uniform over each population (PSRO with this solver is fictitious self-play's cousin)."""
    return [np.full(n, 1.0 / n) for n in meta_game[0].shape]


def meta_solver_from_name(
    name: str | MetaSolver,
    *,
    gamma: float | Sequence[float],
    tau: float,
    iterations: int,
    symmetric: bool = False,
) -> MetaSolver:
    """Maps ``"rae"``, ``"nash"`` or ``"uniform"`` (or a callable, returned as is) to a solver."""
    if callable(name):
        return name
    if name == "rae":
        return rae_meta_solver(gamma, tau=tau, iterations=iterations, symmetric=symmetric)
    if name == "nash":
        return nash_meta_solver(tau=tau, iterations=iterations, symmetric=symmetric)
    if name == "uniform":
        return uniform_meta_solver
    raise ValueError(f"meta_solver: expected 'rae', 'nash', 'uniform' or a callable, got {name!r}")


# --- the mean–variance objective of an oracle -------------------------------------------------


def mean_variance_score(returns: ArrayLike, weights: ArrayLike, gamma: float) -> FloatArray:
    """``J = Σ_j w_j R_j − γ Σ_j w_j (R_j − R̄)²`` for each candidate (spec rae.md §2.2).

    Args:
        returns: ``[C, J]`` return of each of C candidate policies against J opponent policies.
        weights: ``[J]`` opponent probabilities (σ_{-i}).
        gamma: Risk aversion γ >= 0.

    Returns:
        ``[C]`` scores.
    """
    r = np.atleast_2d(np.asarray(returns, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64)
    mean = r @ w
    var = ((r - mean[:, None]) ** 2) @ w
    return np.asarray(mean - gamma * var, dtype=np.float64)


# --- problems: what PSRO needs to know about a game -------------------------------------------


class MatrixProblem:
    """PSRO on a normal-form game: a policy is a pure action (an int).

    Args:
        game: The game (or its payoff tensors).
        initial: One initial action per player; default a random action per player.
        symmetric: Run symmetric PSRO (one population shared by both players); needs a
            two-player game with ``payoffs[1] == payoffs[0].T``.
    """

    def __init__(
        self,
        game: NormalFormGame | Sequence[ArrayLike],
        *,
        initial: Sequence[int] | None = None,
        symmetric: bool = False,
    ) -> None:
        self.game = as_game(game)
        self.num_players = self.game.num_players
        if symmetric and not (
            self.num_players == 2 and np.array_equal(self.game.payoffs[1], self.game.payoffs[0].T)
        ):
            raise ValueError("symmetric: the game is not symmetric (payoffs[1] != payoffs[0].T)")
        self.symmetric = symmetric
        valid = initial is None or (
            len(initial) == self.num_players
            and all(
                isinstance(a, int | np.integer) and 0 <= a < n
                for a, n in zip(initial, self.game.shape, strict=True)
            )
        )
        if not valid:
            raise ValueError(f"initial: expected one action index per player, got {initial!r}")
        self.initial = None if initial is None else [int(a) for a in initial]

    def initial_populations(self, rng: np.random.Generator) -> list[list[Any]]:
        """One initial policy per player."""
        if self.symmetric:
            first = (
                self.initial[0] if self.initial is not None else rng.integers(self.game.shape[0])
            )
            shared = [int(first)]
            return [shared, shared]
        if self.initial is not None:
            return [[a] for a in self.initial]
        return [[int(rng.integers(n))] for n in self.game.shape]

    def policy_for(self, player: int, policy: Any) -> Any:
        """The policy as ``player`` plays it (actions need no relabelling)."""
        return policy

    def evaluate(
        self, profile: Sequence[Any], sims: int | None, rng: np.random.Generator
    ) -> FloatArray:
        """Exact payoffs ``[N]`` of a pure profile (``sims`` is not needed)."""
        idx = tuple(int(a) for a in profile)
        return np.array([p[idx] for p in self.game.payoffs])

    def same(self, a: Any, b: Any) -> bool:
        """Whether two policies are the same."""
        return int(a) == int(b)

    def to_array(self, policy: Any) -> np.ndarray:
        """Policy -> array for checkpoints."""
        return np.asarray(int(policy))

    def from_array(self, arr: np.ndarray) -> Any:
        """Array from a checkpoint -> policy."""
        return int(arr)

    def fingerprint(self) -> str:
        """A hash of the game."""
        digest = hashlib.sha256()
        for p in self.game.payoffs:
            digest.update(str(p.shape).encode())
            digest.update(np.ascontiguousarray(p).tobytes())
        return digest.hexdigest()[:16]

    def mixed_strategy(
        self, population: Sequence[Any], sigma: FloatArray, player: int
    ) -> FloatArray:
        """The action distribution ``[n_i]`` that a meta-strategy over pure actions induces."""
        out = np.zeros(self.game.shape[player])
        np.add.at(out, [int(a) for a in population], sigma)
        return out


class MarkovProblem:
    """PSRO on a two-player :class:`TabularMarkovGame`: a policy is ``[H, S]`` (deterministic)
    or ``[H, S, A]`` (stochastic).

    Args:
        game: The tabular model.
        symmetric: Run symmetric PSRO: one population, written from player 0's side and
            played by player 1 through the game's swap maps (needs a symmetric game).
        initial: Initial populations, a list of policies per player (one list when symmetric);
            default one random
            stochastic policy per player (drawn from the PSRO seed). A deterministic opponent
            is perfectly predictable, so random *stochastic* policies are what leave a best
            responder uncertain.
    """

    num_players = 2

    def __init__(
        self,
        game: TabularMarkovGame,
        *,
        initial: Sequence[Sequence[Any]] | None = None,
        symmetric: bool = False,
    ) -> None:
        self.game = game
        if symmetric and not tabular.is_symmetric(game):
            raise ValueError(f"symmetric: {game.name} is not symmetric under its swap maps")
        self.symmetric = symmetric
        if initial is not None:
            n_lists = 1 if symmetric else 2
            if len(initial) != n_lists or any(len(pop) == 0 for pop in initial):
                raise ValueError(f"initial: expected {n_lists} non-empty list(s) of policies")
            for i, pop in enumerate(initial):
                for k, pol in enumerate(pop):
                    tabular.policy_probs(game, pol, f"initial[{i}][{k}]")
        self.initial = None if initial is None else [list(pop) for pop in initial]

    def initial_populations(self, rng: np.random.Generator) -> list[list[Any]]:
        """The given initial populations, or one random policy per player."""
        if self.symmetric:
            shared = (
                list(self.initial[0])
                if self.initial is not None
                else [tabular.random_policy(self.game, rng, stochastic=True)]
            )
            return [shared, shared]
        if self.initial is not None:
            return [list(pop) for pop in self.initial]
        return [[tabular.random_policy(self.game, rng, stochastic=True)] for _ in range(2)]

    def policy_for(self, player: int, policy: Any) -> Any:
        """The policy as ``player`` plays it: player 1 of a symmetric run sees swapped states."""
        if self.symmetric and player == 1:
            return tabular.swap_policy(self.game, policy)
        return policy

    def evaluate(
        self, profile: Sequence[Any], sims: int | None, rng: np.random.Generator
    ) -> FloatArray:
        """Expected returns ``[2]``: exact when ``sims`` is None, else the mean of ``sims``
        sampled episodes."""
        p0, p1 = profile[0], self.policy_for(1, profile[1])
        if sims is None:
            return tabular.evaluate(self.game, p0, p1)
        returns, _ = tabular.sample_episodes(self.game, p0, p1, sims, rng)
        return np.asarray(returns.mean(axis=0), dtype=np.float64)

    def same(self, a: Any, b: Any) -> bool:
        """Whether two policies act identically everywhere."""
        pa, pb = np.asarray(a), np.asarray(b)
        if pa.shape == pb.shape and pa.dtype.kind == pb.dtype.kind:
            return bool(np.array_equal(pa, pb))
        return bool(
            np.allclose(tabular.policy_probs(self.game, a), tabular.policy_probs(self.game, b))
        )

    def to_array(self, policy: Any) -> np.ndarray:
        """Policy -> array for checkpoints."""
        arr = np.asarray(policy)
        return (
            arr.astype(np.int8) if arr.dtype.kind in "iu" and self.game.num_actions < 128 else arr
        )

    def from_array(self, arr: np.ndarray) -> Any:
        """Array from a checkpoint -> policy."""
        return arr.astype(np.int64) if arr.dtype.kind in "iu" else arr.astype(np.float64)

    def fingerprint(self) -> str:
        """A hash of the model."""
        return self.game.fingerprint()


Problem = MatrixProblem | MarkovProblem


def as_problem(game_or_env: Any) -> Problem:
    """Wraps a game for PSRO: a :class:`NormalFormGame` (or payoff tensors) becomes a
    :class:`MatrixProblem`, a :class:`TabularMarkovGame` a :class:`MarkovProblem`."""
    if isinstance(game_or_env, MatrixProblem | MarkovProblem):
        return game_or_env
    if isinstance(game_or_env, TabularMarkovGame):
        return MarkovProblem(game_or_env)
    if hasattr(game_or_env, "game") and isinstance(game_or_env.game, TabularMarkovGame):
        return MarkovProblem(game_or_env.game)  # an environment built on a tabular model
    return MatrixProblem(game_or_env)


# --- oracles ------------------------------------------------------------------------------------


def _opponents(
    populations: list[list[Any]], sigma: list[FloatArray], player: int
) -> tuple[list[tuple[Any, ...]], FloatArray]:
    """Joint opponent profiles with positive probability (``None`` in the player's slot)."""
    slots = [
        [(None, 1.0)]
        if k == player
        else [(pol, float(s)) for pol, s in zip(pop, sigma[k], strict=True) if s > 0]
        for k, pop in enumerate(populations)
    ]
    profiles, weights = [], []
    for combo in itertools.product(*slots):
        profiles.append(tuple(c[0] for c in combo))
        weights.append(float(np.prod([c[1] for c in combo])))
    w = np.asarray(weights)
    return profiles, w / w.sum()


@dataclass(frozen=True, kw_only=True)
class MatrixOracle:
    """Exact best response in a normal-form game: the pure action maximising
    ``J = Σ_j σ_j R_j − γ Σ_j σ_j (R_j − R̄)²`` over the opponents' population policies j
    (``risk_aware=False`` uses γ = 0: the risk-neutral best response)."""

    risk_aware: bool = True
    """Maximise the mean–variance objective (True) or the expected return (False)."""

    def __call__(
        self,
        problem: Problem,
        player: int,
        populations: list[list[Any]],
        sigma: list[FloatArray],
        gamma: float,
        rng: np.random.Generator,
    ) -> Any:
        """Returns the best pure action of ``player`` against ``σ_{-i}``."""
        if not isinstance(problem, MatrixProblem):
            raise TypeError("MatrixOracle: expected a normal-form game")
        profiles, w = _opponents(populations, sigma, player)
        payoff = problem.game.payoffs[player]
        returns = np.empty((problem.game.shape[player], len(profiles)))
        for j, prof in enumerate(profiles):
            idx = tuple(slice(None) if k == player else int(a) for k, a in enumerate(prof))
            returns[:, j] = payoff[idx]
        score = mean_variance_score(returns, w, gamma if self.risk_aware else 0.0)
        return int(np.argmax(score))


@dataclass(frozen=True, kw_only=True)
class ValueIterationOracle:
    """Exact value-iteration best responses for two-player tabular Markov games.

    A policy that is Markov in the state cannot condition on which opponent policy was drawn,
    so the best response to a meta-strategy is not a single MDP solution. This oracle computes
    exact best responses (:func:`varl.games.markov.tabular.best_response`) to a few Markov
    opponents and keeps the best of them under the exact objective:

    * the σ-weighted state-wise mixture of the opponent population, and each opponent policy
      in the support of σ alone;
    * the mixture whose weight on opponent j in state s at step t is
      ``σ_j · P(s_t = s | uniformly random own play, opponent j)`` — the posterior over
      opponents that watching the opponent's moves gives, everywhere reachable;
    * for ``rounds`` rounds, the same posterior along the current best response's own play, with
      ``c_j = σ_j`` or, when risk-aware, ``c_j = σ_j (1 − 2γ (R_j − R̄))`` (the gradient of J,
      spec rae.md §2.2) in place of σ_j.

    Every candidate is evaluated exactly against every opponent policy and the one with the
    best ``J = Σ_j σ_j R_j − γ Σ_j σ_j (R_j − R̄)²`` is returned (γ = 0 when not risk-aware).

    Reconstruction/our design: the paper's oracles are deep RL; this is an exact small-scale
    substitute.
    """

    risk_aware: bool = True
    """Score candidates by the mean–variance objective (True) or the expected return."""
    rounds: int = 3
    """Posterior-weighted refinement rounds (0: mixtures and single opponents only)."""

    def __call__(
        self,
        problem: Problem,
        player: int,
        populations: list[list[Any]],
        sigma: list[FloatArray],
        gamma: float,
        rng: np.random.Generator,
    ) -> Any:
        """Returns a deterministic policy ``[H, S]`` for ``player``."""
        if not isinstance(problem, MarkovProblem):
            raise TypeError("ValueIterationOracle: expected a tabular Markov game")
        game = problem.game
        g = gamma if self.risk_aware else 0.0
        other = 1 - player
        support = [k for k, s in enumerate(sigma[other]) if s > 0]
        opp_policies = [problem.policy_for(other, populations[other][k]) for k in support]
        opp = np.stack([tabular.policy_probs(game, pol) for pol in opp_policies])  # [J, H, S, A]
        w = np.asarray([sigma[other][k] for k in support])
        w = w / w.sum()

        def pair(own: Any, opp_pol: Any) -> tuple[Any, Any]:
            return (own, opp_pol) if player == 0 else (opp_pol, own)

        def br_to(weights: FloatArray, along: Any | None = None) -> Any:
            prior = np.einsum("j,jhsa->hsa", weights / weights.sum(), opp)
            if along is None:
                return tabular.best_response(game, player, prior)[0]
            reach = np.stack(
                [tabular.state_distribution(game, *pair(along, pol))[:-1] for pol in opp_policies]
            )  # [J, H, S]
            post = weights[:, None, None] * reach
            total = post.sum(axis=0)
            mixed = np.einsum("jhs,jhsa->hsa", post, opp)
            seen = total > 0.0
            mixture = prior.copy()
            mixture[seen] = mixed[seen] / total[seen][:, None]
            return tabular.best_response(game, player, mixture)[0]

        def returns_of(pol: Any) -> FloatArray:
            return np.array(
                [tabular.evaluate(game, *pair(pol, opp_pol))[player] for opp_pol in opp_policies]
            )

        candidates = [br_to(w)] + [br_to(np.eye(len(w))[j]) for j in range(len(w))]
        if self.rounds > 0:  # posterior along exploratory (uniform) own play: off-path beliefs
            explore = np.full((game.horizon, game.num_states, game.num_actions), 1.0)
            candidates.append(br_to(w, along=explore / game.num_actions))
        returns = [returns_of(c) for c in candidates]
        for _ in range(self.rounds):
            best = int(np.argmax(mean_variance_score(np.stack(returns), w, g)))
            r = returns[best]
            c = np.clip(w * (1.0 - 2.0 * g * (r - r @ w)), 0.0, None)
            if c.sum() <= 0.0:
                c = w
            cand = br_to(c, along=candidates[best])
            if any(np.array_equal(cand, old) for old in candidates):
                break
            candidates.append(cand)
            returns.append(returns_of(cand))
        scores = mean_variance_score(np.stack(returns), w, g)
        return candidates[int(np.argmax(scores))]


def default_oracle(problem: Problem) -> Callable[..., Any]:
    """The exact oracle for the kind of game: :class:`MatrixOracle` or
    :class:`ValueIterationOracle` (both risk-aware)."""
    return MatrixOracle() if isinstance(problem, MatrixProblem) else ValueIterationOracle()


# --- state, checkpoints, result -----------------------------------------------------------------


_META_KEY = "__meta__"  # the JSON metadata stored inside psro_state.npz


@dataclass(kw_only=True)
class PSROState:
    """Everything a PSRO run needs to continue: populations, meta-game, history, RNG state.

    Attributes:
        populations: Policies of each player, in the order they joined.
        meta_game: Payoff tensors ``[|Π_0|, ..., |Π_{N-1}|]``, one per player.
        iteration: Completed PSRO iterations.
        history: One record per iteration (meta-strategy, gains, additions, timings).
        rng_state: State of the run's numpy bit generator.
        settings: The run's settings (a checkpoint is resumed only with the same settings).
        converged: Whether an iteration added no policy.
    """

    populations: list[list[Any]]
    meta_game: list[FloatArray]
    iteration: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    rng_state: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    converged: bool = False

    def state_dict(self, problem: Problem) -> dict[str, Any]:
        """Arrays (``"arrays"``) and JSON-serialisable metadata (``"meta"``) of the state."""
        arrays = {f"meta_game_{i}": m for i, m in enumerate(self.meta_game)}
        for i, pop in enumerate(self.populations):
            for k, pol in enumerate(pop):
                arrays[f"policy_{i}_{k}"] = problem.to_array(pol)
        meta = {
            "iteration": self.iteration,
            "history": self.history,
            "rng_state": self.rng_state,
            "settings": self.settings,
            "converged": self.converged,
            "population_sizes": [len(p) for p in self.populations],
        }
        return {"arrays": arrays, "meta": meta}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], problem: Problem) -> PSROState:
        """Rebuilds a state from :meth:`state_dict` output."""
        arrays, meta = state["arrays"], state["meta"]
        sizes = meta["population_sizes"]
        return cls(
            populations=[
                [problem.from_array(arrays[f"policy_{i}_{k}"]) for k in range(n)]
                for i, n in enumerate(sizes)
            ],
            meta_game=[
                np.asarray(arrays[f"meta_game_{i}"], dtype=np.float64) for i in range(len(sizes))
            ],
            iteration=int(meta["iteration"]),
            history=list(meta["history"]),
            rng_state=dict(meta["rng_state"]),
            settings=dict(meta["settings"]),
            converged=bool(meta["converged"]),
        )

    def load_state_dict(self, state: dict[str, Any], problem: Problem) -> None:
        """Replaces this state's contents with a :meth:`state_dict` (resuming in place)."""
        loaded = PSROState.from_state_dict(state, problem)
        for name in ("populations", "meta_game", "iteration", "history", "rng_state"):
            setattr(self, name, getattr(loaded, name))
        self.settings, self.converged = loaded.settings, loaded.converged

    def save(self, directory: str | Path, problem: Problem) -> None:
        """Writes ``psro_state.npz`` atomically: arrays and metadata in one file, replaced in
        one step, so a run killed at any moment leaves the previous or the new state whole.
        ``psro_state.json`` is a readable copy of the metadata; loading does not use it."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = self.state_dict(problem)
        meta = json.dumps(state["meta"])
        tmp = out / "psro_state.tmp.npz"
        arrays: dict[str, Any] = {**state["arrays"], _META_KEY: np.array(meta)}
        np.savez_compressed(tmp, **arrays)
        tmp.replace(out / "psro_state.npz")
        (out / "psro_state.json").write_text(meta, encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, problem: Problem) -> PSROState | None:
        """Reads a saved state, or returns None if there is none."""
        path = Path(directory) / "psro_state.npz"
        if not path.is_file():
            return None
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files if k != _META_KEY}
            meta = json.loads(str(data[_META_KEY]))
        return cls.from_state_dict({"arrays": arrays, "meta": meta}, problem)


@dataclass(frozen=True, kw_only=True)
class PSROResult:
    """The outcome of :func:`psro`.

    Attributes:
        populations: Policies of each player.
        meta_game: Final meta-game tensors.
        meta_strategy: Final meta-strategy, one mixture over each population.
        history: Per-iteration records: ``meta_strategy``, ``population_sizes``, ``gains``
            (improvement of each new policy over σ_i under the oracle's objective), ``added``,
            ``meta_gap`` (RAE gap of σ on the meta-game with the run's γ), ``seconds``.
        iterations: PSRO iterations run in total.
        converged: Whether the last iteration added no policy.
    """

    populations: list[list[Any]]
    meta_game: list[FloatArray]
    meta_strategy: list[FloatArray]
    history: list[dict[str, Any]]
    iterations: int
    converged: bool


def _expand(
    problem: Problem,
    state: PSROState,
    sims: int | None,
    rng: np.random.Generator,
    symmetric: bool = False,
) -> None:
    """Fills the meta-game entries of every joint profile not yet evaluated."""
    shape = tuple(len(p) for p in state.populations)
    old = state.meta_game
    new = [np.full(shape, np.nan) for _ in range(problem.num_players)]
    if old:
        block = tuple(slice(0, n) for n in old[0].shape)
        for i in range(problem.num_players):
            new[i][block] = old[i]
    for idx in itertools.product(*(range(n) for n in shape)):
        if np.isnan(new[0][idx]):
            values = problem.evaluate(
                [state.populations[k][j] for k, j in enumerate(idx)], sims, rng
            )
            for i in range(problem.num_players):
                new[i][idx] = values[i]
    if symmetric:  # exactly symmetric, whatever the rounding of the two evaluations
        new[1] = new[0].T.copy()
    state.meta_game = new


def psro(
    game_or_env: Any,
    *,
    meta_solver: str | MetaSolver = "rae",
    oracle: Callable[..., Any] | None = None,
    iterations: int = 10,
    sims_per_entry: int | None = None,
    gamma: float | None = None,
    tau: float = 1e-3,
    sfp_iterations: int = 2000,
    gain_tol: float = 1e-2,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: ProgressBar | None = None,
) -> PSROResult:
    """Runs PSRO with a chosen meta-solver and oracle (see the module docstring for the loop).

    Args:
        game_or_env: A :class:`NormalFormGame` (or payoff tensors), a
            :class:`~varl.games.markov.tabular.TabularMarkovGame` or an environment built on
            one, or a prepared :class:`MatrixProblem` / :class:`MarkovProblem` (to set the
            initial populations).
        meta_solver: ``"rae"``, ``"nash"`` (risk-neutral SFP), ``"uniform"``, or a callable
            ``meta_game -> marginals``.
        oracle: ``oracle(problem, player, populations, sigma, gamma, rng) -> policy``; default
            the exact risk-aware oracle of the game's kind (:func:`default_oracle`).
        iterations: Total PSRO iterations (a resumed run continues up to this number).
        sims_per_entry: Episodes per meta-game entry; None evaluates exactly where possible
            (normal-form games are always exact).
        gamma: Risk aversion γ >= 0 of every player: used by the RAE meta-solver, by a
            risk-aware oracle and in the gains; 0 makes everything risk neutral. None means 0.5
            for the "rae" meta-solver and 0 for "nash", "uniform" and callables, so that a Nash
            baseline is risk neutral throughout; a γ > 0 with "nash" or "uniform" is an error.
        tau: SFP temperature of the "rae" and "nash" meta-solvers, relative to the meta-game's
            payoff scale (see :func:`varl.games.rae.solve_rae`).
        sfp_iterations: SFP iterations of those meta-solvers.
        gain_tol: A best response joins its population only if it improves on σ_i by more
            (in payoff units; keep it above the SFP meta-solver's own slack, ~τ·scale·log|Π|).
        seed: Seed of the run (initial policies, sampling, stochastic oracles).
        checkpoint: Folder to save the state to after every iteration (None: no checkpoints).
        resume: Continue from the state saved in ``checkpoint`` when there is one.
        progress: Optional bar advanced once per iteration.

    Returns:
        A :class:`PSROResult`.

    Raises:
        ValueError: On bad settings, or when resuming a checkpoint made with other settings.
    """
    problem = as_problem(game_or_env)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations: expected an int >= 0, got {iterations!r}")
    if sims_per_entry is not None and (not isinstance(sims_per_entry, int) or sims_per_entry < 1):
        raise ValueError(f"sims_per_entry: expected None or an int >= 1, got {sims_per_entry!r}")
    if gamma is None:
        gamma = 0.5 if meta_solver == "rae" else 0.0
    gam = check_nonnegative(gamma, "gamma")
    if gam > 0 and meta_solver in ("nash", "uniform"):
        raise ValueError(
            f"gamma: the {meta_solver!r} meta-solver is risk neutral, so its oracle and gains "
            f"use gamma = 0; got gamma={gamma!r} (leave it unset or pass 0)"
        )
    check_positive(tau, "tau")
    check_nonnegative(gain_tol, "gain_tol")
    if resume and checkpoint is None:
        raise ValueError("resume: needs a checkpoint folder")
    symmetric = bool(getattr(problem, "symmetric", False))
    solver = meta_solver_from_name(
        meta_solver, gamma=gam, tau=tau, iterations=sfp_iterations, symmetric=symmetric
    )
    the_oracle = oracle if oracle is not None else default_oracle(problem)
    settings = {
        "problem": problem.fingerprint(),
        "meta_solver": getattr(solver, "__qualname__", repr(solver)),
        "oracle": repr(the_oracle),
        "sims_per_entry": sims_per_entry,
        "gamma": gam,
        "tau": tau,
        "gain_tol": gain_tol,
        "seed": seed,
    }
    settings["symmetric"] = symmetric
    rng = np.random.default_rng(seed)
    state = PSROState.load(checkpoint, problem) if (resume and checkpoint is not None) else None
    if state is not None:
        if state.settings != settings:
            diff = sorted(k for k in settings if state.settings.get(k) != settings[k])
            raise ValueError(
                f"resume: the checkpoint in {checkpoint} was made with other settings ({diff})"
            )
        rng.bit_generator.state = state.rng_state
        if symmetric:
            state.populations[1] = state.populations[0]  # one shared list again
    else:
        state = PSROState(
            populations=problem.initial_populations(rng), meta_game=[], settings=settings
        )
        _expand(problem, state, sims_per_entry, rng, symmetric)
    while state.iteration < iterations and not state.converged:
        start = time.perf_counter()
        sigma = _meta_strategy(solver, state.meta_game, symmetric)
        meta_gap = rae_gap(state.meta_game, sigma, gamma=gam)
        sizes = [len(p) for p in state.populations]
        # Symmetric PSRO: player 0's response joins the population both players share.
        responders = [0] if symmetric else list(range(problem.num_players))
        responses = {
            i: the_oracle(problem, i, state.populations, sigma, gam, rng) for i in responders
        }
        for i, pol in responses.items():  # all responses are to the populations σ was over
            if not any(problem.same(pol, old) for old in state.populations[i]):
                state.populations[i].append(pol)
        _expand(problem, state, sims_per_entry, rng, symmetric)
        gains = [_gain(state, sigma, sizes, i, gam) for i in range(problem.num_players)]
        added = [
            len(state.populations[i]) > sizes[i] and gains[i] > gain_tol
            for i in range(problem.num_players)
        ]
        if [len(p) for p in state.populations] != [
            n + a for n, a in zip(sizes, added, strict=True)
        ]:
            _drop_unhelpful(state, sizes, added, symmetric)
        state.iteration += 1
        state.converged = not any(added)
        state.history.append(
            {
                "iteration": state.iteration,
                "meta_strategy": [s.tolist() for s in sigma],
                "population_sizes": sizes,
                "gains": gains,
                "added": added,
                "meta_gap": meta_gap,
                "seconds": time.perf_counter() - start,
            }
        )
        state.rng_state = dict(rng.bit_generator.state)
        if checkpoint is not None:
            state.save(checkpoint, problem)
        if progress is not None:
            progress.update(1)
    final = _meta_strategy(solver, state.meta_game, symmetric)
    return PSROResult(
        populations=state.populations,
        meta_game=state.meta_game,
        meta_strategy=final,
        history=state.history,
        iterations=state.iteration,
        converged=state.converged,
    )


def _gain(
    state: PSROState, sigma: list[FloatArray], sizes: list[int], player: int, gamma: float
) -> float:
    """Improvement of player i's new policy over σ_i on the meta-game: ``J(new) − J(σ_i)``.

    Both sides are scored by :func:`mean_variance_score` against the opponents' previous
    populations weighted by σ_{-i} (γ = 0: expected returns), so with an RAE meta-solver this
    is player i's share of the RAE gap restricted to the oracle's response. 0 when nothing new.
    """
    n_now = len(state.populations[player])
    if n_now == sizes[player]:
        return 0.0
    grid = tuple(slice(None) if k == player else slice(0, n) for k, n in enumerate(sizes))
    returns = np.moveaxis(state.meta_game[player][grid], player, 0).reshape(n_now, -1)
    w = np.ones(1)
    for k, s in enumerate(sigma):
        if k != player:
            w = np.multiply.outer(w, s).ravel()
    new_score = mean_variance_score(returns[-1:], w, gamma)[0]
    mixed = sigma[player] @ returns[: sizes[player]]
    return float(new_score - mean_variance_score(mixed[None], w, gamma)[0])


def _meta_strategy(
    solver: MetaSolver, meta_game: list[FloatArray], symmetric: bool
) -> list[FloatArray]:
    """Runs the meta-solver and checks its output; a symmetric run gets one shared mixture."""
    sigma = [np.asarray(s, dtype=np.float64) for s in solver(meta_game)]
    sigma = list(check_profile(as_game(meta_game), sigma))
    if symmetric:
        shared = (sigma[0] + sigma[1]) / 2.0
        sigma = [shared, shared]
    return sigma


def _drop_unhelpful(state: PSROState, sizes: list[int], added: list[bool], symmetric: bool) -> None:
    """Removes new policies that did not improve on σ_i (and their meta-game rows)."""
    keep = [
        list(range(len(pop))) if added[i] else list(range(sizes[i]))
        for i, pop in enumerate(state.populations)
    ]
    for i, idx in enumerate(keep):
        state.populations[i] = [state.populations[i][k] for k in idx]
    if symmetric:
        state.populations[1] = state.populations[0]
    grid = np.ix_(*keep)
    state.meta_game = [m[grid] for m in state.meta_game]
