"""A gridworld Markov stag hunt (trust dilemma) for two agents, with a tabular model.

In the style of Peysakhovich & Lerer (AAMAS 2018, "Prosocial learning agents solve generalized
stag hunts better than selfish ones"), the trust-dilemma environment RAE (Slumbers et al.,
arXiv 2205.15434) evaluates PSRO-RAE on. Reconstruction: the sizes and rewards of the paper's
grid could not be recovered (spec rae.md §2.3); the defaults below are ours.

Rules. Two agents start in opposite corners of a ``size × size`` grid and move one cell per
step (stay, up, down, left, right; walls clip). A stag stands at the centre, and a plant near
each start. Each agent's episode ends at its first event:

* both agents step onto the stag on the same step: each gets ``stag_reward`` (payoff dominant);
* an agent steps onto the stag alone: the stag gores it, ``gore_reward`` (< 0);
* an agent steps onto a plant: ``plant_reward`` (small but safe).

An agent whose episode ended stays put; the game ends when both have ended or after
``horizon`` steps. At matrix level (hunt vs forage) this is the stag hunt
``[[stag, gore], [plant, plant]]``; with the defaults (4, −2, 2) foraging is risk dominant.

The state is ``(position_0, position_1, status_0, status_1)`` with status in {active, ate
plant, caught stag, gored}; events ``"stag"`` (the stag was caught), ``"plant"`` (an agent ate
a plant) and ``"gored"`` (an agent was gored) flag the state an episode ends in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from varl.games.markov.tabular import IntArray, TabularMarkovEnv, TabularMarkovGame

__all__ = [
    "ACTIONS",
    "StagHuntConfig",
    "StagHuntEnv",
    "decode_state",
    "make_stag_hunt",
    "stag_chaser_policy",
]

ACTIONS = ("stay", "up", "down", "left", "right")
_MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])
ACTIVE, PLANT, STAG, GORED = 0, 1, 2, 3


@dataclass(frozen=True, kw_only=True)
class StagHuntConfig:
    """Settings of the gridworld stag hunt (our defaults; the paper's were not recovered)."""

    size: int = 5
    """Side of the square grid."""
    horizon: int = 8
    """Episode length in steps."""
    stag_reward: float = 4.0
    """Reward of each agent when both catch the stag together."""
    plant_reward: float = 2.0
    """Reward of an agent that eats a plant."""
    gore_reward: float = -2.0
    """Reward of an agent that meets the stag alone."""

    def __post_init__(self) -> None:
        if self.size < 3:
            raise ValueError(f"size: expected >= 3, got {self.size}")
        if self.horizon < 1:
            raise ValueError(f"horizon: expected >= 1, got {self.horizon}")
        for name in ("stag_reward", "plant_reward", "gore_reward"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name}: expected a finite number")

    @property
    def starts(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Start cells (row, col) of agents 0 and 1: opposite corners."""
        return (0, 0), (self.size - 1, self.size - 1)

    @property
    def stag(self) -> tuple[int, int]:
        """The stag's cell: the centre."""
        return self.size // 2, self.size // 2

    @property
    def plants(self) -> tuple[tuple[int, int], ...]:
        """Plant cells: halfway along the first row and along the last row."""
        return (0, self.size // 2), (self.size - 1, self.size // 2)


def _encode(
    p0: IntArray | int, p1: IntArray | int, s0: IntArray | int, s1: IntArray | int, cells: int
) -> IntArray:
    return np.asarray(((np.asarray(p0) * cells + p1) * 4 + s0) * 4 + s1, dtype=np.int64)


def decode_state(state: int, config: StagHuntConfig) -> dict[str, tuple[int, ...]]:
    """``{"positions": ((r0, c0), (r1, c1)), "status": (s0, s1)}`` of a state index; status
    0 active, 1 ate plant, 2 caught stag, 3 gored."""
    cells = config.size**2
    rest, s1 = divmod(int(state), 4)
    rest, s0 = divmod(rest, 4)
    p0, p1 = divmod(rest, cells)
    return {
        "positions": (*divmod(p0, config.size), *divmod(p1, config.size)),
        "status": (s0, s1),
    }


def make_stag_hunt(config: StagHuntConfig | None = None) -> TabularMarkovGame:
    """Builds the tabular model of the stag hunt (S = size⁴ · 16 states, 5 actions, K = 1).

    Reconstruction: environment of Peysakhovich & Lerer (2018) as RAE uses it; our layout and
    rewards (see the module docstring).
    """
    cfg = config or StagHuntConfig()
    n, cells = cfg.size, cfg.size**2
    s_idx = np.arange(cells * cells * 16)
    rest, st1 = np.divmod(s_idx, 4)
    rest, st0 = np.divmod(rest, 4)
    pos0, pos1 = np.divmod(rest, cells)
    stag_cell = cfg.stag[0] * n + cfg.stag[1]
    plant_cell = np.zeros(cells, dtype=bool)
    for r, c in cfg.plants:
        plant_cell[r * n + c] = True

    def move(pos: IntArray, status: IntArray, action: int) -> IntArray:
        r, c = np.divmod(pos, n)
        r2 = np.clip(r + _MOVES[action, 0], 0, n - 1)
        c2 = np.clip(c + _MOVES[action, 1], 0, n - 1)
        return np.where(status == ACTIVE, r2 * n + c2, pos)

    n_states, n_act = s_idx.size, len(ACTIONS)
    next_state = np.zeros((n_states, n_act, n_act, 1), dtype=np.int64)
    reward = np.zeros((n_states, n_act, n_act, 1, 2))
    for a in range(n_act):
        q0 = move(pos0, st0, a)
        for b in range(n_act):
            q1 = move(pos1, st1, b)
            on0 = (st0 == ACTIVE) & (q0 == stag_cell)
            on1 = (st1 == ACTIVE) & (q1 == stag_cell)
            new0, new1 = st0.copy(), st1.copy()
            r0, r1 = np.zeros(n_states), np.zeros(n_states)
            for on, on_other, q, st, new, rew in (
                (on0, on1, q0, st0, new0, r0),
                (on1, on0, q1, st1, new1, r1),
            ):
                caught = on & on_other
                gored = on & ~on_other
                ate = (st == ACTIVE) & ~on & plant_cell[q]
                new[caught], new[gored], new[ate] = STAG, GORED, PLANT
                rew[caught] = cfg.stag_reward
                rew[gored] = cfg.gore_reward
                rew[ate] = cfg.plant_reward
            next_state[:, a, b, 0] = _encode(q0, q1, new0, new1, cells)
            reward[:, a, b, 0, 0] = r0
            reward[:, a, b, 0, 1] = r1
    initial = np.zeros(n_states)
    (r0s, c0s), (r1s, c1s) = cfg.starts
    initial[_encode(np.array(r0s * n + c0s), np.array(r1s * n + c1s), 0, 0, cells)] = 1.0
    terminal = (st0 != ACTIVE) & (st1 != ACTIVE)
    rotated0, rotated1 = cells - 1 - pos0, cells - 1 - pos1  # 180° rotation of the grid
    return TabularMarkovGame(
        name=f"stag_hunt_{n}x{n}_h{cfg.horizon}",
        horizon=cfg.horizon,
        initial=initial,
        next_state=next_state,
        next_prob=np.ones((n_states, n_act, n_act, 1)),
        reward=reward,
        terminal=terminal,
        action_names=ACTIONS,
        swap_states=_encode(rotated1, rotated0, st1, st0, cells),
        swap_actions=np.array([0, 2, 1, 4, 3]),  # the rotation swaps up/down and left/right
        events={
            "stag": (st0 == STAG) & (st1 == STAG),
            "plant": (st0 == PLANT) | (st1 == PLANT),
            "gored": (st0 == GORED) | (st1 == GORED),
        },
    )


def stag_chaser_policy(config: StagHuntConfig, player: int) -> IntArray:
    """A deterministic policy ``[H, S]`` walking straight to the stag (rows first, then columns)
    in every state: the "trusting" strategy of the trust dilemma."""
    cfg = config
    n, cells = cfg.size, cfg.size**2
    s_idx = np.arange(cells * cells * 16)
    rest = s_idx // 16
    pos = np.divmod(rest, cells)[player]
    r, c = np.divmod(pos, n)
    sr, sc = cfg.stag
    action = np.select([r > sr, r < sr, c > sc, c < sc], [1, 2, 3, 4], default=0).astype(np.int64)
    return np.tile(action, (cfg.horizon, 1))


class StagHuntEnv(TabularMarkovEnv):
    """Gymnasium-like two-agent stag hunt: ``reset()`` then ``step((a0, a1))``; observations are
    state indices (see :func:`decode_state`), actions index :data:`ACTIONS`."""

    def __init__(self, config: StagHuntConfig | None = None, seed: int | None = None) -> None:
        self.config = config or StagHuntConfig()
        super().__init__(make_stag_hunt(self.config), seed=seed)
