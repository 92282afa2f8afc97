"""Tests for varl.games.markov: the tabular model, exact evaluation, best responses, the envs."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from varl.games.markov import (
    StagHuntConfig,
    StagHuntEnv,
    TwoWayConfig,
    TwoWayEnv,
    best_response,
    evaluate,
    event_probability,
    make_stag_hunt,
    make_two_way,
    policy_probs,
    random_policy,
    sample_episodes,
    state_distribution,
)
from varl.games.markov.stag_hunt import decode_state, stag_chaser_policy
from varl.games.markov.tabular import is_symmetric, swap_policy
from varl.games.markov.two_way import decode_state as decode_road

CFG = StagHuntConfig()
STAG = make_stag_hunt(CFG)
ROAD = make_two_way()


def _constant(game: object, action: int) -> np.ndarray:
    return np.full((game.horizon, game.num_states), action, dtype=np.int64)  # type: ignore[attr-defined]


def test_stag_hunt_outcomes_by_hand() -> None:
    chase0, chase1 = stag_chaser_policy(CFG, 0), stag_chaser_policy(CFG, 1)
    assert_allclose(evaluate(STAG, chase0, chase1), [4.0, 4.0])  # both arrive at step 4
    assert event_probability(STAG, chase0, chase1, "stag") == 1.0
    # A lone hunter is gored; the partner who stays put gets nothing.
    assert_allclose(evaluate(STAG, chase0, _constant(STAG, 0)), [-2.0, 0.0])
    assert event_probability(STAG, chase0, _constant(STAG, 0), "gored") == 1.0
    # Agent 0 walking right from (0, 0) eats the plant at (0, 2) after two steps.
    assert_allclose(evaluate(STAG, _constant(STAG, 4), _constant(STAG, 0)), [2.0, 0.0])
    start = int(np.flatnonzero(STAG.initial)[0])
    assert decode_state(start, CFG) == {"positions": (0, 0, 4, 4), "status": (0, 0)}


def test_best_response_values() -> None:
    chase1 = stag_chaser_policy(CFG, 1)
    policy, value = best_response(STAG, 0, chase1)
    assert value == 4.0 and evaluate(STAG, policy, chase1)[0] == 4.0
    # Against a partner that never moves the best is the plant.
    policy, value = best_response(STAG, 1, _constant(STAG, 0))
    assert value == 2.0
    assert event_probability(STAG, _constant(STAG, 0), policy, "plant") == 1.0


def test_two_way_outcomes_by_hand() -> None:
    go, wait = _constant(ROAD, 1), _constant(ROAD, 0)
    assert_allclose(evaluate(ROAD, go, go), [-10.0, -10.0])  # head-on in the passing zone
    assert event_probability(ROAD, go, go, "head_on") == 1.0
    # Pulling out at once on a clear road is safe: +1 after two steps; the waiter pays 4 x 0.1.
    assert_allclose(evaluate(ROAD, go, wait), [1.0, -0.4])
    assert event_probability(ROAD, go, wait, "crash") == 0.0
    # Waiting one step, then pulling out blindly: a car that appeared at t=0 (p = 1/4) reaches
    # the zone at t=2 -> crash; otherwise pass. E = 1/4 (-10.1) + 3/4 (0.9) = -1.85.
    late = go.copy()
    late[0] = 0
    assert_allclose(evaluate(ROAD, late, wait), [-1.85, -0.4])
    assert event_probability(ROAD, late, wait, "crash") == pytest.approx(0.25)
    assert decode_road(0, TwoWayConfig()) == (0, 0, 0)


@pytest.mark.parametrize("game", [STAG, ROAD], ids=["stag_hunt", "two_way"])
def test_symmetry_and_swapped_policies(game: object) -> None:
    assert is_symmetric(game)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    a = random_policy(game, rng)  # type: ignore[arg-type]
    b = random_policy(game, rng, stochastic=True)  # type: ignore[arg-type]
    assert_array = np.testing.assert_array_equal
    assert_array(swap_policy(game, swap_policy(game, a)), a)  # type: ignore[arg-type]
    # Exchanging the roles exchanges the returns.
    ab = evaluate(game, a, swap_policy(game, b))  # type: ignore[arg-type]
    ba = evaluate(game, b, swap_policy(game, a))  # type: ignore[arg-type]
    assert_allclose(ab, ba[::-1], atol=1e-12)


def test_stochastic_and_deterministic_paths_agree() -> None:
    rng = np.random.default_rng(1)
    for game in (STAG, ROAD):
        a, b = random_policy(game, rng), random_policy(game, rng)
        assert_allclose(evaluate(game, a, b), evaluate(game, policy_probs(game, a), b), atol=1e-12)
        dist = state_distribution(game, a, policy_probs(game, b))
        assert_allclose(dist.sum(axis=1), 1.0)
    # The mixture best response is at least as good as any policy against the same opponent.
    opp = random_policy(ROAD, rng, stochastic=True)
    br, value = best_response(ROAD, 0, opp)
    assert value == pytest.approx(evaluate(ROAD, br, opp)[0])
    for _ in range(20):
        assert evaluate(ROAD, random_policy(ROAD, rng), opp)[0] <= value + 1e-12


def test_sampling_matches_exact_values() -> None:
    rng = np.random.default_rng(2)
    a, b = random_policy(ROAD, rng, stochastic=True), random_policy(ROAD, rng, stochastic=True)
    returns, final = sample_episodes(ROAD, a, b, 20000, rng)
    exact = evaluate(ROAD, a, b)
    se = returns.std(axis=0) / np.sqrt(len(returns))
    assert np.all(np.abs(returns.mean(axis=0) - exact) < 4 * se)
    crash = ROAD.events["crash"][final].mean()
    assert crash == pytest.approx(event_probability(ROAD, a, b, "crash"), abs=0.02)


def test_env_episode_matches_the_model() -> None:
    env = StagHuntEnv(seed=0)
    obs, info = env.reset()
    chase = (stag_chaser_policy(CFG, 0), stag_chaser_policy(CFG, 1))
    total, steps, done = np.zeros(2), 0, False
    while not done:
        t = info["t"]
        actions = (int(chase[0][t, obs[0]]), int(chase[1][t, obs[1]]))
        obs, rewards, terminated, truncated, info = env.step(actions)
        total += rewards
        steps += 1
        done = terminated or truncated
    assert terminated and steps == 4 and info["events"]["stag"]
    assert_allclose(total, [4.0, 4.0])
    with pytest.raises(RuntimeError, match="before reset"):
        env.step((0, 0))
    road = TwoWayEnv(seed=3)
    crashes = 0
    for _ in range(200):
        road.reset()
        done = False
        while not done:
            _, _, terminated, truncated, info = road.step((1, 1))
            done = terminated or truncated
        crashes += info["events"]["crash"]
    assert crashes == 200


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: evaluate(ROAD, np.zeros((2, 2), dtype=np.int64), _constant(ROAD, 0)), "policy0"),
        (lambda: evaluate(ROAD, _constant(ROAD, 2), _constant(ROAD, 0)), "policy0: actions"),
        (lambda: policy_probs(ROAD, np.full((4, 100, 2), 0.7)), "probability vector"),
        (lambda: best_response(ROAD, 2, _constant(ROAD, 0)), "player: expected 0 or 1"),
        (lambda: event_probability(ROAD, _constant(ROAD, 0), _constant(ROAD, 0), "x"), "event"),
        (lambda: TwoWayConfig(traffic_prob=1.5), "traffic_prob"),
        (lambda: TwoWayConfig(horizon=0), "horizon"),
        (lambda: StagHuntConfig(size=2), "size"),
        (
            lambda: swap_policy(
                ROAD.__class__(**{**ROAD.__dict__, "swap_states": None, "swap_actions": None}),
                _constant(ROAD, 0),
            ),
            "declares no player symmetry",
        ),
        (lambda: TwoWayEnv(seed=0).step((0, 0)), "before reset"),
    ],
)
def test_bad_input(call: object, match: str) -> None:
    with pytest.raises((ValueError, RuntimeError), match=match):
        call()  # type: ignore[operator]
