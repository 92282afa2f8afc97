"""AlignProp: fine-tune a diffusion model's LoRA by backpropagating a differentiable reward.

Paper: Prabhudesai, Goyal, Pathak, Fragkiadaki, "Aligning Text-to-Image Diffusion Models with
Reward Backpropagation", arXiv 2310.03739; spec alignprop_ctrlu.md §1. The DDIM chain is one
differentiable policy x_T ↦ x_0; the loss is a transform of the reward of the decoded images,

    L(θ) = E_{c, x_T} [ ℓ( R(D(x_0(θ; x_T, c)), c) ) ],   ℓ(r) = −r, |r − r*| or 10 − r,

minimised by backpropagating through the reward, the decoder and the last K denoising steps
(:mod:`varl.diffusion.sampling`, with K from a :class:`TruncationSchedule`), with gradient
checkpointing of each UNet call and only LoRA adapters trainable (:mod:`varl.diffusion.lora`).
There is no likelihood-ratio term.

TRL shipped an ``AlignPropTrainer`` until its removal in 2025 (spec §1.7); this one keeps its
call signatures — ``AlignPropTrainer(config, reward_function, prompt_function, sd_pipeline,
image_samples_hook=None)`` with ``reward_function(images [B,3,H,W] in [0,1] with grad, prompts,
prompt_metadata) -> (rewards [B], info)`` and ``prompt_function() -> (prompt, metadata)`` — and
its config field names, and runs on any diffusers pipeline the user loaded (``unet`` and a
DDIM-compatible ``scheduler``; ``text_encoder``/``tokenizer`` for a text UNet; ``vae`` optional).
Differences from TRL: the loss transform is configurable (TRL hard-coded 10 − r); truncation is a
:class:`TruncationSchedule` (TRL's ``truncated_backprop_rand=True, (0, 50)`` is
``TruncationSchedule.legacy_per_step(0, 50)``, its ``truncated_backprop_rand=False,
truncated_backprop_timestep=τ`` is ``TruncationSchedule.fixed(T − τ)``; the default here is the
paper's per-batch K ~ U{0..50}); no accelerate, mixed precision or hub push: training runs in
the pipeline's dtype on its device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from varl._checks import check_real
from varl._progress import ProgressBar
from varl.diffusion.lora import add_lora, load_lora_state_dict, lora_state_dict, save_lora
from varl.diffusion.rewards import check_differentiable, validate_images
from varl.diffusion.sampling import check_pipeline, sample_images
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
from varl.diffusion.truncation import TruncationSchedule

__all__ = [
    "CHECKPOINT_PREFIX",
    "CONFIG_KEYS",
    "LOSS_KINDS",
    "STATE_FILE",
    "TINY_TRAIN_DEFAULTS",
    "AlignPropConfig",
    "AlignPropTrainer",
    "parse_truncation",
    "resolve_checkpoint",
    "reward_by_name",
    "reward_loss",
    "save_image_grid",
    "train_from_config",
]

LossKind = Literal["neg", "abs_target", "ten_minus"]
LOSS_KINDS: tuple[str, ...] = ("neg", "abs_target", "ten_minus")
PromptFunction = Callable[[], tuple[str, Any]]
RewardFunction = Callable[[Tensor, tuple[str, ...], tuple[Any, ...]], tuple[Tensor, Any]]
ImageSamplesHook = Callable[[dict[str, Any], int, Any], None]
DEFAULT_TRUNCATION = TruncationSchedule.uniform(0, 50)
"""The paper's K ~ U{0..50}, drawn once per batch (spec §1.2)."""


def reward_loss(rewards: Tensor, kind: str = "neg", target: float = 10.0) -> Tensor:
    """Per-sample loss ``[B]`` of rewards ``[B]`` (spec §1.5, §5 "pluggable loss transform").

    - ``"neg"``: −r (the paper's objective);
    - ``"abs_target"``: |r − r*| (the official code's aesthetic loss with r* = 10, the score's
      ceiling; it stops pushing once the target is met, a guard against over-optimisation);
    - ``"ten_minus"``: 10 − r (TRL's hard-coded loss; same gradient as −r).

    Args:
        rewards: ``[B]`` rewards (with their graph).
        kind: One of :data:`LOSS_KINDS`.
        target: r* of ``"abs_target"``.

    Raises:
        ValueError: On an unknown ``kind``.

    Example:
        >>> reward_loss(torch.tensor([8.0, 12.0]), "abs_target", 10.0).tolist()
        [2.0, 2.0]
    """
    if kind == "neg":
        return -rewards
    if kind == "abs_target":
        return (rewards - target).abs()
    if kind == "ten_minus":
        return 10.0 - rewards
    raise ValueError(f"loss: expected one of {LOSS_KINDS}, got {kind!r}")


@dataclass(frozen=True, kw_only=True)
class AlignPropConfig:
    """Settings of :class:`AlignPropTrainer`; field names and defaults follow TRL's
    ``AlignPropConfig`` (spec §1.4, §1.7) where one exists.

    One "epoch" is one optimiser step on ``train_gradient_accumulation_steps`` micro-batches of
    ``train_batch_size`` images, as in TRL.
    """

    seed: int = 0
    """Seeds the LoRA init, the sampling noise, the truncation draws and the global RNGs."""
    logdir: str | None = "logs"
    """Folder for ``metrics.csv``, TensorBoard scalars (when tensorboard is installed), image
    grids and ``checkpoints/``; None writes nothing."""
    num_epochs: int = 100
    """Optimiser steps :meth:`AlignPropTrainer.train` runs up to."""
    save_freq: int = 1
    """Epochs between checkpoints (0: never)."""
    num_checkpoint_limit: int = 5
    """Checkpoints kept; older ones are deleted (0: keep all)."""
    log_image_freq: int = 1
    """Epochs between PNG grids of the training images (0: never)."""
    resume_from: str = ""
    """A checkpoint folder or a folder holding ``checkpoints/`` (its latest is used); ``"latest"``
    resumes from ``logdir`` when it has a checkpoint and starts fresh otherwise."""
    sample_num_steps: int = 50
    """T, DDIM steps of the differentiable sampler."""
    sample_eta: float = 1.0
    """η of the sampler (0: deterministic DDIM)."""
    sample_guidance_scale: float = 5.0
    """Classifier-free guidance weight w (1: no guidance)."""
    negative_prompts: str = ""
    """The prompt of the unconditional guidance branch."""
    train_batch_size: int = 1
    """Images per micro-batch."""
    train_learning_rate: float = 1e-3
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
    """Micro-batches whose gradients are averaged before each optimiser step."""
    train_max_grad_norm: float = 1.0
    """Clip of the global gradient norm before each step (0: no clipping)."""
    truncation: TruncationSchedule = DEFAULT_TRUNCATION
    """Which final steps keep gradients (spec §1.2); its largest K (or threshold) must not
    exceed ``sample_num_steps``."""
    loss: LossKind = "neg"
    """Loss transform of the rewards (:func:`reward_loss`): ``"neg"``, ``"abs_target"`` or
    ``"ten_minus"`` (TRL's)."""
    loss_target: float = 10.0
    """r* of the ``"abs_target"`` loss."""
    loss_coeff: float = 1.0
    """Scale of the loss (the official code used 0.01 with summed losses)."""
    gradient_checkpointing: bool = True
    """Checkpoint each gradient-carrying UNet call (spec §1.3)."""
    lora_rank: int = 4
    """Rank r of the LoRA adapters (α = r)."""

    def __post_init__(self) -> None:
        for name, low in (
            ("seed", 0),
            ("num_epochs", 0),
            ("save_freq", 0),
            ("num_checkpoint_limit", 0),
            ("log_image_freq", 0),
            ("sample_num_steps", 1),
            ("train_batch_size", 1),
            ("train_gradient_accumulation_steps", 1),
            ("lora_rank", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        for name in ("train_learning_rate", "train_adam_epsilon", "loss_coeff"):
            check_real(getattr(self, name), name, minimum=0, strict=True)
        for name in ("sample_eta", "train_adam_weight_decay", "train_max_grad_norm"):
            check_real(getattr(self, name), name, minimum=0)
        check_real(self.sample_guidance_scale, "sample_guidance_scale", minimum=0, strict=True)
        check_real(self.loss_target, "loss_target")
        for name in ("train_adam_beta1", "train_adam_beta2"):
            beta = getattr(self, name)
            if not (isinstance(beta, int | float) and 0 <= beta < 1):
                raise ValueError(f"{name}: expected a float in [0, 1), got {beta!r}")
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"loss: expected one of {LOSS_KINDS}, got {self.loss!r}")
        if not isinstance(self.truncation, TruncationSchedule):
            raise ValueError(
                f"truncation: expected a TruncationSchedule, got {type(self.truncation).__name__}"
            )
        if self.truncation.high > self.sample_num_steps:
            raise ValueError(
                f"truncation: K (or the detach threshold) may reach {self.truncation.high}, "
                f"more than sample_num_steps = {self.sample_num_steps}; e.g. use "
                f"TruncationSchedule.uniform(0, {self.sample_num_steps})"
            )


class AlignPropTrainer:
    """Reward backpropagation through the DDIM chain into LoRA adapters of the UNet.

    The trainer adds the LoRA adapter to ``sd_pipeline.unet`` (freezing everything else,
    including the text encoder and VAE), so build it on a freshly loaded pipeline, and seeds
    Python's, NumPy's and torch's global RNGs with ``config.seed`` (as TRL's ``set_seed`` did;
    checkpoints save and restore them, so a ``prompt_function`` drawing from ``random`` resumes
    exactly). Each
    :meth:`step` draws prompts, samples images with gradients through the last K steps,
    scores them, and takes one AdamW step on the mean transformed loss.

    Args:
        config: The settings.
        reward_function: ``(images, prompts, prompt_metadata) -> (rewards [B], info)``;
            ``images`` are ``[B, C, H, W]`` in [0, 1] with their graph, and the rewards must
            keep a ``grad_fn`` (checked).
        prompt_function: ``() -> (prompt, metadata)``, called once per image.
        sd_pipeline: A diffusers pipeline (``unet``, ``scheduler``; ``text_encoder`` and
            ``tokenizer`` for a text-conditional UNet; optional ``vae``).
        image_samples_hook: Called as ``hook({"images", "prompts", "prompt_metadata",
            "rewards"}, epoch, writer)`` when an image grid is due (``writer`` is the
            TensorBoard ``SummaryWriter`` or None), as TRL's hook was.

    Raises:
        ValueError: If the pipeline lacks a needed component, or the UNet already has LoRA.
        TypeError: If a function argument is not callable.
    """

    def __init__(
        self,
        config: AlignPropConfig,
        reward_function: RewardFunction,
        prompt_function: PromptFunction,
        sd_pipeline: Any,
        image_samples_hook: ImageSamplesHook | None = None,
    ) -> None:
        if not isinstance(config, AlignPropConfig):
            raise TypeError(f"config: expected an AlignPropConfig, got {type(config).__name__}")
        for name, fn in (
            ("reward_function", reward_function),
            ("prompt_function", prompt_function),
        ):
            if not callable(fn):
                raise TypeError(f"{name}: expected a callable, got {type(fn).__name__}")
        check_pipeline(sd_pipeline)
        self.config = config
        self.reward_function = reward_function
        self.prompt_function = prompt_function
        self.pipeline = sd_pipeline
        self.image_samples_hook = image_samples_hook
        for name in ("text_encoder", "vae"):
            module = getattr(sd_pipeline, name, None)
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)
        seed_global_rngs(config.seed)
        self.params = add_lora(sd_pipeline.unet, rank=config.lora_rank, seed=config.seed)
        sd_pipeline.unet.eval()  # no dropout: the checkpoint recomputation is exact
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=config.train_learning_rate,
            betas=(config.train_adam_beta1, config.train_adam_beta2),
            weight_decay=config.train_adam_weight_decay,
            eps=config.train_adam_epsilon,
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.mask_rng = np.random.default_rng(config.seed)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.logdir = Path(config.logdir) if config.logdir else None
        self._writer: Any = None
        self._writer_opened = False
        target = resume_target(config.resume_from, self.logdir)
        if target is not None:
            self.load_checkpoint(target)

    # ---- one optimiser step ----------------------------------------------------------------

    def _rewards(
        self, images: Tensor, prompts: tuple[str, ...], metadata: tuple[Any, ...]
    ) -> tuple[Tensor, Any]:
        out = self.reward_function(images, prompts, metadata)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(
                f"reward_function: expected to return (rewards, info), got {type(out).__name__}"
            )
        rewards, info = out
        if not isinstance(rewards, Tensor) or rewards.shape != (images.shape[0],):
            shape = tuple(rewards.shape) if isinstance(rewards, Tensor) else type(rewards).__name__
            raise ValueError(
                f"reward_function: expected rewards of shape [{images.shape[0]}] (one per "
                f"image), got {shape}"
            )
        return check_differentiable(rewards, images, name="reward_function"), info

    def step(self) -> dict[str, float]:
        """One optimiser step over ``train_gradient_accumulation_steps`` micro-batches.

        Returns:
            ``epoch``, ``loss``, ``reward_mean``, ``reward_std``, ``k_mean`` (gradient steps
            per chain), ``grad_norm`` (before clipping).

        Raises:
            ValueError: If the images are not ``[B, 1 or 3, H, W]`` in [0, 1] (e.g. a latent
                UNet without a VAE), or the reward has the wrong batch size or is not finite.
            NonDifferentiableRewardError: If the reward cut the graph.
        """
        cfg = self.config
        accum = cfg.train_gradient_accumulation_steps
        self.optimizer.zero_grad(set_to_none=True)
        losses, all_rewards, ks = [], [], []
        last: dict[str, Any] = {}
        for _ in range(accum):
            prompts, metadata = draw_prompts(self.prompt_function, cfg.train_batch_size)
            mask = cfg.truncation.grad_mask(cfg.sample_num_steps, self.mask_rng)
            sample = sample_images(
                self.pipeline,
                prompts,
                num_steps=cfg.sample_num_steps,
                guidance_scale=cfg.sample_guidance_scale,
                eta=cfg.sample_eta,
                negative_prompt=cfg.negative_prompts,
                grad_mask=mask,
                gradient_checkpointing=cfg.gradient_checkpointing,
                generator=self.generator,
            )
            images = sample.images
            validate_images(images, name="images (decoded by the pipeline)")
            rewards, _ = self._rewards(images, prompts, metadata)
            loss = reward_loss(rewards, cfg.loss, cfg.loss_target).mean() * cfg.loss_coeff
            if loss.requires_grad:  # K = 0 draws carry no gradient
                (loss / accum).backward()  # type: ignore[no-untyped-call]
            losses.append(float(loss.detach()))
            all_rewards.append(rewards.detach().float().cpu())
            ks.append(int(mask.sum()))
            last = {"images": images.detach(), "prompts": prompts, "metadata": metadata}
        grads = [p.grad for p in self.params if p.grad is not None]
        grad_norm = (
            float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
            if grads
            else 0.0
        )
        if grads and cfg.train_max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.train_max_grad_norm)
        self.optimizer.step()
        self.epoch += 1
        r = torch.cat(all_rewards)
        metrics = {
            "epoch": float(self.epoch),
            "loss": float(np.mean(losses)),
            "reward_mean": float(r.mean()),
            "reward_std": float(r.std(unbiased=False)),
            "k_mean": float(np.mean(ks)),
            "grad_norm": grad_norm,
        }
        self.history.append(metrics)
        self._log(metrics, last, r)
        return metrics

    def train(
        self, epochs: int | None = None, *, progress: bool | ProgressBar = True
    ) -> list[dict[str, float]]:
        """Run optimiser steps until ``epochs`` (default ``config.num_epochs``) have been done
        in total, checkpointing every ``save_freq``.

        Args:
            epochs: The total number of epochs to reach (a resumed run continues from its
                checkpoint's count).
            progress: True for a tqdm bar, False for none, or a :class:`ProgressBar`.

        Returns:
            The metrics of every epoch so far (including those before a resume).
        """
        total = self.config.num_epochs if epochs is None else epochs
        bar, owned = progress_bar(progress, total, desc="AlignProp", unit="step")
        if bar is not None and self.epoch:
            bar.update(self.epoch)
        try:
            while self.epoch < total:
                metrics = self.step()
                if bar is not None:
                    bar.update(1)
                    if owned:
                        bar.set_postfix(reward=f"{metrics['reward_mean']:.4g}")
                freq = self.config.save_freq
                if freq and self.logdir is not None and self.epoch % freq == 0:
                    self.save_checkpoint()
        finally:
            if owned and bar is not None:
                bar.close()
            if self._writer is not None:
                self._writer.flush()
        return self.history

    # ---- weights and checkpoints -----------------------------------------------------------

    def save_lora(self, directory: str | Path) -> Path:
        """Write the LoRA in the diffusers format; ``pipeline.load_lora_weights(directory)``
        of a freshly loaded pipeline loads it back."""
        return save_lora(self.pipeline.unet, directory)

    def state_dict(self) -> dict[str, Any]:
        """LoRA weights, optimiser state, epoch, history and every RNG state (tensors and
        plain Python values only, so it loads with ``weights_only=True``)."""
        return {
            "lora": lora_state_dict(self.pipeline.unet),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "history": [dict(h) for h in self.history],
            "generator": self.generator.get_state(),
            "mask_rng": self.mask_rng.bit_generator.state,
            **global_rng_state(),
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (continuing bit-exactly on the CPU)."""
        load_lora_state_dict(self.pipeline.unet, dict(state["lora"]))
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.mask_rng.bit_generator.state = state["mask_rng"]
        set_global_rng_state(state)
        self.epoch = int(state["epoch"])
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

    # ---- logging ---------------------------------------------------------------------------

    def _log(self, metrics: dict[str, float], last: dict[str, Any], rewards: Tensor) -> None:
        if self.logdir is not None:
            self.logdir.mkdir(parents=True, exist_ok=True)
            if not self._writer_opened:
                self._writer, self._writer_opened = open_tensorboard(self.logdir), True
            log_metrics(self.logdir, metrics, writer=self._writer, tag="alignprop", step=self.epoch)
        freq = self.config.log_image_freq
        if not (freq and self.epoch % freq == 0 and last):
            return
        if self.logdir is not None:
            save_image_grid(last["images"], self.logdir / "images" / f"epoch_{self.epoch}.png")
        if self.image_samples_hook is not None:
            batch = last["images"].shape[0]
            pairs = {
                "images": last["images"],
                "prompts": last["prompts"],
                "prompt_metadata": last["metadata"],
                "rewards": rewards[-batch:],
            }
            self.image_samples_hook(pairs, self.epoch, self._writer)


# ---- the CLI entry point ----------------------------------------------------------------------

CONFIG_KEYS: dict[str, Any] = dict(CLI_KEYS)
"""Keys of :func:`train_from_config` beyond :class:`AlignPropConfig`'s fields, with defaults:
``model`` (``"tiny"``, the offline tiny model, or a local diffusers pipeline folder loaded with
``DiffusionPipeline.from_pretrained``; its scheduler is replaced by a ``DDIMScheduler`` of the
same config), ``reward`` (``brightness``, ``redness``, ``tv``, ``jpeg``, ``aesthetic`` or a
dotted path ``package.module:function``), ``prompts`` (drawn uniformly; default the tiny
model's four), ``pretrain_steps`` (of the tiny model) and ``output_dir`` (where the final LoRA is
saved; default ``logdir/lora``; when given without ``logdir``, the logs go to
``output_dir/logs`` instead of TRL's ``./logs``). ``truncation`` may be a string ``"fixed:K"``,
``"uniform:KMIN:KMAX"``, ``"gaussian:MEAN:STD[:LOW:HIGH]"`` or ``"legacy_per_step:TMIN:TMAX"``."""

TINY_TRAIN_DEFAULTS: dict[str, Any] = {
    "sample_num_steps": 10,
    "sample_guidance_scale": 2.0,
    "train_batch_size": 8,
    "num_epochs": 20,
    "truncation": "uniform:0:10",
}
"""Defaults :func:`train_from_config` applies on the tiny model where TRL's (tuned for Stable
Diffusion at 50 steps) do not fit."""


def parse_truncation(spec: str | Mapping[str, Any] | TruncationSchedule) -> TruncationSchedule:
    """A :class:`TruncationSchedule` from ``"kind:a:b"`` text or a ``{"kind": ..., ...}`` map.

    Raises:
        ValueError: On an unknown kind or malformed numbers.
    """
    if isinstance(spec, TruncationSchedule):
        return spec
    if isinstance(spec, Mapping):
        kind, args = str(spec.get("kind")), [v for k, v in spec.items() if k != "kind"]
    elif isinstance(spec, str):
        kind, *raw = spec.split(":")
        try:
            args = [float(a) if "." in a else int(a) for a in raw]
        except ValueError as exc:
            raise ValueError(f"truncation: malformed numbers in {spec!r}") from exc
    else:
        raise ValueError(f"truncation: expected a string or mapping, got {type(spec).__name__}")
    builders: dict[str, Callable[..., TruncationSchedule]] = {
        "fixed": TruncationSchedule.fixed,
        "uniform": TruncationSchedule.uniform,
        "gaussian": TruncationSchedule.gaussian,
        "legacy_per_step": TruncationSchedule.legacy_per_step,
    }
    if kind not in builders:
        raise ValueError(f"truncation: expected a kind in {sorted(builders)}, got {kind!r}")
    try:
        return builders[kind](*args)
    except TypeError as exc:
        raise ValueError(f"truncation: wrong arguments for {kind!r}: {args}") from exc


def train_from_config(cfg: Mapping[str, Any]) -> Path:
    """Train AlignProp from a flat mapping (``varl diffusion alignprop --config cfg.yaml``)
    and save the LoRA.

    Args:
        cfg: Keys are :class:`AlignPropConfig`'s fields and :data:`CONFIG_KEYS`. On the tiny
            model missing keys take :data:`TINY_TRAIN_DEFAULTS`, then the config's defaults.
            ``output_dir`` without ``logdir`` puts the logs in ``output_dir/logs``
            (:func:`varl.diffusion.trainer_io.split_trainer_config`).

    Returns:
        The folder holding the final ``pytorch_lora_weights.safetensors``.

    Raises:
        ValueError: On an unknown key or an invalid value.
    """
    values, extra = split_trainer_config(cfg, AlignPropConfig, TINY_TRAIN_DEFAULTS)
    if "truncation" in values:
        values["truncation"] = parse_truncation(values["truncation"])
    config = AlignPropConfig(**values)
    prompt_function = uniform_prompt_function(extra["prompts"])
    torch.set_num_threads(1)
    pipeline = load_pipeline(str(extra["model"]), extra["pretrain_steps"])
    reward = reward_by_name(str(extra["reward"]), pipeline, seed=config.seed)
    trainer = AlignPropTrainer(config, reward, prompt_function, pipeline)
    trainer.train()
    out_dir = lora_output_dir(extra["output_dir"], config.logdir)
    trainer.save_lora(out_dir)
    return out_dir
