"""AlignProp vs DDPO at equal reward queries, and diversity under full vs randomised truncation.

Paper: Prabhudesai et al., "Aligning Text-to-Image Diffusion Models with Reward Backpropagation"
(AlignProp), arXiv 2310.03739; spec alignprop_ctrlu.md §4.1 and §6 S1. The paper's claim: reward
backpropagation reaches a given reward with far fewer reward queries than the policy-gradient
baseline DDPO (10-25× at Stable Diffusion scale); §4.1 asks for >= 5× at tiny scale.

Setting: the offline tiny text-to-image model (:func:`varl.diffusion.tiny.tiny_pipeline`, 16×16
pixels, four colour prompts), DDIM with η = 1 and no guidance, LoRA rank 4 on the UNet
attention. Both arms start from the same base weights and LoRA init, draw 8 prompts per batch,
score every image once (one reward query per image) and take one AdamW step per batch of 8
images with the same gradient clip:

- AlignProp: −mean reward backpropagated through the chain, K ~ U{0..T} per batch, lr 1e-2;
- DDPO: PPO-clip on the per-step log-probs, with its own learning rate and per-prompt
  advantages (below); TRL's defaults otherwise: clip 1e-4, advantages clipped to ±5, all T
  steps trained, one inner epoch.

DDPO's settings [O] were chosen by a sweep on seed 100 (not an evaluation seed) and the
brightness reward only, 256 queries (32 batches of 8) per setting; base reward 0.463 on that
seed, "last 8" = mean on-policy reward of the last 8 batches:

==========================================================  =======
setting (changes from the original arm: lr 1e-2, batch adv)  last 8
==========================================================  =======
as AlignProp: lr 1e-2, advantages over the batch (before)     0.517
lr 1e-3                                                       0.460
lr 3e-2                                                       0.546
per-prompt advantages (buffer 16, min count 4), lr 1e-3       0.460
per-prompt, lr 1e-2                                           0.531
per-prompt, lr 3e-2                                           0.556
per-prompt, lr 1e-1                                           0.528
per-prompt, lr 3e-3, 4 inner epochs, clip 1e-2                0.460
per-prompt, lr 3e-3, 16 images/epoch, 2 x 2 updates, clip 0.1 0.471
==========================================================  =======

No bug was found in the DDPO arm: the recomputed log-probs reproduce the sampled ones (ratio
exactly 1 before each update), the advantages are non-zero (mean |A| ≈ 0.8), the LoRA weights
receive gradients and move. With one update per sampled batch every update is on-policy, so the
clip range never binds and the mean-over-pixels log-prob scale is immaterial under Adam. What
held DDPO back was (i) variance: the four prompts' base brightness differs (a yellow square is
brighter than a blue one), so batch-normalised advantages mostly encode which prompt was drawn;
per-prompt normalisation (DDPO's own recommendation) removes that; (ii) a learning rate too low
for 8-sample score-function gradients. By the sweep's criterion (best "last 8") the pick was
per-prompt advantages with lr 3e-2 (0.463 → 0.556). It proved unstable: at lr >= 3e-2 the
brightness curves jump and then fall back (lr 1e-1: up by ~40 queries, back to 0.53; batch
advantages at 3e-2: peak 0.66 near 130 queries, back to 0.55), on seed 100 with the redness
reward it climbed from −0.70 to −0.57 and then crashed to −0.93 within 12 batches, and in the
quick form (evaluation seeds 0-2) it drove redness to −1.13 and −TV to −0.47 (bases −0.70 and
−0.08). The arm therefore uses the runner-up, per-prompt advantages at lr 1e-2 (0.531, within
noise of 0.556; standard error of a "last 8" ≈ 0.015). This change was made after seeing the
quick-form numbers, which we state rather than hide; it does not move the verdict (no setting
tried made DDPO improve within 96 queries). Quick form, DDPO "last ¼" on the evaluation seeds
(bases 0.458 / −0.695 / −0.078 for brightness / redness / −TV):

=====================================  ==========  ========  =======
DDPO setting                           brightness  redness   −TV
=====================================  ==========  ========  =======
batch advantages, lr 1e-2 (before)     0.460       −0.700    −0.080
per-prompt, lr 1e-2 (used)             0.458       −0.720    −0.086
per-prompt, lr 3e-2 (sweep's pick)     0.443       −1.130    −0.468
=====================================  ==========  ========  =======

Every setting that rose plateaued near 0.53-0.56 on the sweep seed (AlignProp nears 1.0), and
the quick budget (96 queries) cannot resolve a 5× ratio in any case (AlignProp's q½ is 40-72
queries, so Q >= 5 q½ needs >= 200-360), so the quick verdict is False by construction; the
full form (1000 queries) is the one that can test the claim.

Rewards (all higher-is-better, :mod:`varl.diffusion.rewards`): brightness, redness
(−distance to pure red) and −total variation (a compressibility proxy).

Measured "queries to half the achievable gain" (our definition [O]): r̄_m(q) is arm m's
seed-mean on-policy batch reward after q queries, smoothed by a trailing mean over 3 batches;
r_0 is the base model's mean reward (32 images per seed); the achievable gain G is the best
smoothed level either arm reached within the budget minus r_0; q_m is the first q with
r̄_m(q) >= r_0 + G/2. The ratio is q_DDPO / q_AlignProp; when DDPO never gets there it is
reported as a lower bound "> Q / q_AlignProp" (Q the budget). An arm "improved over the base"
when its mean over the last quarter of the batches exceeds r_0 by more than two standard errors
(of those batch means, over seeds). The claim holds when, for every reward, the ratio (or its
lower bound) is >= 5 and both arms improved (DDPO sanity).

Diversity: AlignProp with full backpropagation (K = T) against randomised K on the brightness
reward; the mean pairwise L2 distance between images sampled from fixed noises for the same
prompt, averaged over prompts. Reported with the reward reached (the paper saw full BPTT
collapse); only loosely gated: ``diversity_gate_held`` is full <= 1.1 × randomised.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from varl.experiments.result import ExperimentResult, Panel, ProgressBar, Series

DESCRIPTION = "AlignProp (2310.03739): reward backprop vs DDPO at equal reward queries, tiny UNet"
PAPER = (
    "Aligning Text-to-Image Diffusion Models with Reward Backpropagation (AlignProp, "
    "arXiv 2310.03739)"
)
ARMS = ("AlignProp", "DDPO")
REWARDS = ("brightness", "redness", "tv")
FloatArray = NDArray[np.float64]
DDPO_LR = 1e-2
"""DDPO's learning rate, from the sweep in the module docstring (the same as AlignProp's)."""
DDPO_PROMPT_BUFFER = 16
"""Rewards kept per prompt for DDPO's per-prompt advantages (TRL's default)."""
DDPO_PROMPT_MIN_COUNT = 4
"""Rewards a prompt needs before its own statistics are used (TRL's 16 would mean the first
eight batches use batch statistics)."""


@dataclass(frozen=True, kw_only=True)
class AlignPropExperimentConfig:
    """Settings of the comparison."""

    rewards: tuple[str, ...] = REWARDS
    """Rewards compared (names of :func:`varl.diffusion.alignprop.reward_by_name`)."""
    num_steps: int = 5
    """T, DDIM steps (η = 1, no guidance)."""
    batch_size: int = 8
    """Images per batch = reward queries per optimiser step, both arms."""
    batches: int = 12
    """Batches per run; the query budget Q is ``batches × batch_size``."""
    lr: float = 1e-2
    """AdamW learning rate of AlignProp (10× TRL's AlignProp default: at 1e-3 it does not move
    measurably within these budgets)."""
    ddpo_lr: float = DDPO_LR
    """AdamW learning rate of DDPO, chosen by the sweep in the module docstring."""
    ddpo_per_prompt: bool = True
    """DDPO normalises rewards per prompt over a running buffer (16 rewards, own statistics
    from 4 on) instead of over the batch (the sweep in the module docstring)."""
    smooth: int = 3
    """Batches in the trailing mean of the reward curves."""
    base_images: int = 32
    """Images per seed scored to measure the base reward r_0."""
    diversity_reward: str = "brightness"
    """Reward of the full-vs-randomised-K diversity runs ("" skips them)."""
    diversity_images: int = 6
    """Images per prompt for the pairwise diversity (fixed noises)."""
    ratio_target: float = 5.0
    """The claim's factor: AlignProp needs this many times fewer queries."""
    seeds: int = 3
    """Number of seeds."""
    pretrain_steps: int | None = None
    """Pretraining steps of the tiny base model (None: its default, cached once per machine)."""


QUICK = AlignPropExperimentConfig()
FULL = AlignPropExperimentConfig(batches=125, base_images=64, diversity_images=8)
"""1000 queries per run: AlignProp nears saturation on brightness after ~480 (q½ ≈ 160 there),
so a budget of ~1000 is what can resolve a 5× ratio when DDPO stays flat."""


def _pipeline(cfg: AlignPropExperimentConfig) -> Any:
    """A fresh copy of the pretrained tiny pipeline (loaded from the cache)."""
    from varl.diffusion.tiny import TinyDiffusionConfig, tiny_pipeline

    tiny = TinyDiffusionConfig()
    if cfg.pretrain_steps is not None:
        tiny = dataclasses.replace(tiny, pretrain_steps=cfg.pretrain_steps)
    return tiny_pipeline(tiny)


def _prompt_function() -> tuple[str, dict[str, Any]]:
    from varl.diffusion.tiny import PROMPTS

    return random.choice(PROMPTS), {}  # the trainers seed `random`


def _trainer(arm: str, reward: str, cfg: AlignPropExperimentConfig, seed: int, k: str) -> Any:
    from varl.diffusion import alignprop, ddpo
    from varl.diffusion.truncation import TruncationSchedule

    pipeline = _pipeline(cfg)
    reward_fn = alignprop.reward_by_name(reward, pipeline, seed=seed)
    common: dict[str, Any] = {
        "seed": seed,
        "logdir": None,
        "num_epochs": cfg.batches,
        "sample_num_steps": cfg.num_steps,
        "sample_eta": 1.0,
        "sample_guidance_scale": 1.0,
        "train_batch_size": cfg.batch_size,
    }
    if arm == "AlignProp":
        truncation = (
            TruncationSchedule.fixed(cfg.num_steps)
            if k == "full"
            else TruncationSchedule.uniform(0, cfg.num_steps)
        )
        config = alignprop.AlignPropConfig(
            **common,
            train_learning_rate=cfg.lr,
            truncation=truncation,
            gradient_checkpointing=False,
        )
        return alignprop.AlignPropTrainer(config, reward_fn, _prompt_function, pipeline)
    config_d = ddpo.DDPOConfig(
        **common,
        train_learning_rate=cfg.ddpo_lr,
        sample_batch_size=cfg.batch_size,
        sample_num_batches_per_epoch=1,
        per_prompt_stat_tracking=cfg.ddpo_per_prompt,
        per_prompt_stat_tracking_buffer_size=DDPO_PROMPT_BUFFER,
        per_prompt_stat_tracking_min_count=DDPO_PROMPT_MIN_COUNT,
    )
    return ddpo.DDPOTrainer(config_d, reward_fn, _prompt_function, pipeline)


def _base_reward(reward: str, cfg: AlignPropExperimentConfig, seed: int) -> float:
    """Mean reward of the base model on ``base_images`` images (seeded noises)."""
    import torch

    from varl.diffusion import alignprop
    from varl.diffusion.sampling import sample_images
    from varl.diffusion.tiny import PROMPTS

    pipeline = _pipeline(cfg)
    reward_fn = alignprop.reward_by_name(reward, pipeline, seed=seed)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(cfg.base_images)]
    gen = torch.Generator().manual_seed(50_000 + seed)
    with torch.no_grad():
        out = sample_images(pipeline, prompts, num_steps=cfg.num_steps, eta=1.0, generator=gen)
        rewards, _ = reward_fn(out.images, tuple(prompts), tuple({} for _ in prompts))
    return float(rewards.mean())


def diversity(pipeline: Any, *, num_steps: int, per_prompt: int, seed: int) -> float:
    """Mean pairwise L2 distance between ``per_prompt`` images of the same prompt.

    Images are sampled with η = 1 from the same seeded noises for every model, so two models
    are compared on identical x_T and step noises. The distance is the Euclidean norm of the
    difference of two ``[3, H, W]`` images in [0, 1], averaged over all pairs and prompts.
    """
    import torch

    from varl.diffusion.sampling import sample_images
    from varl.diffusion.tiny import PROMPTS

    values = []
    for p, prompt in enumerate(PROMPTS):
        gen = torch.Generator().manual_seed(70_000 + 100 * seed + p)
        with torch.no_grad():
            images = sample_images(
                pipeline, [prompt] * per_prompt, num_steps=num_steps, eta=1.0, generator=gen
            ).images.flatten(1)
        dist = torch.cdist(images.double(), images.double())
        iu = torch.triu_indices(per_prompt, per_prompt, offset=1)
        values.append(float(dist[iu[0], iu[1]].mean()))
    return float(np.mean(values))


def smooth_curve(values: FloatArray, window: int) -> FloatArray:
    """Trailing mean over ``window`` points (fewer at the start)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - window, 0)
    out: FloatArray = (cumulative[idx] - cumulative[start]) / (idx - start)
    return out


def queries_to_level(curve: FloatArray, queries: FloatArray, level: float) -> float | None:
    """The first query count at which ``curve`` reaches ``level``, or None if never."""
    hit = np.nonzero(curve >= level)[0]
    return float(queries[hit[0]]) if hit.size else None


def improved(batch_means: FloatArray, base: float) -> tuple[bool, float, float]:
    """Whether the last quarter of ``[seeds, batches]`` batch means exceeds ``base`` by more
    than two standard errors; returns (held, mean, standard error)."""
    n_last = max(1, batch_means.shape[1] // 4)
    last = batch_means[:, -n_last:].ravel()
    mean = float(last.mean())
    se = float(last.std(ddof=1) / np.sqrt(last.size)) if last.size > 1 else float("inf")
    return mean - base > 2 * se, mean, se


def run(
    *, full: bool = False, seeds: int | None = None, progress: ProgressBar | None = None
) -> ExperimentResult:
    """Runs both arms on every reward and seed, and the diversity runs; see the module
    docstring for the measured quantities and the verdict."""
    import time

    cfg = FULL if full else QUICK
    n_seeds = cfg.seeds if seeds is None else seeds
    return run_config(cfg, n_seeds, progress=progress, full=full, start=time.perf_counter())


def run_config(
    cfg: AlignPropExperimentConfig,
    n_seeds: int,
    *,
    progress: ProgressBar | None = None,
    full: bool = False,
    start: float | None = None,
) -> ExperimentResult:
    """:func:`run` with an explicit configuration (tests use a reduced one)."""
    import time

    import torch

    torch.set_num_threads(1)
    start = time.perf_counter() if start is None else start
    _pipeline(cfg)  # pretrain and cache the base model once, with gradients enabled
    diversity_runs = 1 if cfg.diversity_reward else 0
    if progress is not None:
        progress.reset(total=(len(cfg.rewards) * 2 + diversity_runs) * n_seeds * cfg.batches)
    queries = cfg.batch_size * np.arange(1, cfg.batches + 1, dtype=np.float64)
    budget = float(queries[-1])
    curves: dict[tuple[str, str], FloatArray] = {}
    bases: dict[str, float] = {}
    div: dict[str, list[float]] = {"base": [], "randomised K": [], "full K = T": []}
    div_reward: dict[str, list[float]] = {"randomised K": [], "full K = T": []}
    for reward in cfg.rewards:
        bases[reward] = float(np.mean([_base_reward(reward, cfg, s) for s in range(n_seeds)]))
        for arm in ARMS:
            rows = []
            for seed in range(n_seeds):
                trainer = _trainer(arm, reward, cfg, seed, "random")
                history = _train(trainer, cfg.batches, progress)
                rows.append([h["reward_mean"] for h in history])
                if arm == "AlignProp" and reward == cfg.diversity_reward:
                    div["randomised K"].append(_diversity(trainer.pipeline, cfg, seed))
                    div_reward["randomised K"].append(float(np.mean(rows[-1][-cfg.smooth :])))
            curves[(reward, arm)] = np.asarray(rows, dtype=np.float64)
    if cfg.diversity_reward:
        for seed in range(n_seeds):
            div["base"].append(_diversity(_pipeline(cfg), cfg, seed))
            trainer = _trainer("AlignProp", cfg.diversity_reward, cfg, seed, "full")
            history = _train(trainer, cfg.batches, progress)
            div["full K = T"].append(_diversity(trainer.pipeline, cfg, seed))
            div_reward["full K = T"].append(
                float(np.mean([h["reward_mean"] for h in history][-cfg.smooth :]))
            )
    return _result(cfg, n_seeds, full, queries, budget, curves, bases, div, div_reward, start)


def _train(trainer: Any, batches: int, progress: ProgressBar | None) -> list[dict[str, float]]:
    """Train batch by batch, advancing the experiment's bar (not handed to the trainer, whose
    ``train`` would reset it)."""
    for done in range(1, batches + 1):
        trainer.train(done, progress=False)
        if progress is not None:
            progress.update(1)
    history: list[dict[str, float]] = trainer.history
    return history


def _diversity(pipeline: Any, cfg: AlignPropExperimentConfig, seed: int) -> float:
    return diversity(pipeline, num_steps=cfg.num_steps, per_prompt=cfg.diversity_images, seed=seed)


def _result(
    cfg: AlignPropExperimentConfig,
    n_seeds: int,
    full: bool,
    queries: FloatArray,
    budget: float,
    curves: dict[tuple[str, str], FloatArray],
    bases: dict[str, float],
    div: dict[str, list[float]],
    div_reward: dict[str, list[float]],
    start: float,
) -> ExperimentResult:
    import time

    metrics: dict[str, float] = {}
    table = [
        ["reward", "base r0", "AlignProp last ¼", "DDPO last ¼", "q½ AlignProp", "q½ DDPO",
         "ratio DDPO/AlignProp"],
    ]  # fmt: skip
    panels = []
    holds = []
    summaries = []
    for reward in cfg.rewards:
        base = bases[reward]
        smoothed = {arm: smooth_curve(curves[(reward, arm)].mean(0), cfg.smooth) for arm in ARMS}
        per_seed = {
            arm: np.stack([smooth_curve(c, cfg.smooth) for c in curves[(reward, arm)]])
            for arm in ARMS
        }
        gain = max(float(s.max()) for s in smoothed.values()) - base
        level = base + gain / 2
        q_half = {arm: queries_to_level(smoothed[arm], queries, level) for arm in ARMS}
        ups = {arm: improved(curves[(reward, arm)], base) for arm in ARMS}
        q_a, q_d = q_half["AlignProp"], q_half["DDPO"]
        if gain <= 0 or q_a is None:
            ratio, bound, text = float("nan"), False, "n/a (no gain)"
        elif q_d is None:
            ratio, bound, text = budget / q_a, True, f"> {budget / q_a:.1f}"
            if ratio < cfg.ratio_target:
                text += f" (unresolved: Q < {cfg.ratio_target:g} q½)"
        else:
            ratio, bound, text = q_d / q_a, False, f"{q_d / q_a:.1f}"
        held = bool(
            np.isfinite(ratio)
            and ratio >= cfg.ratio_target
            and ups["AlignProp"][0]
            and ups["DDPO"][0]
        )
        holds.append(held)
        metrics[f"{reward}/base_reward"] = base
        metrics[f"{reward}/achievable_gain"] = gain
        metrics[f"{reward}/ratio"] = ratio
        metrics[f"{reward}/ratio_is_lower_bound"] = float(bound)
        for arm in ARMS:
            metrics[f"{reward}/{arm}/queries_to_half_gain"] = (
                float("nan") if q_half[arm] is None else float(q_half[arm])  # type: ignore[arg-type]
            )
            metrics[f"{reward}/{arm}/last_quarter_reward"] = ups[arm][1]
            metrics[f"{reward}/{arm}/improved"] = float(ups[arm][0])
            for seed in range(n_seeds):
                metrics[f"{reward}/{arm}/final_reward_seed{seed}"] = float(
                    curves[(reward, arm)][seed, -cfg.smooth :].mean()
                )
        table.append([
            reward, f"{base:.4f}", f"{ups['AlignProp'][1]:.4f}", f"{ups['DDPO'][1]:.4f}",
            "—" if q_a is None else f"{q_a:.0f}", "—" if q_d is None else f"{q_d:.0f}", text,
        ])  # fmt: skip
        summaries.append(
            f"{reward}: ratio {text}"
            + ("" if ups["DDPO"][0] else " (DDPO did not improve)")
            + ("" if ups["AlignProp"][0] else " (AlignProp did not improve)")
        )
        panels.append(
            Panel(
                title=f"{reward} reward vs reward queries (trailing mean of {cfg.smooth})",
                xlabel="reward queries (images scored)",
                ylabel=f"{reward} reward",
                series=[
                    Series(
                        label=arm,
                        x=queries.tolist(),
                        mean=smoothed[arm].tolist(),
                        low=per_seed[arm].min(0).tolist(),
                        high=per_seed[arm].max(0).tolist(),
                    )
                    for arm in ARMS
                ]
                + [
                    Series(
                        label="base r0",
                        x=[float(queries[0]), budget],
                        mean=[base, base],
                        low=[base, base],
                        high=[base, base],
                    )
                ],
            )
        )  # fmt: skip
    verdict = all(holds)
    notes = [
        f"Budget Q = {budget:.0f} reward queries per run ({cfg.batches} batches of "
        f"{cfg.batch_size}), T = {cfg.num_steps} DDIM steps, lr {cfg.lr} (AlignProp) and "
        f"{cfg.ddpo_lr} (DDPO, from a sweep on a separate seed), DDPO advantages "
        f"{'per prompt' if cfg.ddpo_per_prompt else 'over the batch'}.",
        "When DDPO never reaches r0 + G/2 within Q, its ratio is the lower bound Q / q_AlignProp;"
        " a budget Q < 5 q_AlignProp cannot show a 5x ratio, and the claim is then not "
        "confirmed (verdict False) even though DDPO is behind.",
        "Both arms take one AdamW step per batch of 8 images, so DDPO's TRL-default clip "
        "range (1e-4) never binds: every update is on-policy.",
    ]
    div_text = ""
    if div["base"]:
        d_rand, d_full = float(np.mean(div["randomised K"])), float(np.mean(div["full K = T"]))
        gate = d_full <= 1.1 * d_rand
        metrics.update({
            "diversity/base": float(np.mean(div["base"])),
            "diversity/randomised_K": d_rand,
            "diversity/full_K": d_full,
            "diversity/randomised_K_reward": float(np.mean(div_reward["randomised K"])),
            "diversity/full_K_reward": float(np.mean(div_reward["full K = T"])),
            "diversity_gate_held": float(gate),
        })  # fmt: skip
        table.append(["diversity (mean pairwise L2)", f"base {np.mean(div['base']):.3f}",
                      f"rand K {d_rand:.3f}", f"full K {d_full:.3f}", "", "",
                      f"reward {np.mean(div_reward['randomised K']):.3f} vs "
                      f"{np.mean(div_reward['full K = T']):.3f}"])  # fmt: skip
        div_text = (
            f" Diversity ({cfg.diversity_reward}): base {np.mean(div['base']):.3f}, randomised K "
            f"{d_rand:.3f}, full K = T {d_full:.3f} (loose gate full <= 1.1 x randomised "
            f"{'held' if gate else 'failed'})."
        )
        notes.append(
            "Diversity is compared at the end of equal budgets, not at matched reward gain; the "
            "full-K arm gets more gradient per step, so part of any difference is its extra "
            "reward gain. Raw pairwise L2 also grows with image contrast (brighter, more "
            "saturated images differ more in absolute terms), so it is a weak collapse measure "
            "at this scale; it is reported, not part of the verdict."
        )
    return ExperimentResult(
        name="alignprop",
        paper=PAPER,
        claim=f"Reward backpropagation (AlignProp) needs >= {cfg.ratio_target:g}x fewer reward "
        "queries than DDPO to reach half of the achievable reward gain, with both improving "
        "over the base model.",
        verdict=verdict,
        verdict_text="Queries to half the achievable gain, DDPO / AlignProp: "
        + "; ".join(summaries)
        + f" (target >= {cfg.ratio_target:g}x, budget {budget:.0f} queries)."
        + div_text,
        metrics=metrics,
        table=table,
        panels=panels,
        settings={**asdict(cfg), "seeds": n_seeds, "full": full},
        seeds=list(range(n_seeds)),
        seconds=time.perf_counter() - start,
        notes=notes,
    )
