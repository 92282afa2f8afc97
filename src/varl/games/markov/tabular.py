"""Two-player finite-horizon Markov games with an explicit tabular model.

A :class:`TabularMarkovGame` lists, for every state ``s`` and joint action ``(a, b)``, K possible
next states with their probabilities and the rewards of both players on each of those
transitions. Episodes last ``horizon`` steps; terminal states absorb with zero reward. Because
the model is explicit, policies can be evaluated exactly (backward induction), best responses
computed exactly (value iteration), state distributions propagated forward, and episodes
sampled in bulk; :class:`TabularMarkovEnv` wraps the same model in a gymnasium-like
``reset``/``step`` interface for two agents.

A policy is time-dependent (finite horizon): either deterministic, an int array ``[H, S]`` of
actions, or stochastic, a float array ``[H, S, A]`` of action probabilities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from varl._checks import FloatArray

__all__ = [
    "IntArray",
    "TabularMarkovEnv",
    "TabularMarkovGame",
    "best_response",
    "evaluate",
    "event_probability",
    "is_symmetric",
    "policy_probs",
    "random_policy",
    "sample_episodes",
    "state_distribution",
    "swap_policy",
]

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, kw_only=True, eq=False)
class TabularMarkovGame:
    """Explicit model of a two-player simultaneous-move Markov game.

    Attributes:
        name: Short name (used in fingerprints and reports).
        horizon: Episode length H >= 1.
        initial: Initial state distribution ``[S]``.
        next_state: Successor states ``[S, A, A, K]`` (player 0's action first).
        next_prob: Their probabilities ``[S, A, A, K]``, summing to 1 over K.
        reward: Rewards of both players on each transition ``[S, A, A, K, 2]``.
        terminal: Absorbing states ``[S]``: they lead to themselves with zero reward.
        action_names: One name per action ``[A]``.
        events: Named state flags ``{name: [S] bool}``; the flag of the state an episode ends in
            counts that event once (e.g. ``"crash"``).
        swap_states: For a symmetric game, the permutation ``[S]`` mapping a state to the same
            situation with the players' roles exchanged (None: not symmetric).
        swap_actions: The matching permutation of actions ``[A]`` (e.g. up <-> down when the
            exchange is a rotation of the grid).
    """

    name: str
    horizon: int
    initial: FloatArray
    next_state: IntArray
    next_prob: FloatArray
    reward: FloatArray
    terminal: BoolArray
    action_names: tuple[str, ...]
    events: dict[str, BoolArray] = field(default_factory=dict)
    swap_states: IntArray | None = None
    swap_actions: IntArray | None = None

    def __post_init__(self) -> None:
        s, a = self.initial.shape[0], len(self.action_names)
        if self.horizon < 1:
            raise ValueError(f"horizon: expected >= 1, got {self.horizon}")
        if self.next_state.ndim != 4 or self.next_state.shape[:3] != (s, a, a):
            raise ValueError(f"next_state: expected [S, A, A, K] = [{s}, {a}, {a}, K]")
        if self.next_prob.shape != self.next_state.shape:
            raise ValueError("next_prob: expected the shape of next_state")
        if self.reward.shape != (*self.next_state.shape, 2):
            raise ValueError("reward: expected [S, A, A, K, 2]")
        if self.next_state.min() < 0 or self.next_state.max() >= s:
            raise ValueError("next_state: entries must be state indices in [0, S)")
        if not np.allclose(self.next_prob.sum(axis=-1), 1.0) or self.next_prob.min() < 0:
            raise ValueError("next_prob: expected probabilities summing to 1 over K")
        if not np.isclose(self.initial.sum(), 1.0) or self.initial.min() < 0:
            raise ValueError("initial: expected a probability vector over states")
        if not np.all(np.isfinite(self.reward)):
            raise ValueError("reward: contains NaN or inf")
        term = np.flatnonzero(self.terminal)
        if term.size and (
            np.any(self.reward[term] != 0.0)
            or np.any(
                (self.next_state[term] != term[:, None, None, None]) & (self.next_prob[term] > 0)
            )
        ):
            raise ValueError("terminal: terminal states must absorb with zero reward")
        for key, flag in self.events.items():
            if flag.shape != (s,):
                raise ValueError(f"events[{key!r}]: expected a [S] bool array")
        if (self.swap_states is None) != (self.swap_actions is None):
            raise ValueError("swap_states, swap_actions: give both or neither")
        if self.swap_states is not None and self.swap_actions is not None:
            if sorted(self.swap_states.tolist()) != list(range(s)):
                raise ValueError("swap_states: expected a permutation of the states")
            if sorted(self.swap_actions.tolist()) != list(range(a)):
                raise ValueError("swap_actions: expected a permutation of the actions")

    @property
    def num_states(self) -> int:
        """Number of states S."""
        return int(self.initial.shape[0])

    @property
    def num_actions(self) -> int:
        """Number of actions A of each player."""
        return len(self.action_names)

    def fingerprint(self) -> str:
        """A hash of the model (a checkpoint made for one game is not resumed on another)."""
        digest = hashlib.sha256(f"{self.name}/{self.horizon}".encode())
        for arr in (self.initial, self.next_state, self.next_prob, self.reward, self.terminal):
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()[:16]


def swap_policy(game: TabularMarkovGame, policy: ArrayLike) -> IntArray | FloatArray:
    """A policy written for player 0, as player 1 plays it in a symmetric game.

    ``π'_t(b | s) = π_t(σ_A^{-1}(b) | σ_S(s))``: player 1 in state s sees what player 0 sees in
    the swapped state, and its actions are relabelled by the action permutation.

    Raises:
        ValueError: If the game declares no symmetry.
    """
    if game.swap_states is None or game.swap_actions is None:
        raise ValueError("game: this game declares no player symmetry (swap_states is None)")
    arr = np.asarray(policy)
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.integer):
        swapped: IntArray = game.swap_actions[arr[:, game.swap_states]]
        return swapped
    probs = policy_probs(game, arr)[:, game.swap_states]
    out: FloatArray = np.empty_like(probs)
    out[..., game.swap_actions] = probs
    return out


def is_symmetric(game: TabularMarkovGame) -> bool:
    """Whether exchanging the players leaves the model unchanged: from the swapped state, with
    the two (relabelled) actions exchanged, the game moves to the swapped successor and pays the
    exchanged rewards. The swap is assumed to be an involution."""
    if game.swap_states is None or game.swap_actions is None:
        return False
    ss, sa = game.swap_states, game.swap_actions
    # Player roles exchanged: state σ(s), player 0 takes σ_A(b), player 1 takes σ_A(a).
    nxt = game.next_state[ss][:, sa][:, :, sa].transpose(0, 2, 1, 3)
    prob = game.next_prob[ss][:, sa][:, :, sa].transpose(0, 2, 1, 3)
    rew = game.reward[ss][:, sa][:, :, sa].transpose(0, 2, 1, 3, 4)[..., ::-1]
    return bool(
        np.array_equal(ss[nxt], game.next_state)
        and np.allclose(prob, game.next_prob)
        and np.allclose(rew, game.reward)
        and np.allclose(game.initial[ss], game.initial)
    )


def policy_probs(game: TabularMarkovGame, policy: ArrayLike, name: str = "policy") -> FloatArray:
    """Action probabilities ``[H, S, A]`` of a deterministic ``[H, S]`` or stochastic policy.

    Raises:
        ValueError: On a wrong shape, an action out of range, or rows that are not
            probability vectors.
    """
    arr = np.asarray(policy)
    h, s, a = game.horizon, game.num_states, game.num_actions
    if arr.shape == (h, s) and np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() >= a:
            raise ValueError(f"{name}: actions must lie in [0, {a})")
        out: FloatArray = np.zeros((h, s, a))
        np.put_along_axis(out, arr[..., None].astype(np.int64), 1.0, axis=-1)
        return out
    if arr.shape == (h, s, a) and np.issubdtype(arr.dtype, np.floating):
        probs = arr.astype(np.float64)
        if probs.min() < -1e-9 or not np.allclose(probs.sum(axis=-1), 1.0, atol=1e-6):
            raise ValueError(f"{name}: each [t, s] row must be a probability vector")
        return probs
    raise ValueError(
        f"{name}: expected int actions [H, S] = [{h}, {s}] or float probabilities "
        f"[H, S, A] = [{h}, {s}, {a}], got {arr.dtype} {arr.shape}"
    )


def random_policy(
    game: TabularMarkovGame, rng: np.random.Generator, *, stochastic: bool = False
) -> IntArray | FloatArray:
    """A random policy: deterministic ``[H, S]`` with a uniformly drawn action per entry, or
    (``stochastic``) ``[H, S, A]`` with action probabilities drawn from a flat Dirichlet."""
    shape = (game.horizon, game.num_states)
    if stochastic:
        probs: FloatArray = rng.dirichlet(np.ones(game.num_actions), size=shape)
        return probs
    actions: IntArray = rng.integers(0, game.num_actions, size=shape)
    return actions


def _joint(p0: FloatArray, p1: FloatArray) -> FloatArray:
    """Joint action probabilities ``[S, A, A]`` at one step."""
    return p0[:, :, None] * p1[:, None, :]


def _deterministic(policy: ArrayLike, game: TabularMarkovGame) -> IntArray | None:
    arr = np.asarray(policy)
    if arr.shape == (game.horizon, game.num_states) and np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    return None


def _forward(
    game: TabularMarkovGame, policy0: ArrayLike, policy1: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Propagates the state distribution forward over the reachable states only.

    Returns ``(expected returns [2], state distributions [H + 1, S])``. Deterministic policies
    follow their chosen actions; stochastic ones weight every joint action.
    """
    d0, d1 = _deterministic(policy0, game), _deterministic(policy1, game)
    for name, d in (("policy0", d0), ("policy1", d1)):
        if d is not None and (d.min() < 0 or d.max() >= game.num_actions):
            raise ValueError(f"{name}: actions must lie in [0, {game.num_actions})")
    p0 = None if d0 is not None else policy_probs(game, policy0, "policy0")
    p1 = None if d1 is not None else policy_probs(game, policy1, "policy1")
    n_states = game.num_states
    dist = np.zeros((game.horizon + 1, n_states))
    dist[0] = game.initial
    returns = np.zeros(2)
    for t in range(game.horizon):
        idx = np.flatnonzero(dist[t])
        weight = dist[t, idx]
        if d0 is not None and d1 is not None:
            a, b = d0[t, idx], d1[t, idx]
            mass = weight[:, None] * game.next_prob[idx, a, b]  # [n, K]
            returns += np.einsum("nk,nkp->p", mass, game.reward[idx, a, b])
            nxt = game.next_state[idx, a, b]
        else:
            q0 = np.eye(game.num_actions)[d0[t, idx]] if d0 is not None else p0[t, idx]  # type: ignore[index]
            q1 = np.eye(game.num_actions)[d1[t, idx]] if d1 is not None else p1[t, idx]  # type: ignore[index]
            joint = weight[:, None, None] * q0[:, :, None] * q1[:, None, :]
            mass = joint[..., None] * game.next_prob[idx]  # [n, A, A, K]
            returns += np.einsum("nabk,nabkp->p", mass, game.reward[idx])
            nxt = game.next_state[idx]
        dist[t + 1] = np.bincount(nxt.ravel(), weights=mass.ravel(), minlength=n_states)
    return returns, dist


def evaluate(game: TabularMarkovGame, policy0: ArrayLike, policy1: ArrayLike) -> FloatArray:
    """Exact expected returns ``[2]`` of a policy pair.

    ``J_p = Σ_t Σ_s d_t(s) Σ_{a,b} π0_t(a|s) π1_t(b|s) Σ_k P(s,a,b,k) r_p(s,a,b,k)``, with the
    state distribution ``d_t`` propagated forward over the reachable states only (a
    deterministic game with deterministic policies follows a single path).
    """
    return _forward(game, policy0, policy1)[0]


def state_distribution(
    game: TabularMarkovGame, policy0: ArrayLike, policy1: ArrayLike
) -> FloatArray:
    """State distributions ``[H + 1, S]`` at steps 0..H under a policy pair."""
    return _forward(game, policy0, policy1)[1]


def event_probability(
    game: TabularMarkovGame, policy0: ArrayLike, policy1: ArrayLike, event: str
) -> float:
    """Probability that an episode ends in a state flagged ``event``."""
    if event not in game.events:
        raise ValueError(f"event: expected one of {sorted(game.events)}, got {event!r}")
    final = state_distribution(game, policy0, policy1)[-1]
    return float(final @ game.events[event])


def best_response(
    game: TabularMarkovGame, player: int, opponent: ArrayLike
) -> tuple[IntArray, float]:
    """Exact best response of ``player`` to a fixed opponent policy, by value iteration.

    Backward induction over the horizon with the opponent's action distribution ``π_t(b|s)``
    folded into the model: ``Q_t(s, a) = Σ_b π_t(b|s) Σ_k P [r_i + V_{t+1}(s')]``,
    ``V_t(s) = max_a Q_t(s, a)``; ties go to the lowest action index.

    Args:
        game: The game.
        player: 0 or 1.
        opponent: The other player's policy (``[H, S]`` int or ``[H, S, A]`` float).

    Returns:
        ``(policy [H, S] int, expected return from the initial distribution)``.
    """
    if player not in (0, 1):
        raise ValueError(f"player: expected 0 or 1, got {player!r}")
    opp = policy_probs(game, opponent, "opponent")
    # Own action first: player 1 sees the model with the action axes swapped.
    nxt = game.next_state if player == 0 else game.next_state.transpose(0, 2, 1, 3)
    prob = game.next_prob if player == 0 else game.next_prob.transpose(0, 2, 1, 3)
    rew = (game.reward if player == 0 else game.reward.transpose(0, 2, 1, 3, 4))[..., player]
    value = np.zeros(game.num_states)
    policy = np.zeros((game.horizon, game.num_states), dtype=np.int64)
    for t in reversed(range(game.horizon)):
        q_joint = np.einsum("sabk,sabk->sab", prob, rew + value[nxt])  # [S, own, opp]
        q = np.einsum("sab,sb->sa", q_joint, opp[t])
        policy[t] = np.argmax(q, axis=1)
        value = q.max(axis=1)
    return policy, float(game.initial @ value)


def sample_episodes(
    game: TabularMarkovGame,
    policy0: ArrayLike,
    policy1: ArrayLike,
    n: int,
    rng: np.random.Generator,
) -> tuple[FloatArray, IntArray]:
    """Samples ``n`` episodes at once.

    Returns:
        ``(returns [n, 2], final_states [n])``.
    """
    p0 = policy_probs(game, policy0, "policy0")
    p1 = policy_probs(game, policy1, "policy1")
    state = rng.choice(game.num_states, size=n, p=game.initial)
    returns = np.zeros((n, 2))
    for t in range(game.horizon):
        a = _sample_rows(p0[t][state], rng)
        b = _sample_rows(p1[t][state], rng)
        k = _sample_rows(game.next_prob[state, a, b], rng)
        returns += game.reward[state, a, b, k]
        state = game.next_state[state, a, b, k]
    return returns, state


def _sample_rows(probs: FloatArray, rng: np.random.Generator) -> IntArray:
    """One categorical draw per row of ``probs [n, m]``."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    draws: IntArray = np.minimum((u >= cdf).sum(axis=1), probs.shape[1] - 1).astype(np.int64)
    return draws


class TabularMarkovEnv:
    """Gymnasium-like two-agent interface to a :class:`TabularMarkovGame`.

    Both agents observe the full state index. ``step((a0, a1))`` returns
    ``(observations, rewards, terminated, truncated, info)`` with ``observations = (s, s)``,
    ``rewards = (r0, r1)``, ``terminated`` when a terminal state is reached, ``truncated`` at the
    horizon, and ``info = {"t": step, "events": {name: bool}}`` for the new state.

    Args:
        game: The model.
        seed: Seed of the environment's random generator (``reset(seed=...)`` reseeds it).
    """

    def __init__(self, game: TabularMarkovGame, seed: int | None = None) -> None:
        self.game = game
        self._rng = np.random.default_rng(seed)
        self._state: int | None = None
        self._t = 0

    def reset(self, *, seed: int | None = None) -> tuple[tuple[int, int], dict[str, Any]]:
        """Starts an episode; returns ``((s, s), info)``."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._state = int(self._rng.choice(self.game.num_states, p=self.game.initial))
        self._t = 0
        return (self._state, self._state), self._info()

    def step(
        self, actions: tuple[int, int]
    ) -> tuple[tuple[int, int], tuple[float, float], bool, bool, dict[str, Any]]:
        """Advances one step with both agents' actions."""
        if self._state is None:
            raise RuntimeError("step() called before reset() or after the episode ended")
        a, b = (int(x) for x in actions)
        n_act = self.game.num_actions
        if not (0 <= a < n_act and 0 <= b < n_act):
            raise ValueError(f"actions: expected two actions in [0, {n_act}), got {actions!r}")
        s = self._state
        k = int(self._rng.choice(self.game.next_prob.shape[-1], p=self.game.next_prob[s, a, b]))
        r = self.game.reward[s, a, b, k]
        self._state = int(self.game.next_state[s, a, b, k])
        self._t += 1
        terminated = bool(self.game.terminal[self._state])
        truncated = self._t >= self.game.horizon and not terminated
        obs = (self._state, self._state)
        info = self._info()
        if terminated or truncated:
            self._state = None
        return obs, (float(r[0]), float(r[1])), terminated, truncated, info

    def _info(self) -> dict[str, Any]:
        assert self._state is not None
        return {
            "t": self._t,
            "events": {k: bool(v[self._state]) for k, v in self.game.events.items()},
        }
