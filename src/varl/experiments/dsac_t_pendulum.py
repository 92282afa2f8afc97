"""DSAC-T vs Stable-Baselines3 SAC on Pendulum-v1 at the same budget, seeds and network sizes.

Paper: Duan et al., "Distributional Soft Actor-Critic with Three Refinements", arXiv 2310.05858.
Claim reproduced here at CPU scale: DSAC-T matches or outperforms SAC (paper abstract; Table II on
MuJoCo). Settings follow spec §6.2: one gradient step per env step, 2×128 networks, batch 256,
lr 1e-3 for actor and critics, 1000 warm-up steps with uniform actions, the same for SAC
(SB3 ``SAC`` with ``learning_rate=1e-3``, ``net_arch=[128, 128]``, ``learning_starts=1000``).
Both policies are evaluated deterministically on the same seeded episodes. The claim holds when
DSAC-T's median final return is not below SAC's by more than the non-inferiority margin (100 on
Pendulum, whose solved policies still have an episode std of about 80–90).

Quick: Pendulum-v1, 1 seed × 15k steps. Full: 3 seeds, Pendulum-v1 (15k) and InvertedPendulum-v5
(20k, MuJoCo).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from varl.experiments.result import ExperimentResult, Panel, ProgressBar, Series

DESCRIPTION = "DSAC-T (2310.05858): DSAC-T vs SB3 SAC on Pendulum-v1, same budget and networks"
PAPER = "Distributional Soft Actor-Critic with Three Refinements (arXiv 2310.05858)"


@dataclass(frozen=True, kw_only=True)
class PendulumConfig:
    """Settings of the DSAC-T vs SAC comparison."""

    envs: tuple[tuple[str, int], ...] = (("Pendulum-v1", 15_000),)
    """(environment id, env steps) pairs."""
    seeds: int = 1
    """Number of seeds, 0..seeds-1."""
    hidden: tuple[int, ...] = (128, 128)
    """Hidden layers of every network of both algorithms."""
    batch_size: int = 256
    """Minibatch size of both algorithms."""
    learning_starts: int = 1000
    """Uniform-random warm-up steps of both algorithms."""
    eval_points: int = 6
    """Evaluations along training (the last one is the final evaluation)."""
    eval_episodes: int = 10
    """Deterministic episodes per evaluation."""
    margin: float = 100.0
    """Non-inferiority margin on the median final return."""


QUICK = PendulumConfig()
FULL = PendulumConfig(envs=(("Pendulum-v1", 15_000), ("InvertedPendulum-v5", 20_000)), seeds=3)


def train_dsac_t(
    cfg: PendulumConfig, env_id: str, steps: int, seed: int, progress: ProgressBar | None = None
) -> dict[str, list[float]]:
    """Trains DSAC-T (small-budget preset at ``cfg``'s sizes); returns eval curves and timing."""
    import torch

    from varl.control.dsac_t import DSACT, SMALL_BUDGET

    torch.set_num_threads(1)
    config = dataclasses.replace(
        SMALL_BUDGET,
        hidden=cfg.hidden,
        batch_size=cfg.batch_size,
        learning_starts=cfg.learning_starts,
        eval_every=steps // cfg.eval_points,
        eval_episodes=cfg.eval_episodes,
    )
    agent = DSACT(env_id, config, seed=seed)

    def tick(_: Any) -> None:
        if progress is not None:
            progress.update(1)

    start = time.perf_counter()
    agent.learn(steps, callback=tick, progress_bar=False)
    seconds = time.perf_counter() - start
    agent.close()
    return {
        "step": [e["step"] for e in agent.evaluations],
        "return": [e["return_mean"] for e in agent.evaluations],
        "seconds": [seconds],
    }


def train_sb3_sac(
    cfg: PendulumConfig, env_id: str, steps: int, seed: int, progress: ProgressBar | None = None
) -> dict[str, list[float]]:
    """Trains Stable-Baselines3 SAC with the same sizes; evaluates on the same seeded episodes."""
    import torch
    from stable_baselines3 import SAC

    from varl.control.evaluation import evaluate_policy, make_env

    torch.set_num_threads(1)
    model = SAC(
        "MlpPolicy",
        env_id,
        learning_rate=1e-3,
        batch_size=cfg.batch_size,
        learning_starts=cfg.learning_starts,
        policy_kwargs={"net_arch": list(cfg.hidden)},
        seed=seed,
        device="cpu",
    )
    eval_env = make_env(env_id)
    every = steps // cfg.eval_points
    curve: dict[str, list[float]] = {"step": [], "return": []}

    def on_step(locals_: dict[str, Any], _globals: dict[str, Any]) -> bool:
        n = int(locals_["self"].num_timesteps)
        if progress is not None:
            progress.update(1)
        if n % every == 0:
            mean, _ = evaluate_policy(
                lambda obs: model.predict(obs, deterministic=True)[0],
                eval_env,
                cfg.eval_episodes,
                10_000 + seed,  # the seeds DSACT.evaluate uses
            )
            curve["step"].append(float(n))
            curve["return"].append(mean)
        return True

    start = time.perf_counter()
    model.learn(steps, callback=on_step)
    curve["seconds"] = [time.perf_counter() - start]
    eval_env.close()
    return curve


ARMS = {"DSAC-T": train_dsac_t, "SB3 SAC": train_sb3_sac}


def _series(label: str, runs: list[dict[str, list[float]]]) -> Series:
    arr = np.asarray([r["return"] for r in runs], dtype=np.float64)
    return Series(
        label=label,
        x=list(runs[0]["step"]),
        mean=arr.mean(axis=0).tolist(),
        low=arr.min(axis=0).tolist(),
        high=arr.max(axis=0).tolist(),
    )


def run_with(cfg: PendulumConfig, progress: ProgressBar | None = None) -> ExperimentResult:
    """Runs both algorithms on every environment and seed and judges non-inferiority."""
    seeds = list(range(cfg.seeds))
    if progress is not None:
        progress.reset(total=len(ARMS) * len(seeds) * sum(steps for _, steps in cfg.envs))
    runs = {
        (env_id, arm): [fn(cfg, env_id, steps, s, progress) for s in seeds]
        for env_id, steps in cfg.envs
        for arm, fn in ARMS.items()
    }
    metrics: dict[str, float] = {}
    table = [["environment", "algorithm", "median final return", "per seed", "train s/run"]]
    holds = []
    for env_id, steps in cfg.envs:
        medians = {}
        for arm in ARMS:
            finals = [r["return"][-1] for r in runs[env_id, arm]]
            secs = [r["seconds"][0] for r in runs[env_id, arm]]
            medians[arm] = float(np.median(finals))
            metrics[f"{env_id}/{arm}/median_final_return"] = medians[arm]
            metrics[f"{env_id}/{arm}/seconds_per_run"] = float(np.mean(secs))
            metrics[f"{env_id}/{arm}/steps_per_second"] = steps / float(np.mean(secs))
            for s, value in zip(seeds, finals, strict=True):
                metrics[f"{env_id}/{arm}/seed{s}"] = value
            table.append(
                [
                    env_id,
                    arm,
                    f"{medians[arm]:.1f}",
                    ", ".join(f"{v:.0f}" for v in finals),
                    f"{np.mean(secs):.0f}",
                ]
            )
        holds.append(medians["DSAC-T"] >= medians["SB3 SAC"] - cfg.margin)
    verdict_text = "; ".join(
        f"{env_id}: DSAC-T median {metrics[f'{env_id}/DSAC-T/median_final_return']:.0f} vs "
        f"SAC {metrics[f'{env_id}/SB3 SAC/median_final_return']:.0f} (margin {cfg.margin:.0f})"
        for env_id, _ in cfg.envs
    )
    panels = [
        Panel(
            title=f"{env_id}, {steps} steps",
            xlabel="env step",
            ylabel="deterministic eval return",
            series=[_series(arm, runs[env_id, arm]) for arm in ARMS],
        )
        for env_id, steps in cfg.envs
    ]
    return ExperimentResult(
        name="dsac_t_pendulum",
        paper=PAPER,
        claim="DSAC-T is not worse than SAC at the same budget, seeds and network sizes "
        f"(median final return within {cfg.margin:.0f}).",
        verdict=all(holds),
        verdict_text=verdict_text,
        metrics=metrics,
        table=table,
        panels=panels,
        settings=dataclasses.asdict(cfg),
        seeds=seeds,
    )


def run(
    *, full: bool = False, seeds: int | None = None, progress: ProgressBar | None = None
) -> ExperimentResult:
    """Runs the quick (1 seed, Pendulum) or full (3 seeds, + InvertedPendulum) comparison."""
    cfg = FULL if full else QUICK
    if seeds is not None:
        cfg = dataclasses.replace(cfg, seeds=seeds)
    return run_with(cfg, progress)
