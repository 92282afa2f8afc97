"""DDPO: PPO-clip over the per-step DDIM log-probabilities, the baseline AlignProp is compared with.

Papers: Black et al., "Training Diffusion Models with Reinforcement Learning" (DDPO), arXiv
2305.13301; Prabhudesai et al., AlignProp, arXiv 2310.03739 (which compares against it at equal
reward queries). Spec alignprop_ctrlu.md §4.1 and §5. TRL shipped this as ``DDPOTrainer`` /
``DDPOConfig`` until it removed them in 0.23; the signatures and config field names here are
TRL's, so a TRL script moves over by changing its imports:

    trainer = DDPOTrainer(config, reward_function, prompt_function, sd_pipeline)
    trainer.train()
    trainer.save_lora("out/lora")

with ``prompt_function() -> (prompt, metadata)`` and
``reward_function(images [B, 3, H, W] in [0, 1], prompts, metadata) -> (rewards [B], info)``;
unlike AlignProp's, the reward need not be differentiable (it is called under ``no_grad``, so a
uint8/PIL/JPEG scorer is fine).

One epoch (the algorithm reads top to bottom in :meth:`DDPOTrainer.step`):

1. *Sample* ``sample_num_batches_per_epoch`` batches of ``sample_batch_size`` prompts and run the
   DDIM chain with η = ``sample_eta`` (> 0, a stochastic policy), keeping every latent x_{t_i} and
   the log-probability of every transition (:func:`varl.diffusion.sampling.ddim_sample`).
2. *Score* the images: one reward query per image.
3. *Advantages*: normalised over the epoch's samples, or per prompt with a running buffer
   (:class:`~varl.diffusion.ddpo_math.PerPromptStatTracker`), then clipped to
   ±``train_adv_clip_max``.
4. *Train* ``train_num_inner_epochs`` passes over the shuffled samples in batches of
   ``train_batch_size``: at each of a random ``train_timestep_fraction`` of the steps, recompute
   the transition's log-probability under the current LoRA weights
   (:func:`~varl.diffusion.sampling.ddim_transition_log_prob`) and descend the PPO-clipped
   surrogate (:func:`~varl.diffusion.ddpo_math.clipped_surrogate`); gradients are accumulated
   over the steps and ``train_gradient_accumulation_steps`` batches, clipped to
   ``train_max_grad_norm``, and AdamW steps.

Only LoRA adapters on the UNet's attention projections train (:func:`varl.diffusion.lora.add_lora`,
the same setup as AlignProp); the UNet stays in eval mode, so the recomputed log-probabilities
equal the stored ones before the first update (ratio exactly 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from varl._checks import check_int, check_real
from varl._progress import ProgressBar
from varl.diffusion.ddpo_math import (
    PerPromptStatTracker,
    approx_kl,
    batch_advantages,
    clip_advantages,
    clip_fraction,
    clipped_surrogate,
    train_step_indices,
)
from varl.diffusion.lora import (
    add_lora,
    load_lora_state_dict,
    lora_state_dict,
    save_lora,
)
from varl.diffusion.sampling import (
    check_pipeline,
    ddim_schedule,
    ddim_std,
    ddim_transition_log_prob,
    sample_images,
)
from varl.diffusion.trainer_io import (
    CHECKPOINT_PREFIX,
    CLI_KEYS,
    STATE_FILE,
    draw_prompts,
    global_rng_state,
    load_pipeline,
    load_trainer_state,
    log_metrics,
    lora_output_dir,
    open_tensorboard,
    progress_bar,
    resolve_checkpoint,
    resume_target,
    reward_by_name,
    save_image_grid,
    seed_global_rngs,
    set_global_rng_state,
    split_trainer_config,
    uniform_prompt_function,
    write_checkpoint,
)

__all__ = [
    "CHECKPOINT_PREFIX",
    "CONFIG_KEYS",
    "STATE_FILE",
    "TINY_TRAIN_DEFAULTS",
    "DDPOConfig",
    "DDPOTrainer",
    "EpochSamples",
    "jpeg_size_reward",
    "resolve_checkpoint",
    "rewards_to_array",
    "train_from_config",
    "trainable_steps",
]

PromptFunction = Callable[[], tuple[str, Any]]
RewardFunction = Callable[[Tensor, tuple[str, ...], tuple[Any, ...]], tuple[Any, dict[str, Any]]]
ImageSamplesHook = Callable[[dict[str, Any], int, Any], None]


@dataclass(frozen=True, kw_only=True)
class DDPOConfig:
    """Settings of :class:`DDPOTrainer`; names and defaults are TRL's ``DDPOConfig``'s.

    TRL's accelerate/tracker plumbing (``log_with``, ``tracker_*``, ``accelerator_kwargs``,
    ``mixed_precision``, ``allow_tf32``, ``train_use_8bit_adam``, ``async_reward_computation``,
    ``max_workers``, ``push_to_hub``) has no counterpart: varl trains in the pipeline's dtype
    on its device, logs to a CSV file (and TensorBoard when installed), and computes rewards
    in the loop. ``lora_rank`` and ``gradient_checkpointing`` are varl's additions.
    """

    seed: int = 0
    """Seeds the LoRA init, the sampling noise, the shuffles and the timestep subsets."""
    logdir: str | None = "logs"
    """Folder for ``metrics.csv``, TensorBoard scalars, image grids and ``checkpoints/``;
    None writes nothing."""
    num_epochs: int = 100
    """Outer epochs (sample, then train) that :meth:`DDPOTrainer.train` runs up to."""
    save_freq: int = 1
    """Epochs between checkpoints (0: never)."""
    num_checkpoint_limit: int = 5
    """Checkpoints kept; older ones are deleted (0: keep all)."""
    log_image_freq: int = 1
    """Epochs between image-grid PNGs of the first sampled batch (0: never)."""
    resume_from: str = ""
    """A checkpoint folder or a folder holding ``checkpoints/`` (its latest is used); ``"latest"``
    resumes from ``logdir`` when it has a checkpoint and starts fresh otherwise."""
    sample_num_steps: int = 50
    """T, DDIM steps of the sampler."""
    sample_eta: float = 1.0
    """η of the sampler; must be > 0 for the transitions to have log-probabilities."""
    sample_guidance_scale: float = 5.0
    """Classifier-free guidance weight w (1: no guidance)."""
    sample_batch_size: int = 1
    """Prompts (images) per sampling batch."""
    sample_num_batches_per_epoch: int = 2
    """Sampling batches per epoch; images per epoch = this × ``sample_batch_size``."""
    train_batch_size: int = 1
    """Samples per training batch; must divide the images per epoch."""
    train_learning_rate: float = 3e-4
    """AdamW learning rate."""
    train_adam_beta1: float = 0.9
    """AdamW β1."""
    train_adam_beta2: float = 0.999
    """AdamW β2."""
    train_adam_weight_decay: float = 1e-4
    """AdamW decoupled weight decay."""
    train_adam_epsilon: float = 1e-8
    """AdamW ε."""
    train_gradient_accumulation_steps: int = 1
    """Training batches whose gradients are summed before an optimiser step."""
    train_max_grad_norm: float = 1.0
    """Clip of the global gradient norm before each step (0: no clipping)."""
    train_num_inner_epochs: int = 1
    """Passes over each epoch's samples."""
    train_cfg: bool = True
    """Recompute log-probabilities with guidance (as sampled); False uses the conditional
    prediction only (as TRL allowed; the ratio then is not 1 at the first step)."""
    train_adv_clip_max: float = 5.0
    """Advantages are clipped to [−this, this]."""
    train_clip_range: float = 1e-4
    """PPO clip ε of the ratio."""
    train_timestep_fraction: float = 1.0
    """Share of the T steps (of those ``train_min_step_std`` keeps) each training batch is
    trained on."""
    train_min_step_std: float = 0.0
    """varl's addition [O]: steps whose transition std σ_i = η·σ_DDIM(t_i) is below this are
    not trained (0: every step, as TRL). A score-function term's variance grows like 1/σ_i²:
    with few steps, the jump into ᾱ ≈ 1 (the 201 → 1 step of a 5-step chain, σ ≈ 0.009) is
    nearly deterministic, and in the tiny setting its term carries most of the estimator's noise
    while the high-σ steps carry most of its signal (``varl.experiments.alignprop``). Dropping
    a step removes its share of the gradient, so this trades bias for variance."""
    per_prompt_stat_tracking: bool = False
    """Normalise rewards per prompt over a running buffer instead of over the epoch's batch."""
    per_prompt_stat_tracking_buffer_size: int = 16
    """Rewards kept per prompt."""
    per_prompt_stat_tracking_min_count: int = 16
    """Rewards a prompt needs before its own mean/std are used (batch statistics until then)."""
    negative_prompts: str = ""
    """Prompt of the unconditional branch of guidance."""
    lora_rank: int = 4
    """Rank r of the LoRA adapters (α = r)."""
    gradient_checkpointing: bool = False
    """Checkpoint the UNet call of each log-probability recomputation."""

    def __post_init__(self) -> None:
        positive_ints = (
            "num_epochs", "sample_num_steps", "sample_batch_size", "sample_num_batches_per_epoch",
            "train_batch_size", "train_gradient_accumulation_steps", "train_num_inner_epochs",
            "per_prompt_stat_tracking_buffer_size", "per_prompt_stat_tracking_min_count",
            "lora_rank",
        )  # fmt: skip
        for name in positive_ints:
            check_int(getattr(self, name), name, minimum=1)
        for name in ("seed", "save_freq", "num_checkpoint_limit", "log_image_freq"):
            check_int(getattr(self, name), name)
        check_real(self.train_min_step_std, "train_min_step_std", minimum=0)
        positive_floats = (
            "sample_eta", "train_learning_rate", "train_adam_epsilon", "train_adv_clip_max",
            "train_clip_range",
        )  # fmt: skip
        for name in positive_floats:
            check_real(getattr(self, name), name, minimum=0, strict=True)
        check_real(self.sample_guidance_scale, "sample_guidance_scale", minimum=0, strict=True)
        for name in ("train_adam_weight_decay", "train_max_grad_norm"):
            check_real(getattr(self, name), name, minimum=0)
        for name in ("train_adam_beta1", "train_adam_beta2"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                raise ValueError(f"{name}: expected a float in [0, 1), got {value!r}")
        if not (
            isinstance(self.train_timestep_fraction, int | float)
            and 0.0 < self.train_timestep_fraction <= 1.0
        ):
            raise ValueError(
                f"train_timestep_fraction: expected a float in (0, 1], got "
                f"{self.train_timestep_fraction!r}"
            )
        if self.per_prompt_stat_tracking_min_count > self.per_prompt_stat_tracking_buffer_size:
            raise ValueError(
                "per_prompt_stat_tracking_min_count: expected <= per_prompt_stat_tracking_"
                f"buffer_size ({self.per_prompt_stat_tracking_buffer_size}), got "
                f"{self.per_prompt_stat_tracking_min_count}"
            )
        samples = self.samples_per_epoch
        if samples % self.train_batch_size:
            raise ValueError(
                f"train_batch_size: expected a divisor of the samples per epoch "
                f"(sample_batch_size × sample_num_batches_per_epoch = {samples}), got "
                f"{self.train_batch_size}"
            )
        batches = samples // self.train_batch_size
        if batches % self.train_gradient_accumulation_steps:
            raise ValueError(
                f"train_gradient_accumulation_steps: expected a divisor of the training batches "
                f"per epoch ({batches}), got {self.train_gradient_accumulation_steps}"
            )
        for name in ("logdir", "resume_from", "negative_prompts"):
            value = getattr(self, name)
            if not (value is None and name == "logdir") and not isinstance(value, str):
                raise TypeError(f"{name}: expected a string, got {type(value).__name__}")

    @property
    def samples_per_epoch(self) -> int:
        """Images sampled (= reward queries) per epoch."""
        return self.sample_batch_size * self.sample_num_batches_per_epoch


def trainable_steps(scheduler: Any, num_steps: int, eta: float, min_std: float) -> list[int]:
    """Indices of the DDIM steps whose transition std is >= ``min_std`` (all when it is 0).

    Args:
        scheduler: The pipeline's DDIM scheduler.
        num_steps: T.
        eta: η of the sampler.
        min_std: ``DDPOConfig.train_min_step_std``.

    Returns:
        The kept step indices, ascending.

    Raises:
        ValueError: If no step is kept (naming the largest σ_i, so the threshold can be set).
    """
    if min_std == 0.0:
        return list(range(num_steps))
    _, alpha_t, alpha_prev = ddim_schedule(scheduler, num_steps)
    stds = [ddim_std(float(a), float(b), eta) for a, b in zip(alpha_t, alpha_prev, strict=True)]
    kept = [i for i, s in enumerate(stds) if s >= min_std]
    if not kept:
        raise ValueError(
            f"train_min_step_std: {min_std} drops every step; the largest transition std of "
            f"this {num_steps}-step chain is {max(stds):.4g}"
        )
    return kept


@dataclass(frozen=True)
class EpochSamples:
    """What one epoch's sampling produced (N = images per epoch).

    Attributes:
        latents: ``[N, T+1, C, H, W]`` the stored chains x_{t_0}, ..., x_0.
        log_probs: ``[N, T]`` log-probabilities of the sampled transitions.
        cond: ``[N, L, D]`` prompt embeddings (None for an unconditional UNet).
        uncond: ``[N, L, D]`` negative-prompt embeddings (None without guidance).
        rewards: ``[N]`` float64 rewards.
        prompts: The N prompts.
        metadata: The N prompt metadata.
        images: ``[N, 3, H, W]`` the scored images in [0, 1].
        reward_info: The reward function's info dicts, one per sampling batch.
    """

    latents: Tensor
    log_probs: Tensor
    cond: Tensor | None
    uncond: Tensor | None
    rewards: np.ndarray[Any, np.dtype[np.float64]]
    prompts: list[str]
    metadata: list[Any]
    images: Tensor
    reward_info: list[dict[str, Any]]


def rewards_to_array(rewards: Any, batch: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A reward function's output as a finite float64 ``[batch]`` array.

    Raises:
        ValueError: If it has another shape or holds NaN or inf.
    """
    if isinstance(rewards, Tensor):
        rewards = rewards.detach().cpu().double().numpy()
    arr = np.asarray(rewards, dtype=np.float64)
    if arr.shape != (batch,):
        raise ValueError(f"reward_function: expected rewards of shape [{batch}], got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("reward_function: returned NaN or inf rewards")
    return arr


class DDPOTrainer:
    """Fine-tunes LoRA adapters of a diffusion pipeline's UNet with DDPO (module docstring).

    Args:
        config: The :class:`DDPOConfig`.
        reward_function: ``(images, prompts, metadata) -> (rewards [B], info)``; images are
            ``[B, 3, H, W]`` in [0, 1] without gradients; rewards a tensor, array or list.
        prompt_function: ``() -> (prompt, metadata)``, called once per image.
        sd_pipeline: A pipeline with ``unet`` and a DDIM ``scheduler`` (plus ``text_encoder``
            and ``tokenizer`` for a text-conditioned UNet; optionally ``vae``), e.g.
            :func:`varl.diffusion.tiny.tiny_pipeline`. Its UNet gets the LoRA adapter (so use a
            fresh one per trainer); the text encoder and VAE are frozen.
        image_samples_hook: Called after each epoch's sampling as
            ``hook({"images", "prompts", "prompt_metadata", "rewards"}, global_step, writer)``
            (``writer``: the TensorBoard ``SummaryWriter`` or None), as TRL's hook was.

    Attributes:
        epoch: Epochs completed.
        global_step: Optimiser steps taken.
        queries: Images scored so far (reward queries).
        history: One metrics dict per completed epoch.

    Raises:
        TypeError: If ``config`` is not a :class:`DDPOConfig` or a function is not callable.
        ValueError: If the pipeline lacks a component, its UNet already has an adapter, or
            ``resume_from`` names no checkpoint.
    """

    def __init__(
        self,
        config: DDPOConfig,
        reward_function: RewardFunction,
        prompt_function: PromptFunction,
        sd_pipeline: Any,
        image_samples_hook: ImageSamplesHook | None = None,
    ) -> None:
        if not isinstance(config, DDPOConfig):
            raise TypeError(f"config: expected a DDPOConfig, got {type(config).__name__}")
        for name, fn in (
            ("reward_function", reward_function),
            ("prompt_function", prompt_function),
        ):
            if not callable(fn):
                raise TypeError(f"{name}: expected a callable, got {type(fn).__name__}")
        if image_samples_hook is not None and not callable(image_samples_hook):
            raise TypeError("image_samples_hook: expected a callable or None")
        check_pipeline(sd_pipeline)
        self.config = config
        self.reward_function = reward_function
        self.prompt_function = prompt_function
        self.pipeline = sd_pipeline
        self.image_samples_hook = image_samples_hook
        for name in ("text_encoder", "vae"):
            module = getattr(sd_pipeline, name, None)
            if module is not None:
                module.requires_grad_(False).eval()
        seed_global_rngs(config.seed)  # a prompt_function drawing from them is seeded too
        self.unet = sd_pipeline.unet
        self.unet.eval()  # no dropout: recomputed log-probs equal the sampled ones
        self.trainable_parameters = add_lora(self.unet, rank=config.lora_rank, seed=config.seed)
        self.optimizer = torch.optim.AdamW(
            self.trainable_parameters,
            lr=config.train_learning_rate,
            betas=(config.train_adam_beta1, config.train_adam_beta2),
            weight_decay=config.train_adam_weight_decay,
            eps=config.train_adam_epsilon,
        )
        self.stat_tracker = (
            PerPromptStatTracker(
                config.per_prompt_stat_tracking_buffer_size,
                config.per_prompt_stat_tracking_min_count,
            )
            if config.per_prompt_stat_tracking
            else None
        )
        self.trained_steps = trainable_steps(
            sd_pipeline.scheduler, config.sample_num_steps, config.sample_eta,
            config.train_min_step_std,
        )  # fmt: skip
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0
        self.global_step = 0
        self.queries = 0
        self.history: list[dict[str, float]] = []
        self.logdir = Path(config.logdir) if config.logdir is not None else None
        self._writer: Any = None
        target = resume_target(config.resume_from, self.logdir)
        if target is not None:
            self.load_checkpoint(target)

    # ---- the algorithm -------------------------------------------------------------------

    @property
    def _train_guidance(self) -> float:
        return self.config.sample_guidance_scale if self.config.train_cfg else 1.0

    def sample(self) -> EpochSamples:
        """Step 1-2: sample the epoch's chains (with log-probs) and score the images."""
        cfg = self.config
        parts: list[Any] = []
        prompts_all: list[str] = []
        metadata_all: list[Any] = []
        rewards_all = []
        infos = []
        for _ in range(cfg.sample_num_batches_per_epoch):
            prompts, metadata = draw_prompts(self.prompt_function, cfg.sample_batch_size)
            with torch.no_grad():
                out = sample_images(
                    self.pipeline,
                    prompts,
                    num_steps=cfg.sample_num_steps,
                    guidance_scale=cfg.sample_guidance_scale,
                    eta=cfg.sample_eta,
                    negative_prompt=cfg.negative_prompts,
                    generator=self.generator,
                    with_log_probs=True,
                )
                result = self.reward_function(out.images, prompts, metadata)
            if not (isinstance(result, tuple) and len(result) == 2):
                raise ValueError(
                    f"reward_function: expected to return (rewards, info), got {type(result)}"
                )
            rewards, info = result
            rewards_all.append(rewards_to_array(rewards, len(prompts)))
            infos.append(info)
            parts.append(out)
            prompts_all += prompts
            metadata_all += metadata
        self.queries += cfg.samples_per_epoch

        def cat(items: list[Tensor | None]) -> Tensor | None:
            return None if items[0] is None else torch.cat([t for t in items if t is not None])

        log_probs = cat([o.trajectory.log_probs for o in parts])
        assert log_probs is not None
        return EpochSamples(
            latents=torch.cat([o.trajectory.latents for o in parts]),
            log_probs=log_probs,
            cond=cat([o.prompt_embeds for o in parts]),
            uncond=cat([o.negative_embeds for o in parts]),
            rewards=np.concatenate(rewards_all),
            prompts=prompts_all,
            metadata=metadata_all,
            images=torch.cat([o.images for o in parts]).detach(),
            reward_info=infos,
        )

    def advantages(self, samples: EpochSamples) -> Tensor:
        """Step 3: ``[N]`` advantages, normalised per batch or per prompt, then clipped."""
        if self.stat_tracker is not None:
            adv = self.stat_tracker.update(samples.prompts, samples.rewards)
        else:
            adv = batch_advantages(samples.rewards)
        dtype = samples.log_probs.dtype
        return clip_advantages(torch.as_tensor(adv, dtype=dtype), self.config.train_adv_clip_max)

    def log_prob(self, samples: EpochSamples, rows: Tensor, step: int) -> Tensor:
        """``[len(rows)]`` log p_θ of the stored transitions at step ``step`` (with grad)."""
        cfg = self.config
        guidance = self._train_guidance
        return ddim_transition_log_prob(
            self.unet,
            self.pipeline.scheduler,
            samples.latents[rows, step],
            samples.latents[rows, step + 1],
            step,
            None if samples.cond is None else samples.cond[rows],
            num_steps=cfg.sample_num_steps,
            eta=cfg.sample_eta,
            uncond=None if samples.uncond is None or guidance == 1.0 else samples.uncond[rows],
            guidance_scale=guidance,
            gradient_checkpointing=cfg.gradient_checkpointing,
        )

    def train_on(self, samples: EpochSamples, advantages: Tensor) -> dict[str, float]:
        """Step 4: the inner epochs of PPO-clip updates on one epoch's samples.

        Returns:
            Means over all (batch, step) terms of ``loss``, ``approx_kl``, ``clipfrac`` and
            ``ratio``, the mean gradient norm before clipping ``grad_norm``, and the number of
            optimiser ``updates``.
        """
        cfg = self.config
        n = samples.latents.shape[0]
        device = samples.latents.device
        sums = {"loss": 0.0, "approx_kl": 0.0, "clipfrac": 0.0, "ratio": 0.0}
        terms = updates = 0
        grad_norm = 0.0
        for _ in range(cfg.train_num_inner_epochs):
            order = torch.randperm(n, generator=self.generator).to(device)
            batches = torch.split(order, cfg.train_batch_size)
            for b, rows in enumerate(batches):
                picks = train_step_indices(
                    len(self.trained_steps), cfg.train_timestep_fraction, self.generator
                )
                steps = [self.trained_steps[i] for i in picks]
                scale = 1.0 / (len(steps) * cfg.train_gradient_accumulation_steps)
                adv = advantages.to(device)[rows]
                for j in steps:
                    new = self.log_prob(samples, rows, j)
                    old = samples.log_probs[rows, j]
                    loss = clipped_surrogate(new, old, adv, cfg.train_clip_range).mean()
                    (loss * scale).backward()  # type: ignore[no-untyped-call]
                    sums["loss"] += float(loss.detach())
                    sums["approx_kl"] += float(approx_kl(new, old))
                    sums["clipfrac"] += float(clip_fraction(new, old, cfg.train_clip_range))
                    sums["ratio"] += float(torch.exp(new.detach() - old).mean())
                    terms += 1
                if (b + 1) % cfg.train_gradient_accumulation_steps == 0:
                    grads = [p.grad for p in self.trainable_parameters if p.grad is not None]
                    if grads:
                        grad_norm += float(torch.linalg.vector_norm(torch.stack(
                            [torch.linalg.vector_norm(g) for g in grads]
                        )))  # fmt: skip
                    if grads and cfg.train_max_grad_norm > 0:
                        torch.nn.utils.clip_grad_norm_(grads, cfg.train_max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.global_step += 1
                    updates += 1
        means = {k: v / max(terms, 1) for k, v in sums.items()}
        return {**means, "grad_norm": grad_norm / max(updates, 1), "updates": float(updates)}

    def step(self) -> dict[str, float]:
        """One outer epoch: sample, score, normalise, train; returns the epoch's metrics."""
        start = time.perf_counter()
        samples = self.sample()
        advantages = self.advantages(samples)
        if self.image_samples_hook is not None:
            self.image_samples_hook(
                {
                    "images": samples.images,
                    "prompts": samples.prompts,
                    "prompt_metadata": samples.metadata,
                    "rewards": torch.as_tensor(samples.rewards),
                },
                self.global_step,
                self._writer,
            )
        train_info = self.train_on(samples, advantages)
        self.epoch += 1
        metrics = {
            "epoch": float(self.epoch),
            "global_step": float(self.global_step),
            "queries": float(self.queries),
            "reward_mean": float(samples.rewards.mean()),
            "reward_std": float(samples.rewards.std()),
            "advantage_abs_mean": float(advantages.abs().mean()),
            **train_info,
            "seconds": time.perf_counter() - start,
        }
        self.history.append(metrics)
        self._log(metrics, samples)
        return metrics

    def train(
        self, epochs: int | None = None, *, progress: bool | ProgressBar = True
    ) -> list[dict[str, float]]:
        """Runs epochs until ``epochs`` (default ``config.num_epochs``) have been done in total,
        checkpointing every ``save_freq`` epochs and after the last one.

        Args:
            epochs: The total number of epochs to reach (a resumed run continues from its
                checkpoint's count), as :meth:`AlignPropTrainer.train`.
            progress: A tqdm bar when True, none when False, or a :class:`ProgressBar`.

        Returns:
            :attr:`history` (the metrics of every epoch, including resumed ones).

        Raises:
            ValueError: If ``epochs`` < 0 or the reward function returns bad rewards.
        """
        if epochs is not None:
            check_int(epochs, "epochs")
        target = self.config.num_epochs if epochs is None else epochs
        todo = max(target - self.epoch, 0)
        bar, owned = progress_bar(progress, target, desc="DDPO epochs", unit="epoch")
        if bar is not None and self.epoch:
            bar.update(min(self.epoch, target))
        self._writer = self._open_writer()
        try:
            for _ in range(todo):
                metrics = self.step()
                if bar is not None:
                    bar.update(1)
                    if owned and hasattr(bar, "set_postfix"):
                        bar.set_postfix(reward=f"{metrics['reward_mean']:.4f}")
                freq = self.config.save_freq
                if self.logdir is not None and freq and self.epoch % freq == 0:
                    self.save_checkpoint()
            freq = self.config.save_freq
            if self.logdir is not None and freq and todo and self.epoch % freq:
                self.save_checkpoint()  # the last epoch, when not already saved
        finally:
            if owned and bar is not None and hasattr(bar, "close"):
                bar.close()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return self.history

    # ---- saving ------------------------------------------------------------------------

    def save_lora(self, directory: str | Path) -> Path:
        """Write the LoRA adapter in the diffusers format (``pipeline.load_lora_weights(dir)``
        loads it); returns the file's path."""
        return save_lora(self.unet, directory)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: LoRA weights, optimiser, tracker, counters, RNGs
        (tensors and plain Python values only, so it loads with ``weights_only=True``)."""
        return {
            "config": asdict(self.config),
            "lora": lora_state_dict(self.unet),
            "optimizer": self.optimizer.state_dict(),
            "stat_tracker": None if self.stat_tracker is None else self.stat_tracker.state_dict(),
            "generator": self.generator.get_state(),
            **global_rng_state(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "queries": self.queries,
            "history": [dict(h) for h in self.history],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the global RNGs too, so that a ``prompt_function``
        drawing from ``random``, numpy or torch continues as if never interrupted).

        Raises:
            ValueError: If the LoRA keys or the tracker settings do not match.
        """
        load_lora_state_dict(self.unet, state["lora"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.stat_tracker is not None and state["stat_tracker"] is not None:
            self.stat_tracker.load_state_dict(state["stat_tracker"])
        self.generator.set_state(state["generator"])
        set_global_rng_state(state)
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.queries = int(state["queries"])
        self.history = [dict(h) for h in state["history"]]

    def save_checkpoint(self, directory: str | Path | None = None) -> Path:
        """Write ``trainer_state.pt`` and the LoRA file to ``directory`` (default
        ``logdir/checkpoints/checkpoint_{epoch}``), then prune to ``num_checkpoint_limit``.

        Raises:
            ValueError: If no ``directory`` is given and ``logdir`` is None.
        """
        return write_checkpoint(
            directory,
            logdir=self.logdir,
            epoch=self.epoch,
            state=self.state_dict(),
            save_lora=self.save_lora,
            limit=self.config.num_checkpoint_limit,
        )

    def load_checkpoint(self, directory: str | Path) -> None:
        """Resume from a folder written by :meth:`save_checkpoint` (read with
        ``weights_only=True``: loading a checkpoint cannot run code)."""
        self.load_state_dict(load_trainer_state(directory))

    # ---- logging -----------------------------------------------------------------------

    def _open_writer(self) -> Any:
        if self.logdir is None:
            return None
        self.logdir.mkdir(parents=True, exist_ok=True)
        return open_tensorboard(self.logdir)

    def _log(self, metrics: dict[str, float], samples: EpochSamples) -> None:
        if self.logdir is None:
            return
        log_metrics(self.logdir, metrics, writer=self._writer, tag="ddpo", step=self.epoch)
        freq = self.config.log_image_freq
        if freq and self.epoch % freq == 0:
            save_image_grid(
                samples.images[: self.config.sample_batch_size],
                self.logdir / "images" / f"epoch_{self.epoch}.png",
            )


# ---- the CLI entry point ----------------------------------------------------------------------

CONFIG_KEYS: dict[str, Any] = dict(CLI_KEYS)
"""Keys of :func:`train_from_config` beyond :class:`DDPOConfig`'s fields, with defaults (the
same as :data:`varl.diffusion.alignprop.CONFIG_KEYS`): ``model`` (``"tiny"`` or a local
diffusers pipeline folder; its scheduler is replaced by a ``DDIMScheduler`` of the same config),
``reward`` (any name :func:`varl.diffusion.trainer_io.reward_by_name` knows, or ``jpeg_size``:
−the measured JPEG size in kB, DDPO's black-box compressibility reward), ``prompts`` (drawn
uniformly; default the tiny model's four), ``pretrain_steps`` (of the tiny model) and
``output_dir`` (where the final LoRA is saved; default ``logdir/lora``; when given without
``logdir``, the logs go to ``output_dir/logs`` instead of TRL's ``./logs``)."""

TINY_TRAIN_DEFAULTS: dict[str, Any] = {
    "sample_num_steps": 10,
    "sample_guidance_scale": 2.0,
    "sample_batch_size": 8,
    "sample_num_batches_per_epoch": 1,
    "train_batch_size": 8,
    "num_epochs": 20,
}
"""Defaults :func:`train_from_config` applies on the tiny model where TRL's (tuned for Stable
Diffusion at 50 steps) do not fit; as AlignProp's tiny defaults, one update per 8 images."""


def jpeg_size_reward(
    images: Tensor, prompts: Any = None, metadata: Any = None
) -> tuple[Tensor, dict[str, Any]]:
    """Reward = −JPEG file size in kB (Pillow, quality 95): DDPO's compressibility reward.

    Not differentiable (uint8 quantisation and a PIL encode), which DDPO does not need.

    Returns:
        ``[B]`` rewards and ``{"jpeg_kb": [B]}``.
    """
    from varl.diffusion.rewards import jpeg_size_kb

    size = jpeg_size_kb(images.detach())
    return -size, {"jpeg_kb": size}


def train_from_config(cfg: Mapping[str, Any]) -> Path:
    """Train DDPO from a flat mapping (``varl diffusion ddpo --config cfg.yaml``) and save the
    LoRA; the counterpart of :func:`varl.diffusion.alignprop.train_from_config`.

    Args:
        cfg: Keys are :class:`DDPOConfig`'s fields and :data:`CONFIG_KEYS`. On the tiny model
            missing keys take :data:`TINY_TRAIN_DEFAULTS`, then the config's defaults.
            ``output_dir`` without ``logdir`` puts the logs in ``output_dir/logs``
            (:func:`varl.diffusion.trainer_io.split_trainer_config`).

    Returns:
        The folder holding the final ``pytorch_lora_weights.safetensors``.

    Raises:
        ValueError: On an unknown key or an invalid value.
    """
    values, extra = split_trainer_config(cfg, DDPOConfig, TINY_TRAIN_DEFAULTS)
    config = DDPOConfig(**values)
    prompt_function = uniform_prompt_function(extra["prompts"])
    torch.set_num_threads(1)
    pipeline = load_pipeline(str(extra["model"]), extra["pretrain_steps"])
    name = str(extra["reward"])
    reward: Any = (
        jpeg_size_reward
        if name == "jpeg_size"
        else reward_by_name(name, pipeline, seed=config.seed)
    )
    trainer = DDPOTrainer(config, reward, prompt_function, pipeline)
    trainer.train()
    out_dir = lora_output_dir(extra["output_dir"], config.logdir)
    trainer.save_lora(out_dir)
    return out_dir
