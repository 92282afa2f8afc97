"""DSAC-T: the variance-based gradient adjustment makes the critic insensitive to reward scale.

Paper: Duan et al., "Distributional Soft Actor-Critic with Three Refinements", arXiv 2310.05858,
Fig. 5 (reward-scale ablation): without the variance-based adjustment (refinement 3) no useful
policy is learned at reward scales 0.01 and 0.1, while full DSAC-T performs alike across scales.

Quick form (spec §6.3, the policy-evaluation variant): Pendulum-v1 with rewards × c for
c ∈ {0.1, 1, 10}, a replay buffer of uniformly random transitions (identical across scales but for
the rewards), the initial stochastic policy frozen, and a fixed number of critic updates with
IDENTICAL hyper-parameters. The temperature is fixed at α = 0.2·c so that the soft return itself
scales by exactly c. DSAC-T (σ̄-scaled gradient, clip 3σ̄) is compared with the ablation of a fixed
clip b = 20 and ω = 1. Scale-free quantities: Q/c (mean critic value), σ̄/c and the share of
clipped sampled targets. Claim: DSAC-T's relative spread of Q/c across scales stays small while the
ablation's is larger; σ̄ scales about linearly with c; the clipped share barely moves.

Full form: learning runs (spec §6.3 learning test) for both variants, c ∈ {0.1, 1, 10}, 15k steps,
3 seeds, deterministic returns on the unscaled environment.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from varl.experiments.result import ExperimentResult, Panel, ProgressBar, Series

DESCRIPTION = "DSAC-T (2310.05858): reward scale ×0.1/×1/×10, σ̄-scaled critic vs fixed clip"
PAPER = "Distributional Soft Actor-Critic with Three Refinements (arXiv 2310.05858)"
VARIANTS = {"DSAC-T": "paper", "fixed clip (no σ̄ scaling)": "fixed_clip"}


@dataclass(frozen=True, kw_only=True)
class RewardScaleConfig:
    """Settings of the reward-scale experiment."""

    scales: tuple[float, ...] = (0.1, 1.0, 10.0)
    """Reward multipliers c."""
    mode: str = "evaluation"
    """``evaluation`` (frozen policy, critic updates only) or ``learning`` (full training)."""
    transitions: int = 5000
    """Replay transitions collected with uniform random actions (evaluation mode)."""
    updates: int = 3000
    """Critic updates (evaluation mode)."""
    steps: int = 15_000
    """Env steps per run (learning mode)."""
    seeds: int = 1
    """Number of seeds, 0..seeds-1."""
    hidden: tuple[int, ...] = (128, 128)
    """Network sizes (the small-budget preset's)."""
    batch_size: int = 256
    """Minibatch size."""
    gamma: float = 0.9
    """Discount γ of the critics (0.9 in evaluation mode, so Q converges within ``updates``)."""
    eval_points: int = 10
    """Learning mode: evaluations along training (the last one is the final return)."""
    eval_episodes: int = 10
    """Learning mode: deterministic episodes per evaluation."""
    log_every: int = 100
    """Evaluation mode: record a point of the curves every this many critic updates."""
    q_tolerance: float = 0.2
    """DSAC-T passes when max/min − 1 of |Q/c| across scales is at most this."""
    clip_tolerance: float = 0.15
    """... and the clipped share differs by less than this across scales."""
    return_floor: float = -300.0
    """Learning mode: every scale's median return must reach this ..."""
    return_spread: float = 150.0
    """... and max − min of the medians must stay within this."""


QUICK = RewardScaleConfig()
FULL = RewardScaleConfig(mode="learning", seeds=3, gamma=0.99)


def _dsac_config(cfg: RewardScaleConfig, critic_loss: str, scale: float) -> Any:
    from varl.control.dsac_t import SMALL_BUDGET

    common: dict[str, Any] = {
        "hidden": cfg.hidden,
        "batch_size": cfg.batch_size,
        "critic_loss": critic_loss,
        "gamma": cfg.gamma,
    }
    if cfg.mode == "learning":
        return dataclasses.replace(
            SMALL_BUDGET,
            eval_every=cfg.steps // cfg.eval_points,
            eval_episodes=cfg.eval_episodes,
            **common,
        )
    return dataclasses.replace(
        SMALL_BUDGET,
        auto_alpha=False,
        init_log_alpha=math.log(0.2 * scale),
        learning_starts=cfg.transitions,
        buffer_size=cfg.transitions,
        eval_every=0,
        **common,
    )


def evaluation_run(
    cfg: RewardScaleConfig,
    critic_loss: str,
    scale: float,
    seed: int,
    progress: ProgressBar | None = None,
) -> dict[str, list[float]]:
    """Critic-only updates on a fixed random-action buffer with rewards × ``scale``.

    Returns:
        Curves ``update``, ``q_over_c``, ``sigma_bar_over_c``, ``clip_fraction``.
    """
    import torch

    from varl.control.dsac_t import DSACT
    from varl.control.evaluation import make_env

    torch.set_num_threads(1)
    agent = DSACT(make_env("Pendulum-v1", scale), _dsac_config(cfg, critic_loss, scale), seed=seed)
    agent.learn(cfg.transitions, progress_bar=False)
    logs: dict[str, list[float]] = {
        "update": [],
        "q_over_c": [],
        "sigma_bar_over_c": [],
        "clip_fraction": [],
    }
    window: list[dict[str, float]] = []
    for update in range(1, cfg.updates + 1):
        window.append(agent.train_step(critic_only=True))
        if update % cfg.log_every == 0:
            logs["update"].append(float(update))
            logs["q_over_c"].append(float(np.mean([w["q_mean"] for w in window])) / scale)
            sigma = np.mean([w["sigma_bar_1"] + w["sigma_bar_2"] for w in window]) / 2
            logs["sigma_bar_over_c"].append(float(sigma) / scale)
            logs["clip_fraction"].append(float(np.mean([w["clip_fraction"] for w in window])))
            window = []
        if progress is not None:
            progress.update(1)
    agent.close()
    return logs


def learning_run(
    cfg: RewardScaleConfig,
    critic_loss: str,
    scale: float,
    seed: int,
    progress: ProgressBar | None = None,
) -> dict[str, list[float]]:
    """Full training with rewards × ``scale``; returns ``step`` and unscaled ``return`` curves."""
    import torch

    from varl.control.dsac_t import DSACT
    from varl.control.evaluation import make_env

    torch.set_num_threads(1)
    agent = DSACT(make_env("Pendulum-v1", scale), _dsac_config(cfg, critic_loss, scale), seed=seed)
    # The evaluation environment is a fresh gym.make of the id: returns are on the unscaled env.

    def tick(_: Any) -> None:
        if progress is not None:
            progress.update(1)

    agent.learn(cfg.steps, callback=tick, progress_bar=False)
    agent.close()
    return {
        "step": [e["step"] for e in agent.evaluations],
        "return": [e["return_mean"] for e in agent.evaluations],
    }


def _series(label: str, x: list[float], runs: list[list[float]]) -> Series:
    arr = np.asarray(runs, dtype=np.float64)
    return Series(
        label=label,
        x=list(x),
        mean=arr.mean(axis=0).tolist(),
        low=arr.min(axis=0).tolist(),
        high=arr.max(axis=0).tolist(),
    )


def run_with(cfg: RewardScaleConfig, progress: ProgressBar | None = None) -> ExperimentResult:
    """Runs the experiment with explicit settings (``run`` picks QUICK or FULL)."""
    seeds = list(range(cfg.seeds))
    per_run = cfg.updates if cfg.mode == "evaluation" else cfg.steps
    if progress is not None:
        progress.reset(total=len(VARIANTS) * len(cfg.scales) * len(seeds) * per_run)
    fn = evaluation_run if cfg.mode == "evaluation" else learning_run
    runs = {
        (name, c): [fn(cfg, loss, c, s, progress) for s in seeds]
        for name, loss in VARIANTS.items()
        for c in cfg.scales
    }
    if cfg.mode == "evaluation":
        return _judge_evaluation(cfg, runs, seeds)
    return _judge_learning(cfg, runs, seeds)


def _relative_spread(values: list[float]) -> float:
    mags = np.abs(np.asarray(values))
    return float(mags.max() / max(mags.min(), 1e-12) - 1.0)


def _judge_evaluation(
    cfg: RewardScaleConfig,
    runs: dict[tuple[str, float], list[dict[str, list[float]]]],
    seeds: list[int],
) -> ExperimentResult:
    metrics: dict[str, float] = {}
    final: dict[tuple[str, float], dict[str, float]] = {}
    for (name, c), rs in runs.items():
        final[name, c] = {
            key: float(np.median([r[key][-1] for r in rs]))
            for key in ("q_over_c", "sigma_bar_over_c", "clip_fraction")
        }
        for key, value in final[name, c].items():
            metrics[f"{name}/c={c:g}/{key}"] = value
    spread = {
        name: _relative_spread([final[name, c]["q_over_c"] for c in cfg.scales])
        for name in VARIANTS
    }
    clip_range = {
        name: max(final[name, c]["clip_fraction"] for c in cfg.scales)
        - min(final[name, c]["clip_fraction"] for c in cfg.scales)
        for name in VARIANTS
    }
    # σ̄ ∝ c is checked where σ ≫ √ε (c ≥ 1): below, the ε = 0.1 in ω = σ̄² + ε and in the
    # divisors dominates and σ̄ stays near √ε (reported in the table, spec §6.1 item 6's regime).
    base = final["DSAC-T", min(cfg.scales, key=lambda c: abs(c - 1.0))]["sigma_bar_over_c"]
    sigma_ratio_ok = all(
        0.5 <= final["DSAC-T", c]["sigma_bar_over_c"] / base <= 2.0 for c in cfg.scales if c >= 1.0
    )
    ablation = "fixed clip (no σ̄ scaling)"
    for name in VARIANTS:
        metrics[f"{name}/q_over_c_spread"] = spread[name]
        metrics[f"{name}/clip_fraction_range"] = clip_range[name]
    verdict = (
        spread["DSAC-T"] <= cfg.q_tolerance
        and clip_range["DSAC-T"] < cfg.clip_tolerance
        and sigma_ratio_ok
        and spread[ablation] > spread["DSAC-T"]
    )
    verdict_text = (
        f"Q/c spread across scales: DSAC-T {spread['DSAC-T']:.1%} (≤ {cfg.q_tolerance:.0%} "
        f"required) vs fixed clip {spread[ablation]:.1%}; clipped-share range DSAC-T "
        f"{clip_range['DSAC-T']:.3f} vs fixed clip {clip_range[ablation]:.3f}; "
        f"σ̄ ∝ c for c ≥ 1 {'held' if sigma_ratio_ok else 'failed'}"
    )
    table = [["variant", "c", "Q/c", "σ̄/c", "clipped share"]]
    for (name, c), v in final.items():
        table.append(
            [
                name,
                f"{c:g}",
                f"{v['q_over_c']:.2f}",
                f"{v['sigma_bar_over_c']:.3f}",
                f"{v['clip_fraction']:.3f}",
            ]
        )
    panels = [
        Panel(
            title=f"{key} ({'policy evaluation'})",
            xlabel="critic update",
            ylabel=key,
            series=[
                _series(f"{name} c={c:g}", rs[0]["update"], [r[key] for r in rs])
                for (name, c), rs in runs.items()
            ],
        )
        for key in ("q_over_c", "clip_fraction")
    ]
    return ExperimentResult(
        name="dsac_t_reward_scale",
        paper=PAPER,
        claim="With identical hyper-parameters, DSAC-T's critic learns the same scale-free values "
        "at reward scales 0.1, 1 and 10, while the fixed-clip ablation does not.",
        verdict=bool(verdict),
        verdict_text=verdict_text,
        metrics=metrics,
        table=table,
        panels=panels,
        settings={**dataclasses.asdict(cfg), "variants": VARIANTS},
        seeds=seeds,
        notes=[
            "Quick form is the policy-evaluation variant of spec §6.3 (frozen initial policy, "
            "uniform-random replay buffer, α = 0.2·c fixed, γ = 0.9); --full runs learning "
            "curves.",
            "At c = 0.1 σ̄ stays near √ε ≈ 0.32 (the ε = 0.1 of ω and of the divisors), so σ̄ ∝ c "
            "is only checked for c ≥ 1.",
        ],
    )


def _judge_learning(
    cfg: RewardScaleConfig,
    runs: dict[tuple[str, float], list[dict[str, list[float]]]],
    seeds: list[int],
) -> ExperimentResult:
    metrics: dict[str, float] = {}
    medians: dict[tuple[str, float], float] = {}
    for (name, c), rs in runs.items():
        finals = [r["return"][-1] for r in rs]
        medians[name, c] = float(np.median(finals))
        metrics[f"{name}/c={c:g}/median_return"] = medians[name, c]
        for s, value in zip(seeds, finals, strict=True):
            metrics[f"{name}/c={c:g}/seed{s}"] = value
    spread = {
        name: max(medians[name, c] for c in cfg.scales) - min(medians[name, c] for c in cfg.scales)
        for name in VARIANTS
    }
    ablation = "fixed clip (no σ̄ scaling)"
    worst = min(medians["DSAC-T", c] for c in cfg.scales)
    verdict = worst >= cfg.return_floor and spread["DSAC-T"] <= cfg.return_spread
    verdict = verdict and spread[ablation] > spread["DSAC-T"]
    for name in VARIANTS:
        metrics[f"{name}/median_spread"] = spread[name]
    table = [["variant", *[f"c={c:g}" for c in cfg.scales], "max − min"]]
    for name in VARIANTS:
        table.append(
            [name, *[f"{medians[name, c]:.1f}" for c in cfg.scales], f"{spread[name]:.1f}"]
        )
    panels = [
        Panel(
            title=f"Pendulum-v1, {name}",
            xlabel="env step",
            ylabel="unscaled return",
            series=[
                _series(f"c={c:g}", runs[name, c][0]["step"], [r["return"] for r in runs[name, c]])
                for c in cfg.scales
            ],
        )
        for name in VARIANTS
    ]
    return ExperimentResult(
        name="dsac_t_reward_scale",
        paper=PAPER,
        claim="With identical hyper-parameters, DSAC-T's return varies little across reward "
        "scales 0.1, 1, 10 while the fixed-clip ablation's varies more.",
        verdict=bool(verdict),
        verdict_text=(
            f"median-return spread across scales: DSAC-T {spread['DSAC-T']:.0f} (≤ "
            f"{cfg.return_spread:.0f} required, worst median {worst:.0f} ≥ {cfg.return_floor:.0f}) "
            f"vs fixed clip {spread[ablation]:.0f}"
        ),
        metrics=metrics,
        table=table,
        panels=panels,
        settings={**dataclasses.asdict(cfg), "variants": VARIANTS},
        seeds=seeds,
    )


def run(
    *, full: bool = False, seeds: int | None = None, progress: ProgressBar | None = None
) -> ExperimentResult:
    """Runs the quick (policy-evaluation) or full (learning) form over the seeds."""
    cfg = FULL if full else QUICK
    if seeds is not None:
        cfg = dataclasses.replace(cfg, seeds=seeds)
    return run_with(cfg, progress)
