"""GUI-G²: dense Gaussian grounding rewards keep GRPO groups alive where hit rewards do not.

Paper: Tang et al., "GUI-G²: Gaussian Reward Modeling for GUI Grounding", arXiv 2507.15846.
Central claim reproduced here (the mechanism behind its Table 3 ablation, 87.4 → 92.1 → 93.3 on
ScreenSpot-v2): a Gaussian point reward beats a sparse hit reward, and adding the Gaussian coverage
reward beats point-only, because dense rewards leave fewer zero-variance ("dead") GRPO groups.

The task is the synthetic one of ``specs/gui_g2_dip_r1.md`` §4, at a scale a CPU runs in seconds:
``n_screens`` screens, each with one target box (centre ~ U[0.1, 0.9]², width and height
~ U[0.02, 0.12], normalised coordinates). The policy for each screen is a Gaussian over
``(cx, cy, log w, log h)`` with a fixed std; GRPO draws ``group_size`` boxes per screen, scores
them, normalises the rewards within the group (unbiased std + 1e-4) and takes a REINFORCE step on
the mean. Hit rate is measured at the policy mean (centre inside the target box).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from varl.experiments.result import ExperimentResult, Panel, ProgressBar, Series
from varl.rewards.spatial import (
    gaussian_point_reward,
    gui_grounding_reward,
    hit_reward,
    iou_threshold_reward,
)

DESCRIPTION = "GUI-G² (2507.15846): Gaussian point+coverage vs point-only vs hit/IoU rewards"
PAPER = "GUI-G²: Gaussian Reward Modeling for GUI Grounding (arXiv 2507.15846)"

FloatArray = NDArray[np.float64]
RewardFn = Callable[[FloatArray, FloatArray], FloatArray]

# Arms in the order the paper ranks them (Table 3: 85.8, 87.4, 92.1, 93.3 on ScreenSpot-v2).
ARMS: dict[str, RewardFn] = {
    "IoU>=0.5": lambda pred, gt: iou_threshold_reward(pred, gt, threshold=0.5),
    "hit": hit_reward,
    "point": lambda pred, gt: gaussian_point_reward(pred, gt, alpha=0.5),
    "point+coverage": lambda pred, gt: gui_grounding_reward(pred, gt, alpha=0.5),
}


@dataclass(frozen=True, kw_only=True)
class GuiG2Config:
    """Settings of the synthetic grounding task (spec §4 values are the quick defaults)."""

    n_screens: int = 64
    """Number of screens, i.e. prompts; each has its own Gaussian policy."""
    group_size: int = 8
    """GRPO group size G (GUI-G² trains with 8 generations per prompt)."""
    steps: int = 300
    """GRPO steps; every screen is updated at every step."""
    policy_std: float = 0.15
    """Fixed std of the policy over (cx, cy, log w, log h)."""
    lr: float = 0.05
    """Step size on the policy mean."""
    seeds: int = 3
    """Number of seeds, 0..seeds-1."""
    log_every: int = 10
    """Record metrics every this many steps."""
    dead_std: float = 1e-8
    """A group whose reward std is below this gives no gradient (a "dead" group)."""


QUICK = GuiG2Config()
FULL = GuiG2Config(n_screens=256, steps=600, seeds=5)


def _make_screens(rng: np.random.Generator, n: int) -> FloatArray:
    centre = rng.uniform(0.1, 0.9, size=(n, 2))
    size = rng.uniform(0.02, 0.12, size=(n, 2))
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def _to_box(params: FloatArray) -> FloatArray:
    """Maps policy samples ``[..., 4]`` = (cx, cy, log w, log h) to boxes (x1, y1, x2, y2)."""
    centre, half = params[..., :2], np.exp(params[..., 2:]) / 2
    return np.concatenate([centre - half, centre + half], axis=-1)


def run_arm(
    reward_fn: RewardFn, cfg: GuiG2Config, seed: int, progress: ProgressBar | None = None
) -> dict[str, FloatArray]:
    """Trains one reward arm on one seed and returns its logged curves.

    Returns:
        ``step``, ``hit_rate``, ``dead_groups`` (fraction of groups with reward std below
        ``cfg.dead_std``) and ``group_std`` (mean within-group reward std), each ``[n_logs]``.
    """
    rng = np.random.default_rng(seed)
    gt = _make_screens(rng, cfg.n_screens)  # [S, 4]
    mu = np.tile([0.5, 0.5, np.log(0.1), np.log(0.1)], (cfg.n_screens, 1))  # [S, 4]
    logs: dict[str, list[float]] = {"step": [], "hit_rate": [], "dead_groups": [], "group_std": []}
    for step in range(cfg.steps + 1):
        noise = rng.standard_normal((cfg.n_screens, cfg.group_size, 4))
        samples = mu[:, None, :] + cfg.policy_std * noise  # [S, G, 4]
        rewards = reward_fn(_to_box(samples), gt[:, None, :])  # [S, G]
        std = rewards.std(axis=1, ddof=1)
        if step % cfg.log_every == 0:
            logs["step"].append(step)
            logs["hit_rate"].append(float(hit_reward(_to_box(mu), gt).mean()))
            logs["dead_groups"].append(float((std < cfg.dead_std).mean()))
            logs["group_std"].append(float(std.mean()))
        if step == cfg.steps:
            break
        adv = (rewards - rewards.mean(axis=1, keepdims=True)) / (std[:, None] + 1e-4)
        # Natural-gradient REINFORCE: sigma^2 * d/dmu log N(x; mu, sigma^2) = (x - mu).
        mu = mu + cfg.lr * (adv[..., None] * (samples - mu[:, None, :])).mean(axis=1)
        if progress is not None:
            progress.update(1)
    return {k: np.asarray(v, dtype=np.float64) for k, v in logs.items()}


def _series(label: str, runs: list[dict[str, FloatArray]], key: str) -> Series:
    stacked = np.stack([r[key] for r in runs])
    return Series(
        label=label,
        x=runs[0]["step"].tolist(),
        mean=stacked.mean(axis=0).tolist(),
        low=stacked.min(axis=0).tolist(),
        high=stacked.max(axis=0).tolist(),
    )


def run(
    *, full: bool = False, seeds: int | None = None, progress: ProgressBar | None = None
) -> ExperimentResult:
    """Runs every arm over the seeds and judges the claim.

    The claim holds when, averaged over seeds, point+coverage ends above point-only, which ends
    above the hit reward, on hit rate, and point+coverage has a smaller mean share of dead groups
    over training than point-only and hit.
    """
    cfg = FULL if full else QUICK
    n_seeds = cfg.seeds if seeds is None else seeds
    if progress is not None:
        progress.reset(total=len(ARMS) * n_seeds * cfg.steps)
    runs = {
        arm: [run_arm(fn, cfg, seed, progress) for seed in range(n_seeds)]
        for arm, fn in ARMS.items()
    }
    final_hit = {arm: float(np.mean([r["hit_rate"][-1] for r in rs])) for arm, rs in runs.items()}
    mean_dead = {arm: float(np.mean([r["dead_groups"] for r in rs])) for arm, rs in runs.items()}
    early_std = {
        arm: float(np.mean([r["group_std"][r["step"] <= 100] for r in rs]))
        for arm, rs in runs.items()
    }
    verdict = final_hit["point+coverage"] > final_hit["point"] > final_hit["hit"] and mean_dead[
        "point+coverage"
    ] < min(mean_dead["point"], mean_dead["hit"])
    metrics: dict[str, float] = {}
    for arm, rs in runs.items():
        metrics[f"{arm}/final_hit_rate"] = final_hit[arm]
        metrics[f"{arm}/mean_dead_groups"] = mean_dead[arm]
        metrics[f"{arm}/group_std_steps_0_100"] = early_std[arm]
        for seed, r in enumerate(rs):
            metrics[f"{arm}/seed{seed}/final_hit_rate"] = float(r["hit_rate"][-1])
    table = [["reward", "final hit rate", "dead groups (mean)", "group std (steps 0-100)"]] + [
        [arm, f"{final_hit[arm]:.3f}", f"{mean_dead[arm]:.3f}", f"{early_std[arm]:.3f}"]
        for arm in ARMS
    ]
    panels = [
        Panel(
            title=title,
            xlabel="GRPO step",
            ylabel=ylabel,
            series=[_series(arm, rs, key) for arm, rs in runs.items()],
        )
        for key, title, ylabel in (
            ("hit_rate", "hit rate of the policy mean", "hit rate"),
            ("dead_groups", "zero-variance groups", "fraction of groups"),
            ("group_std", "mean within-group reward std", "std"),
        )
    ]
    hits = ", ".join(f"{arm} {final_hit[arm]:.3f}" for arm in ("point+coverage", "point", "hit"))
    verdict_text = (
        f"Final hit rate: {hits}. Mean share of dead groups: "
        f"point+coverage {mean_dead['point+coverage']:.3f}, point {mean_dead['point']:.3f}, "
        f"hit {mean_dead['hit']:.3f}."
    )
    return ExperimentResult(
        name="gui_g2",
        paper=PAPER,
        claim="Point+coverage Gaussian rewards reach a higher hit rate than point-only, which "
        "beats the sparse hit reward, and leave fewer zero-variance GRPO groups.",
        verdict=verdict,
        verdict_text=verdict_text,
        metrics=metrics,
        table=table,
        panels=panels,
        settings={**asdict(cfg), "seeds": n_seeds, "alpha": 0.5, "full": full},
        seeds=list(range(n_seeds)),
    )
