"""A toy two-way road: two drivers decide when to overtake a slow car into oncoming traffic.

A stand-in for the autonomous-driving experiment of RAE (Slumbers et al., arXiv 2205.15434),
which is based on highway-env's two-way road (``two-way-v0``). Reconstruction: the paper's
environment, agents and rewards could not be recovered (spec rae.md §2.3); this discrete toy
keeps only the risk structure — overtaking pays, overtaking into oncoming traffic crashes.

Rules. Two drivers approach each other on a two-lane road, each stuck behind a slow car. Each
step a driver still behind its slow car either waits (cost ``wait_cost``) or pulls out to
overtake; overtaking occupies the shared passing zone in the oncoming lane for ``pass_steps``
steps, after which the driver is past (reward ``pass_reward``). Two drivers in the passing zone
at the same time meet head-on and both crash; a random oncoming car appears with probability
``traffic_prob`` whenever the road is clear, is visible ``warning`` steps before it reaches the
zone, and crashes any driver it finds there. A crash pays ``crash_reward`` (large and negative)
and ends that driver's episode. Episodes last ``horizon`` steps.

The state is ``(status_0, status_1, traffic)``: status 0 behind, ``k = 1..pass_steps`` in the
passing zone with k steps to go, ``pass_steps + 1`` past, ``pass_steps + 2`` crashed; traffic 0
means no car, ``c >= 1`` a car that is in the zone when ``c == 1``. The events ``"crash"``
(some driver crashed), ``"head_on"`` (both crashed) and ``"both_passed"`` flag the state an
episode ends in, so crashes per episode can be counted exactly or by sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from varl._checks import FloatArray
from varl.games.markov.tabular import IntArray, TabularMarkovEnv, TabularMarkovGame

__all__ = ["ACTIONS", "TwoWayConfig", "TwoWayEnv", "decode_state", "make_two_way"]

ACTIONS = ("wait", "overtake")


@dataclass(frozen=True, kw_only=True)
class TwoWayConfig:
    """Settings of the two-way road toy (our choices; the paper's were not recovered)."""

    horizon: int = 4
    """Episode length in steps (short: a driver that lets the other pass first cannot pass
    itself any more, so waiting is the safe, opponent-independent choice)."""
    pass_steps: int = 2
    """Steps an overtaking driver spends in the passing zone."""
    warning: int = 3
    """Steps between an oncoming car becoming visible and it reaching the passing zone."""
    traffic_prob: float = 0.25
    """Probability that an oncoming car appears on a step when none is on the road."""
    pass_reward: float = 1.0
    """Reward for completing an overtake."""
    wait_cost: float = 0.1
    """Cost of each step spent behind the slow car."""
    crash_reward: float = -10.0
    """Reward of a driver that crashes (large and negative)."""

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.pass_steps < 1 or self.warning < 1:
            raise ValueError("horizon, pass_steps, warning: expected integers >= 1")
        if not 0.0 <= self.traffic_prob <= 1.0:
            raise ValueError(f"traffic_prob: expected a probability, got {self.traffic_prob}")
        for name in ("pass_reward", "wait_cost", "crash_reward"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name}: expected a finite number")

    @property
    def num_status(self) -> int:
        """Driver statuses: behind, ``pass_steps`` in-zone steps, past, crashed."""
        return self.pass_steps + 3


def decode_state(state: int, config: TwoWayConfig) -> tuple[int, int, int]:
    """``(status_0, status_1, traffic)`` of a state index (see the module docstring)."""
    n_status, n_traffic = config.num_status, config.warning + 1
    rest, traffic = divmod(int(state), n_traffic)
    s0, s1 = divmod(rest, n_status)
    return s0, s1, traffic


def make_two_way(config: TwoWayConfig | None = None) -> TabularMarkovGame:
    """Builds the tabular model of the two-way road toy (``(pass_steps+3)² (warning+1)`` states,
    actions wait/overtake, K = 2 outcomes: an oncoming car appears or not).

    Reconstruction: a discrete stand-in for highway-env's two-way road (module docstring).
    """
    cfg = config or TwoWayConfig()
    n_status, n_traffic = cfg.num_status, cfg.warning + 1
    behind, past, crashed = 0, cfg.pass_steps + 1, cfg.pass_steps + 2
    s_idx = np.arange(n_status * n_status * n_traffic)
    rest, traffic = np.divmod(s_idx, n_traffic)
    st0, st1 = np.divmod(rest, n_status)
    n_states = s_idx.size
    terminal = np.isin(st0, (past, crashed)) & np.isin(st1, (past, crashed))

    def drive(status: IntArray, action: int) -> tuple[IntArray, FloatArray]:
        """Status after the driver's move, and its reward before any crash."""
        new = status.copy()
        rew = np.zeros(n_states)
        waiting = status == behind
        if action == 1:
            new[waiting] = cfg.pass_steps
        else:
            rew[waiting] = -cfg.wait_cost
        in_zone = (status >= 1) & (status <= cfg.pass_steps)
        done = in_zone & (status == 1)
        new[in_zone & ~done] = status[in_zone & ~done] - 1
        new[done] = past
        rew[done] = cfg.pass_reward
        return new, rew

    next_state = np.zeros((n_states, 2, 2, 2), dtype=np.int64)
    next_prob = np.zeros((n_states, 2, 2, 2))
    reward = np.zeros((n_states, 2, 2, 2, 2))
    road_clear = traffic == 0
    for k, appears in enumerate((False, True)):
        new_traffic = np.where(road_clear, cfg.warning if appears else 0, traffic - 1)
        new_traffic = np.maximum(new_traffic, 0)
        prob = np.where(road_clear, cfg.traffic_prob if appears else 1 - cfg.traffic_prob, 1 - k)
        for a in range(2):
            new0, r0 = drive(st0, a)
            for b in range(2):
                new1, r1 = drive(st1, b)
                zone0 = (new0 >= 1) & (new0 <= cfg.pass_steps)
                zone1 = (new1 >= 1) & (new1 <= cfg.pass_steps)
                head_on = zone0 & zone1
                car = new_traffic == 1
                crash0 = head_on | (zone0 & car)
                crash1 = head_on | (zone1 & car)
                n0, n1 = np.where(crash0, crashed, new0), np.where(crash1, crashed, new1)
                rr0 = np.where(crash0, cfg.crash_reward, r0)
                rr1 = np.where(crash1, cfg.crash_reward, r1)
                nxt = (n0 * n_status + n1) * n_traffic + new_traffic
                next_state[:, a, b, k] = np.where(terminal, s_idx, nxt)
                next_prob[:, a, b, k] = np.where(terminal, 1 - k, prob)
                reward[:, a, b, k, 0] = np.where(terminal, 0.0, rr0)
                reward[:, a, b, k, 1] = np.where(terminal, 0.0, rr1)
    initial = np.zeros(n_states)
    initial[0] = 1.0  # both behind, road clear
    return TabularMarkovGame(
        name=f"two_way_h{cfg.horizon}_p{cfg.pass_steps}_w{cfg.warning}",
        horizon=cfg.horizon,
        initial=initial,
        next_state=next_state,
        next_prob=next_prob,
        reward=reward,
        terminal=terminal,
        action_names=ACTIONS,
        swap_states=(st1 * n_status + st0) * n_traffic + traffic,
        swap_actions=np.arange(2),
        events={
            "crash": (st0 == crashed) | (st1 == crashed),
            "head_on": (st0 == crashed) & (st1 == crashed),
            "both_passed": (st0 == past) & (st1 == past),
        },
    )


class TwoWayEnv(TabularMarkovEnv):
    """Gymnasium-like two-driver road: ``reset()`` then ``step((a0, a1))`` with actions
    0 = wait, 1 = overtake; ``info["events"]["crash"]`` marks a crash."""

    def __init__(self, config: TwoWayConfig | None = None, seed: int | None = None) -> None:
        self.config = config or TwoWayConfig()
        super().__init__(make_two_way(self.config), seed=seed)
