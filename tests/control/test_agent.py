"""The DSACT agent: delays and save/load (spec §6.1 items 7, 8), seeding, bad input, short runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gym = pytest.importorskip("gymnasium")

from varl.control.dsac_t import DSACT, SMALL_BUDGET, DSACTConfig  # noqa: E402

torch.set_num_threads(1)

TINY = dataclasses.replace(
    SMALL_BUDGET,
    hidden=(16, 16),
    batch_size=32,
    buffer_size=5000,
    learning_starts=64,
    eval_every=0,
)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))


def test_critics_every_step_actor_alpha_targets_every_second() -> None:
    agent = DSACT("Pendulum-v1", TINY, seed=0)
    agent.learn(64, progress_bar=False)
    assert agent.num_updates == 1 and agent.sigma_bar is not None
    for step in range(2, 6):
        actor, critic = _params(agent.actor), _params(agent.critic)
        targets = _params(agent.critic_target) + _params(agent.actor_target)
        log_alpha = agent.log_alpha.detach().clone()
        agent.train_step()
        delayed = step % 2 == 0
        assert agent.num_updates == step
        assert _changed(critic, agent.critic)
        assert _changed(actor, agent.actor) is delayed
        assert (not torch.equal(log_alpha, agent.log_alpha.detach())) is delayed
        after = _params(agent.critic_target) + _params(agent.actor_target)
        assert any(not torch.equal(a, b) for a, b in zip(targets, after, strict=True)) is delayed
    agent.close()


def test_same_seed_same_run_and_truncation_is_not_terminal() -> None:
    runs = []
    for _ in range(2):
        agent = DSACT("Pendulum-v1", TINY, seed=3)
        agent.learn(450, progress_bar=False)
        runs.append(agent)
    a, b = runs
    assert all(torch.equal(p, q) for p, q in zip(_params(a.critic), _params(b.critic), strict=True))
    assert a.last_stats == b.last_stats
    assert np.array_equal(a.buffer.obs, b.buffer.obs)
    # Pendulum only truncates (200 steps): nothing is stored as terminal, and the stored next
    # observation of step 200 is the episode's final one, not the reset observation.
    assert a.buffer.size == 450 and float(a.buffer.term.sum()) == 0.0
    assert a.num_episodes == 2
    assert not np.array_equal(a.buffer.next_obs[199], a.buffer.obs[200])
    c = DSACT("Pendulum-v1", TINY, seed=4)
    c.learn(100, progress_bar=False)
    assert not np.array_equal(a.buffer.obs[:100], c.buffer.obs[:100])
    for agent in (a, b, c):
        agent.close()


def test_save_load_round_trip_is_bit_exact(tmp_path: Path) -> None:
    agent = DSACT("Pendulum-v1", TINY, seed=1)
    agent.learn(200, progress_bar=False)
    path = tmp_path / "ckpt" / "agent.pt"
    agent.save(path, include_buffer=True)
    loaded = DSACT.load(path)
    obs = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    assert np.array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])
    assert loaded.num_timesteps == 200 and loaded.num_updates == agent.num_updates
    assert torch.equal(loaded.sigma_bar, agent.sigma_bar)
    assert loaded.alpha == agent.alpha
    assert loaded.buffer.size == agent.buffer.size
    # Optimiser moments, RNG states and targets travel too: the next gradient step is identical.
    assert loaded.train_step() == agent.train_step()
    assert all(
        torch.equal(p, q) for p, q in zip(_params(agent.actor), _params(loaded.actor), strict=True)
    )
    agent.close()
    loaded.close()


def test_short_run_has_finite_values_and_the_td_error_falls() -> None:
    # γ = 0 makes the critic a regression on the reward: its error must fall quickly.
    cfg = dataclasses.replace(TINY, gamma=0.0, learning_starts=200)
    agent = DSACT("Pendulum-v1", cfg, seed=0)
    agent.learn(200, progress_bar=False)
    errors = [agent.train_step()["q_td_error"] for _ in range(400)]
    stats = agent.train_step()
    assert all(np.isfinite(v) for v in stats.values())
    assert np.mean(errors[-50:]) < 0.5 * np.mean(errors[:50])
    agent.close()


def test_evaluate_and_log_csv(tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, eval_every=100, eval_episodes=1)
    agent = DSACT("Pendulum-v1", cfg, seed=0, log_dir=tmp_path)
    agent.learn(200, progress_bar=False)
    assert [e["step"] for e in agent.evaluations] == [100.0, 200.0]
    lines = (tmp_path / "evaluations.csv").read_text().splitlines()
    assert lines[0] == "step,return_mean,return_std,seconds" and len(lines) == 3
    mean, std = agent.evaluate(2)
    assert mean == agent.evaluate(2)[0] and -2000 < mean < 0 and std >= 0
    agent.close()
    # tensorboard is a dependency of the control extra: the scalars are written as events.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert "dsac_t/return_mean" in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("dsac_t/return_mean")] == [100, 200]


def test_vectorised_collection() -> None:
    cfg = dataclasses.replace(TINY, num_envs=2)
    agent = DSACT("Pendulum-v1", cfg, seed=0)
    agent.learn(100, progress_bar=False)
    assert agent.num_timesteps == 100 and agent.buffer.size == 100
    assert agent.num_updates == 100 - 64 + 2  # UTD 1 counted per transition
    agent.close()


def test_discrete_action_space_is_rejected() -> None:
    with pytest.raises(TypeError, match="Box action space"):
        DSACT("CartPole-v1", TINY)
    with pytest.raises(TypeError, match=r"env: expected an environment id or a gymnasium\.Env"):
        DSACT(3, TINY)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config: expected a DSACTConfig"):
        DSACT("Pendulum-v1", {"hidden": (8,)})  # type: ignore[arg-type]


def test_batch_larger_than_buffer_is_rejected() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DSACTConfig(batch_size=512, buffer_size=100)
    with pytest.raises(ValueError, match="critic_loss"):
        DSACTConfig(critic_loss="mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['hiden'\]"):
        DSACTConfig.from_dict({"hiden": [8]})


class _BadEnv(gym.Env[np.ndarray, np.ndarray]):
    """Returns a NaN reward (or observation) at its third step."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: Any) -> Any:
        self.t += 1
        bad = self.t == 3
        obs = np.full(2, np.nan if bad and self.what == "observation" else 0.0, np.float32)
        reward = float("nan") if bad and self.what == "reward" else 0.0
        return obs, reward, False, False, {}


@pytest.mark.parametrize("what", ["reward", "observation"])
def test_non_finite_env_output_names_the_step(what: str) -> None:
    agent = DSACT(_BadEnv(what), TINY)
    with pytest.raises(ValueError, match=f"non-finite {what} returned at env step 2"):
        agent.learn(10, progress_bar=False)


def test_unbounded_action_box_and_bad_obs_shape_are_rejected() -> None:
    env = _BadEnv("reward")
    env.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    with pytest.raises(ValueError, match="action Box must be bounded"):
        DSACT(env, TINY)
    agent = DSACT("Pendulum-v1", TINY)
    with pytest.raises(ValueError, match=r"obs: expected shape \[..., 3\]"):
        agent.predict(np.zeros(4))
    action, state = agent.predict(np.zeros(3))
    assert action.shape == (1,) and state is None and -2.0 <= float(action[0]) <= 2.0
    agent.close()


def test_config_round_trips_through_a_flat_mapping() -> None:
    cfg = dataclasses.replace(TINY, critic_loss="huber2025")
    assert DSACTConfig.from_dict(dataclasses.asdict(cfg)) == cfg


@pytest.mark.parametrize("loss", ["huber2025", "fixed_clip"])
def test_other_critic_losses_train(loss: str) -> None:
    agent = DSACT("Pendulum-v1", dataclasses.replace(TINY, critic_loss=loss), seed=0)
    agent.learn(100, progress_bar=False)
    assert agent.num_updates == 37
    assert all(np.isfinite(v) for v in agent.last_stats.values())
    agent.close()


def test_paper_schedule_one_update_per_twenty_env_steps() -> None:
    cfg = dataclasses.replace(TINY, train_freq=20, learning_starts=40)
    agent = DSACT("Pendulum-v1", cfg, seed=0)
    agent.learn(139, progress_bar=False)
    assert agent.num_updates == 5  # after env steps 59, 79, 99, 119 and 139
    agent.close()


def test_resume_without_buffer_waits_for_a_full_batch(tmp_path: Path) -> None:
    a = DSACT("Pendulum-v1", TINY, seed=0)
    a.learn(300, progress_bar=False)
    a.save(tmp_path / "ckpt.pt", include_buffer=False)
    b = DSACT.load(tmp_path / "ckpt.pt")
    updates = b.num_updates
    assert updates == 237 and len(b.buffer) == 0 and b.train_threshold == 64
    b.learn(1, progress_bar=False)  # one transition: no gradient step on it
    assert (len(b.buffer), b.num_updates) == (1, updates)
    b.learn(62, progress_bar=False)
    assert (len(b.buffer), b.num_updates) == (63, updates)
    b.learn(1, progress_bar=False)  # max(learning_starts, batch_size) = 64 reached
    assert (len(b.buffer), b.num_updates) == (64, updates + 1)
    for agent in (a, b):
        agent.close()


def test_learning_starts_below_batch_size_waits_for_a_batch() -> None:
    cfg = dataclasses.replace(TINY, learning_starts=0)
    agent = DSACT("Pendulum-v1", cfg, seed=0)
    assert agent.train_threshold == 32
    agent.learn(31, progress_bar=False)
    assert agent.num_updates == 0
    agent.learn(1, progress_bar=False)
    assert agent.num_updates == 1
    agent.close()


FLOAT_FIELDS = [
    "actor_lr",
    "critic_lr",
    "alpha_lr",
    "gamma",
    "tau",
    "tau_b",
    "clip_xi",
    "std_eps",
    "target_noise_clip",
    "init_log_alpha",
    "target_entropy",
    "td_bound",
    "huber_delta",
    "log_std_min",
    "log_std_max",
]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_every_float_field_rejects_non_finite_values(name: str, bad: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: expected a finite number, got {bad!r}$"):
        DSACTConfig(**{name: bad})


def test_config_ranges_and_integer_fields() -> None:
    for name in ("tau", "tau_b"):
        with pytest.raises(ValueError, match=rf"^{name}: expected a number in \(0, 1\], got 0$"):
            DSACTConfig(**{name: 0})
        with pytest.raises(ValueError, match=rf"^{name}: expected a number in \(0, 1\], got 1.5$"):
            DSACTConfig(**{name: 1.5})
    assert DSACTConfig(tau=1.0, tau_b=1.0).tau_b == 1.0
    with pytest.raises(
        ValueError, match=r"^eval_episodes: expected >= 1 when eval_every > 0, got 0$"
    ):
        DSACTConfig(eval_every=5, eval_episodes=0)
    assert DSACTConfig(eval_every=0, eval_episodes=0).eval_episodes == 0
    with pytest.raises(ValueError, match=r"^batch_size: expected an integer, got 2.5$"):
        DSACTConfig(batch_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^learning_starts: expected an integer, got True$"):
        DSACTConfig(learning_starts=True)
    with pytest.raises(ValueError, match=r"^hidden: expected integer layer sizes >= 1"):
        DSACTConfig(hidden=(16, 2.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^gamma: expected a real number, got 'high'$"):
        DSACTConfig(gamma="high")  # type: ignore[arg-type]
    # YAML 1.1 reads 1e-4 as a string: from_dict converts float fields.
    assert DSACTConfig.from_dict({"actor_lr": "1e-4"}).actor_lr == 1e-4
    assert DSACTConfig(learning_starts=0, batch_size=32).learning_starts == 0


def test_non_finite_action_names_the_agent_before_the_env_steps() -> None:
    agent = DSACT("Pendulum-v1", dataclasses.replace(TINY, warmup="policy"), seed=0)
    with torch.no_grad():
        for p in agent.actor.parameters():
            p.fill_(float("nan"))
    with pytest.raises(
        ValueError, match=r"^agent: the DSAC-T policy produced a non-finite action at env step 0 "
    ):
        agent.learn(5, progress_bar=False)
    assert agent.num_timesteps == 0 and len(agent.buffer) == 0
    agent.close()


def test_stochastic_predict_does_not_disturb_training() -> None:
    a = DSACT("Pendulum-v1", TINY, seed=5)
    b = DSACT("Pendulum-v1", TINY, seed=5)
    a.learn(100, progress_bar=False)
    b.learn(100, progress_bar=False)
    act_a, _ = a.predict(np.zeros(3), deterministic=False)
    act_b, _ = b.predict(np.zeros(3), deterministic=False)
    assert np.array_equal(act_a, act_b)  # predict's own stream is seeded too
    a.predict(np.zeros((4, 3)), deterministic=False)  # a draws more than b
    a.learn(50, progress_bar=False)
    b.learn(50, progress_bar=False)
    assert all(torch.equal(p, q) for p, q in zip(_params(a.actor), _params(b.actor), strict=True))
    assert a.last_stats == b.last_stats
    assert np.array_equal(a.buffer.act[:150], b.buffer.act[:150])
    for agent in (a, b):
        agent.close()


def test_log_prob_includes_the_half_range_term() -> None:
    import copy
    import math

    agent = DSACT("Pendulum-v1", TINY, seed=0)  # Box [-2, 2]: half-range 2
    assert agent.log_prob_offset == -math.log(2.0)
    agent.learn(64, progress_bar=False)  # one update; the next one is a delayed (actor) step
    gen = torch.Generator()
    gen.set_state(agent.generator.get_state())
    rng = copy.deepcopy(agent.rng)
    batch = agent.buffer.sample(TINY.batch_size, rng)
    agent.actor_target.sample(batch["next_obs"], gen)
    torch.randn((2, TINY.batch_size), generator=gen)
    with torch.no_grad():
        _, raw = agent.actor.sample(batch["obs"], gen)  # log-density of the [-1, 1] action
    stats = agent.train_step()
    assert stats["entropy"] == pytest.approx(-float(raw.mean()) + math.log(2.0), abs=1e-5)
    agent.close()
    box = _BadEnv("reward")
    box.action_space = gym.spaces.Box(
        np.array([-3.0, 0.0], np.float32), np.array([3.0, 1.0], np.float32)
    )
    assert DSACT(box, TINY).log_prob_offset == pytest.approx(-math.log(1.5), abs=1e-12)
