"""Ctrl-U and ControlNet++ training of a diffusers ``ControlNetModel`` on the label-map toy.

Paper: Zhang et al., "Ctrl-U: Robust Conditional Image Generation via Uncertainty-aware Reward
Modeling", ICLR 2025, arXiv 2410.11236; the per-iteration procedure follows the reference
code as summarised in spec alignprop_ctrlu.md §2.2, at the tiny scale of §4 / §4.3.

One training iteration (:func:`ctrl_u_step`), for a batch of images x₀ with label maps c:

1. draw t ~ U{0, …, T−1} and build the twin t' = min(t + Δ, T − 1); both twins share x₀, the
   noise ε and the condition (the toy works in pixel space, so z₀ = x₀: there is no VAE);
2. noise both, z_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε, and run ControlNet + frozen UNet once on the 2B
   batch to get ε̂ and ε̂';
3. diffusion loss L_diff = mean ‖ε̂ − ε‖² over both twins (every arm);
4. single-step x̂₀ = (z_t − √(1−ᾱ_t) ε̂)/√ᾱ_t at both twins (ControlNet++'s efficient reward);
5. the frozen reward model g segments x̂₀(t) (and, for Ctrl-U, x̂₀(t')); only samples with
   t ≤ ``t_max`` are rewarded and the reward terms average over those samples only;
6. the arm decides the loss:

   - ``"diffusion"``:     L = L_diff (plain ControlNet training, the baseline of both papers)
   - ``"controlnet_pp"``: L = L_diff + μ · mean_W mean_p CE(g(x̂₀(t)), c)
   - ``"ctrl_u"``:        L = L_diff + μ · mean_W mean_p (CE · e^{−U'}) + λ · s · mean_W mean_p U

   with U = KL(softmax g(x̂₀(t')) ‖ softmax g(x̂₀(t))) per pixel (not detached), U' = s·U when
   ``scale_in_exponent`` (the reference's segmentation convention) or U' = U otherwise, W the
   rewarded samples and p the pixels. μ weights only the rectified term and the penalty is added
   unweighted, as in the reference's segmentation script (its λ is 1 and s = ``u_scale``).

Only the ControlNet is trained; the UNet and the reward model must be frozen (the step checks).
:class:`CtrlUConfig` defaults to the reference's ADE20K values (t_max = 400, Δ = 1, μ = 0.1,
λ = 1, u_scale = 1); the ``ctrl_u`` experiment moves t_max to 543, the step of this cosine
schedule with SD1.5's ᾱ at 400.
Toy-specific choices [O]: the images are the "latents"; the ControlNet's condition is the K
one-hot channels of the label map at full resolution (a single-level conditioning embedding);
the UNet has no attention blocks (there is no prompt: a constant all-zero "null text" embedding
is passed where the text embedding goes) because attention doubled the CPU cost; the reference's
5000-step linear warm-up of μ and its EMA of the ControlNet are left out. Evaluation samples with
10 deterministic DDIM steps (η = 0) under the ControlNet's residuals (:func:`sample_ddim`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, cast

import diffusers
import torch
from torch import Tensor, nn

from varl._progress import ProgressBar
from varl.diffusion.ctrl_u import (
    rewarding_mask,
    single_step_x0,
    twin_timesteps,
    uncertainty_map,
    uncertainty_weighted_loss,
)
from varl.diffusion.label_maps import (
    ConvSegmenter,
    CorruptedSegmenter,
    DilatedSegmenter,
    check_label_maps,
    mean_iou,
    one_hot_condition,
    pixel_accuracy,
    random_label_maps,
    render_images,
    train_segmenter,
)

Arm = Literal["diffusion", "controlnet_pp", "ctrl_u"]
ARMS: tuple[Arm, ...] = ("diffusion", "controlnet_pp", "ctrl_u")
CROSS_ATTENTION_DIM = 8

# diffusers ships no type hints: its classes are used through Any-typed names, and its models
# and schedulers are annotated as Any (a ``UNet2DConditionModel``, ``ControlNetModel`` or
# ``DDPMScheduler`` as each docstring says).
_UNet2DConditionModel: Any = diffusers.UNet2DConditionModel
_ControlNetModel: Any = diffusers.ControlNetModel
_DDPMScheduler: Any = diffusers.DDPMScheduler
_DDIMScheduler: Any = diffusers.DDIMScheduler


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def build_unet(*, block_out_channels: tuple[int, int] = (16, 32), seed: int = 0) -> Any:
    """A tiny pixel-space ``UNet2DConditionModel``: 16×16×3, two resolution levels, one ResNet
    layer per block, no attention (see the module docstring), ≈0.14M parameters."""
    torch.manual_seed(seed)
    return _UNet2DConditionModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=block_out_channels,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        mid_block_type="UNetMidBlock2D",
        cross_attention_dim=CROSS_ATTENTION_DIM,
        attention_head_dim=8,
        norm_num_groups=4,
    )


def build_controlnet(unet: Any, num_classes: int, *, embedding_channels: int = 16) -> Any:
    """``ControlNetModel.from_unet``: a copy of the UNet's encoder plus zero convolutions, whose
    condition is the ``num_classes`` one-hot channels of a label map at full resolution."""
    return _ControlNetModel.from_unet(
        unet,
        conditioning_embedding_out_channels=(embedding_channels,),
        conditioning_channels=num_classes,
    )


def build_scheduler(num_train_timesteps: int = 1000) -> Any:
    """The training noise schedule (cosine ᾱ, suited to pixel-space 16×16 images)."""
    return _DDPMScheduler(
        num_train_timesteps=num_train_timesteps, beta_schedule="squaredcos_cap_v2"
    )


def null_text(batch: int) -> Tensor:
    """The constant "empty prompt" embedding ``[B, 1, CROSS_ATTENTION_DIM]`` (all zeros)."""
    return torch.zeros(batch, 1, CROSS_ATTENTION_DIM)


def predict_noise(
    unet: Any,
    controlnet: Any,
    sample: Tensor,
    timesteps: Tensor,
    condition: Tensor | None,
) -> Tensor:
    """ε̂ of the UNet, with the ControlNet's residuals added when ``controlnet`` is given.

    Args:
        unet: The (frozen) denoiser.
        controlnet: The ControlNet, or None for the unconditional UNet.
        sample: ``[B, 3, H, W]`` noisy images.
        timesteps: ``[B]`` integer timesteps.
        condition: ``[B, K, H, W]`` one-hot label maps (ignored without ``controlnet``).

    Returns:
        ``[B, 3, H, W]`` predicted noise.
    """
    text = null_text(sample.shape[0])
    down: Any = None
    mid: Any = None
    if controlnet is not None:
        down, mid = controlnet(
            sample, timesteps, text, controlnet_cond=condition, return_dict=False
        )
    out: Tensor = unet(
        sample,
        timesteps,
        text,
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
    ).sample
    return out


def _bar(progress: bool | ProgressBar, total: int, desc: str) -> tuple[ProgressBar | None, bool]:
    """A tqdm bar when ``progress`` is True, the caller's bar, or None; and whether we own it."""
    if progress is True:
        from tqdm.auto import tqdm

        return cast(ProgressBar, tqdm(total=total, desc=desc, unit="step")), True
    if progress is False:
        return None, False
    return progress, False


def pretrain_unet(
    unet: Any,
    scheduler: Any,
    *,
    num_classes: int,
    steps: int = 600,
    batch_size: int = 32,
    lr: float = 2e-3,
    noise_std: float = 0.15,
    seed: int = 0,
    progress: bool | ProgressBar = False,
) -> list[float]:
    """Fits the base UNet with the ε-loss on toy images, unconditionally (null text), then
    freezes it (eval mode, ``requires_grad`` off).

    Returns:
        The loss of every step.

    Raises:
        ValueError: On non-positive ``steps``, ``batch_size`` or ``lr``.
    """
    if steps < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"steps, batch_size, lr: expected >= 1, >= 1, > 0, got {steps}, {batch_size}, {lr}"
        )
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    bar, own = _bar(progress, steps, "pretrain UNet")
    unet.train()
    unet.requires_grad_(True)
    losses = []
    t_count = int(scheduler.config["num_train_timesteps"])
    for _ in range(steps):
        labels = random_label_maps(batch_size, num_classes=num_classes, generator=gen)
        x0 = render_images(labels, num_classes=num_classes, noise_std=noise_std, generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, t_count, (batch_size,), generator=gen)
        loss = nn.functional.mse_loss(
            predict_noise(unet, None, scheduler.add_noise(x0, eps, t), t, None), eps
        )
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
    if own and bar is not None:
        bar.close()  # type: ignore[attr-defined]
    unet.eval()
    unet.requires_grad_(False)
    return losses


# --------------------------------------------------------------------------------------------
# The training step
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CtrlUConfig:
    """Settings of ControlNet training with an optional (uncertainty-weighted) reward loss."""

    arm: Arm = "ctrl_u"
    """``"diffusion"`` (ε-loss only), ``"controlnet_pp"`` (+ unweighted CE) or ``"ctrl_u"``."""
    t_max: int = 400
    """Largest rewarded timestep (400 for ADE20K in the reference, 200 for COCO-Stuff)."""
    delta: int = 1
    """Twin offset Δ: t' = min(t + Δ, T − 1) (reference default 1)."""
    lam: float = 1.0
    """λ, weight of the uncertainty penalty (1 in the reference's segmentation script)."""
    scale: float = 1.0
    """s, the reference's ``u_scale`` (1 for ADE20K, 0.1 for COCO-Stuff)."""
    scale_in_exponent: bool = True
    """Segmentation convention: e^{−s·U}; False gives e^{−U} with s only in the penalty."""
    mu: float = 0.1
    """μ, the reward weight (``grad_scale``: 0.1 ADE20K, 0.2 COCO-Stuff)."""
    lr: float = 1e-3
    """AdamW learning rate of the ControlNet (the reference uses 1e-5 at SD scale)."""
    steps: int = 200
    """Optimiser steps."""
    batch_size: int = 8
    """Images per step (B; the forward pass runs on the 2B twins)."""
    kind: Literal["kl", "l1"] = "kl"
    """Uncertainty: KL of the twin class distributions, or the L1 distance of the twin
    probability maps summed over classes ([O] for segmentation)."""
    seed: int = 0
    """Seed of the data, timesteps and noise."""
    detach_uncertainty: bool = False
    """Stop the gradient into U (off in the reference, where the generator is also pushed to
    make its twin predictions agree)."""

    def __post_init__(self) -> None:
        if self.arm not in ARMS:
            raise ValueError(f"arm: expected one of {ARMS}, got {self.arm!r}")
        if self.kind not in ("kl", "l1"):
            raise ValueError(f"kind: expected 'kl' or 'l1', got {self.kind!r}")
        for name in ("t_max", "delta", "steps", "batch_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
        if self.t_max < 0:
            raise ValueError(f"t_max: expected an int >= 0, got {self.t_max}")
        if self.delta < 0:
            raise ValueError(f"delta: expected an int >= 0, got {self.delta}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(
                f"steps, batch_size: expected ints >= 1, got {self.steps}, {self.batch_size}"
            )
        for name in ("lam", "scale", "mu"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: expected a finite number > 0, got {self.lr}")


@dataclass(frozen=True)
class LabelMapBatch:
    """One training batch of the toy.

    Attributes:
        images: ``[B, 3, H, W]`` real images x₀ in [-1, 1].
        labels: ``[B, H, W]`` int64 label maps (the condition c and the reward target).
        timesteps: Optional ``[B]`` int64 primary timesteps t (drawn when None).
        noise: Optional ``[B, 3, H, W]`` shared noise ε (drawn when None).
    """

    images: Tensor
    labels: Tensor
    timesteps: Tensor | None = None
    noise: Tensor | None = None


def _check_frozen(module: nn.Module, name: str) -> None:
    if any(p.requires_grad for p in module.parameters()):
        raise ValueError(
            f"{name}: expected frozen parameters (only the ControlNet is trained); call "
            f"{name}.requires_grad_(False)"
        )


def _check_batch(batch: LabelMapBatch, num_classes: int, num_train_timesteps: int) -> None:
    x = batch.images
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"batch.images: expected shape [B, 3, H, W], got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("batch.images: contains NaN or inf")
    check_label_maps(batch.labels, num_classes, name="batch.labels")
    b, _, h, w = x.shape
    if tuple(batch.labels.shape) != (b, h, w):
        raise ValueError(
            f"batch.labels: expected shape {(b, h, w)} to match batch.images, got "
            f"{tuple(batch.labels.shape)}"
        )
    if batch.timesteps is not None:
        t = batch.timesteps
        if t.shape != (b,) or t.dtype != torch.int64:
            raise ValueError(f"batch.timesteps: expected an int64 tensor of shape ({b},)")
        if ((t < 0) | (t >= num_train_timesteps)).any():
            raise ValueError(f"batch.timesteps: expected values in [0, {num_train_timesteps - 1}]")
    if batch.noise is not None and batch.noise.shape != x.shape:
        raise ValueError(
            f"batch.noise: expected shape {tuple(x.shape)}, got {tuple(batch.noise.shape)}"
        )


def _masked_sample_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of the ``[B]`` ``values`` over the samples where ``mask`` holds (0 when none do)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def ctrl_u_step(
    unet: Any,
    controlnet: Any,
    scheduler: Any,
    segmenter: nn.Module,
    batch: LabelMapBatch,
    config: CtrlUConfig,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The loss of one Ctrl-U / ControlNet++ / diffusion-only iteration (spec §2.2).

    See the module docstring for the procedure and the three loss compositions.

    Args:
        unet: Frozen base UNet.
        controlnet: The trained ControlNet; its ``conditioning_channels`` is the class count K.
        scheduler: The training ``DDPMScheduler`` (its ᾱ and T).
        segmenter: Frozen reward model g, ``[B, 3, H, W] -> [B, K, H, W]`` logits.
        batch: Images, label maps and optionally fixed timesteps and noise.
        config: The arm and its weights.
        generator: Source of the timesteps and noise that ``batch`` leaves open.

    Returns:
        ``(loss, info)``: the scalar loss (differentiable in the ControlNet's parameters only)
        and floats ``loss``, ``loss_diff``, ``loss_reward`` (the μ-free reward term:
        mean CE, or mean CE·e^{−U'} for Ctrl-U), ``loss_uncertainty`` (λ·s·mean U),
        ``u_mean`` (mean U over rewarded pixels), ``ce`` (unweighted mean CE of the rewarded
        samples) and ``rewarded`` (share of samples with t ≤ ``t_max``).

    Raises:
        ValueError: On a non-frozen UNet or segmenter, ``t_max`` >= T, mismatched label-map
            shape or classes, segmenter logits with the wrong class count, or non-finite images.
    """
    num_classes = int(controlnet.config["conditioning_channels"])
    t_count = int(scheduler.config["num_train_timesteps"])
    if config.t_max >= t_count:
        raise ValueError(f"t_max: expected an int in [0, {t_count - 1}], got {config.t_max}")
    _check_frozen(unet, "unet")
    _check_frozen(segmenter, "segmenter")
    _check_batch(batch, num_classes, t_count)
    x0, labels = batch.images, batch.labels
    b = x0.shape[0]
    t = batch.timesteps
    if t is None:
        t = torch.randint(0, t_count, (b,), generator=generator)
    eps = batch.noise if batch.noise is not None else torch.randn(x0.shape, generator=generator)
    t2 = twin_timesteps(t, delta=config.delta, num_train_timesteps=t_count)

    # steps 2-3: the 2B twin batch, one ControlNet + UNet forward, diffusion loss on both twins
    times = torch.cat([t, t2])
    noise = torch.cat([eps, eps])
    z = scheduler.add_noise(torch.cat([x0, x0]), noise, times)
    condition = one_hot_condition(labels, num_classes).repeat(2, 1, 1, 1)
    eps_hat = predict_noise(unet, controlnet, z, times, condition)
    loss_diff = nn.functional.mse_loss(eps_hat, noise)
    zero = torch.zeros((), dtype=loss_diff.dtype)
    loss_reward, loss_u, u_mean, ce_mean = zero, zero, zero, zero
    mask = rewarding_mask(t, t_max=config.t_max)
    rewarded = mask.nonzero().flatten()
    if config.arm != "diffusion" and rewarded.numel() > 0:
        # steps 4-6, on the rewarded samples only (x̂0 at large t is huge and never scored)
        alpha_bar = scheduler.alphas_cumprod.to(x0.dtype)[times]
        x0_hat = single_step_x0(z, eps_hat, alpha_bar)
        idx = rewarded if config.arm == "controlnet_pp" else torch.cat([rewarded, rewarded + b])
        logits = segmenter(x0_hat[idx])
        if logits.dim() != 4 or logits.shape[1] != num_classes:
            raise ValueError(
                f"segmenter: expected logits [B, {num_classes}, H, W], got {tuple(logits.shape)}"
            )
        n = rewarded.numel()
        target = labels[rewarded]
        ce = nn.functional.cross_entropy(logits[:n], target, reduction="none")  # [n, H, W]
        ce_mean = ce.mean()
        if config.arm == "controlnet_pp":
            loss_reward = ce.flatten(1).mean(1).mean()
        else:
            if config.kind == "kl":
                u = uncertainty_map(logits[:n], logits[n:], kind="kl")
            else:
                probs = torch.softmax(logits.float(), dim=1)
                u = uncertainty_map(probs[:n], probs[n:], kind="l1").sum(dim=1)
            if config.detach_uncertainty:
                u = u.detach()
            loss_reward = uncertainty_weighted_loss(
                ce, u, scale=config.scale, lam=0.0, scale_in_exponent=config.scale_in_exponent
            ).mean()
            u_mean = u.mean()
            loss_u = config.lam * config.scale * u_mean
    loss = loss_diff + config.mu * loss_reward + loss_u
    info = {
        name: float(value.detach())
        for name, value in (
            ("loss", loss),
            ("loss_diff", loss_diff),
            ("loss_reward", loss_reward),
            ("loss_uncertainty", loss_u),
            ("u_mean", u_mean),
            ("ce", ce_mean),
        )
    }
    info["rewarded"] = float(mask.float().mean())
    if not math.isfinite(info["loss"]):
        raise ValueError(f"ctrl_u_step: the loss is not finite ({info})")
    return loss, info


def train_ctrl_u(
    config: CtrlUConfig,
    *,
    unet: Any,
    controlnet: Any,
    scheduler: Any,
    segmenter: nn.Module,
    noise_std: float = 0.15,
    progress: bool | ProgressBar = False,
) -> list[dict[str, float]]:
    """Trains ``controlnet`` in place for ``config.steps`` steps of :func:`ctrl_u_step`.

    Every step draws fresh label maps and their images (AdamW, weight decay 1e-2, gradient
    clipping at norm 1, as in the reference). The UNet and the segmenter are frozen here.

    Args:
        config: The arm and its settings.
        unet: Base UNet (frozen by this call).
        controlnet: The ControlNet to train; K = its ``conditioning_channels``.
        scheduler: Training noise schedule.
        segmenter: Reward model g (frozen by this call).
        noise_std: Texture noise of the training images.
        progress: True for a tqdm bar, or a bar advanced by 1 per step (not reset).

    Returns:
        The ``info`` dict of every step.
    """
    num_classes = int(controlnet.config["conditioning_channels"])
    unet.eval()
    unet.requires_grad_(False)
    segmenter.eval()
    segmenter.requires_grad_(False)
    controlnet.train()
    controlnet.requires_grad_(True)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(controlnet.parameters(), lr=config.lr, weight_decay=1e-2)
    bar, own = _bar(progress, config.steps, f"ControlNet ({config.arm})")
    history = []
    for _ in range(config.steps):
        labels = random_label_maps(config.batch_size, num_classes=num_classes, generator=gen)
        images = render_images(labels, num_classes=num_classes, noise_std=noise_std, generator=gen)
        loss, info = ctrl_u_step(
            unet, controlnet, scheduler, segmenter, LabelMapBatch(images, labels), config,
            generator=gen,
        )  # fmt: skip
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(controlnet.parameters(), 1.0)
        opt.step()
        history.append(info)
        if bar is not None:
            bar.update(1)
    if own and bar is not None:
        bar.close()  # type: ignore[attr-defined]
    controlnet.eval()
    return history


# --------------------------------------------------------------------------------------------
# Sampling and evaluation
# --------------------------------------------------------------------------------------------


def sample_ddim(
    unet: Any,
    controlnet: Any,
    scheduler: Any,
    labels: Tensor | None,
    *,
    num_samples: int | None = None,
    steps: int = 10,
    seed: int = 0,
) -> Tensor:
    """Deterministic DDIM sampling (η = 0) with the ControlNet's residuals, without gradients.

    Args:
        unet: Base UNet.
        controlnet: ControlNet, or None for the unconditional base model.
        scheduler: The training schedule (its config builds the ``DDIMScheduler``).
        labels: ``[B, H, W]`` label maps (required with a ControlNet).
        num_samples: B when ``labels`` is None.
        steps: DDIM steps (>= 1).
        seed: Seed of the initial noise x_T.

    Returns:
        ``[B, 3, 16, 16]`` images (clipped to [-1, 1] by the scheduler's x̂₀ clipping).

    Raises:
        ValueError: On ``steps`` < 1, missing ``labels`` with a ControlNet, or bad labels.
    """
    if steps < 1:
        raise ValueError(f"steps: expected an int >= 1, got {steps}")
    condition = None
    if controlnet is not None:
        if labels is None:
            raise ValueError("labels: required when sampling with a ControlNet")
        condition = one_hot_condition(labels, int(controlnet.config["conditioning_channels"]))
    b = labels.shape[0] if labels is not None else num_samples
    if b is None or b < 1:
        raise ValueError("num_samples: expected an int >= 1 when labels is None")
    size = int(unet.config["sample_size"])
    ddim = _DDIMScheduler.from_config(scheduler.config, clip_sample=True)
    ddim.set_timesteps(steps)
    x = torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for t in ddim.timesteps:
            times = torch.full((b,), int(t), dtype=torch.int64)
            eps_hat = predict_noise(unet, controlnet, x, times, condition)
            x = ddim.step(eps_hat, int(t), x, eta=0.0).prev_sample
    return x


def evaluate_controlnet(
    unet: Any,
    controlnet: Any,
    scheduler: Any,
    oracle: nn.Module,
    labels: Tensor,
    *,
    steps: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """Oracle mIoU and pixel accuracy of fully sampled images against their label maps.

    Args:
        unet: Base UNet.
        controlnet: The ControlNet under test (None: the unconditional base model).
        scheduler: Training schedule.
        oracle: Evaluation segmenter; its number of logit channels is the class count K.
        labels: ``[B, H, W]`` held-out label maps (the conditions and the targets).
        steps: DDIM steps.
        seed: Seed of the initial noise.

    Returns:
        ``{"miou": ..., "pixel_accuracy": ...}`` over the whole batch.
    """
    images = sample_ddim(unet, controlnet, scheduler, labels, steps=steps, seed=seed)
    with torch.no_grad():
        logits: Tensor = oracle(images)
    pred = logits.argmax(dim=1)
    return {
        "miou": mean_iou(pred, labels, int(logits.shape[1])),
        "pixel_accuracy": pixel_accuracy(pred, labels),
    }


# --------------------------------------------------------------------------------------------
# The toy world and the CLI entry point
# --------------------------------------------------------------------------------------------


@dataclass
class ToyWorld:
    """Everything the arms share: the frozen base UNet, its schedule, the clean reward model g
    and the oracle.

    Attributes:
        unet: Pretrained, frozen base UNet.
        scheduler: Training schedule.
        reward_model: The clean segmenter g (corrupt it with :meth:`corrupted`).
        oracle: The evaluation segmenter.
        num_classes: K.
        noise_std: Texture noise of the toy images.
    """

    unet: Any
    scheduler: Any
    reward_model: nn.Module
    oracle: nn.Module
    num_classes: int
    noise_std: float

    def corrupted(
        self, beta: float, *, omega: float = 300.0, amplitude: float = 4.0
    ) -> CorruptedSegmenter:
        """g with corruption level β (see :class:`CorruptedSegmenter`)."""
        return CorruptedSegmenter(
            self.reward_model,
            num_classes=self.num_classes,
            beta=beta,
            omega=omega,
            amplitude=amplitude,
        )


def build_world(
    *,
    num_classes: int = 4,
    pretrain_steps: int = 600,
    pretrain_batch_size: int = 32,
    segmenter_steps: int = 200,
    noise_std: float = 0.15,
    seed: int = 0,
    progress: bool | ProgressBar = False,
) -> ToyWorld:
    """Pretrains the base UNet (unconditional ε-loss) and trains g and the oracle on clean
    images (the oracle with a different architecture, seed and a range of noise levels)."""
    scheduler = build_scheduler()
    unet = build_unet(seed=seed)
    pretrain_unet(
        unet, scheduler, num_classes=num_classes, steps=pretrain_steps,
        batch_size=pretrain_batch_size, noise_std=noise_std, seed=seed, progress=progress,
    )  # fmt: skip
    torch.manual_seed(seed + 1)
    g = train_segmenter(
        ConvSegmenter(num_classes), num_classes=num_classes, steps=segmenter_steps,
        noise_std=noise_std, seed=seed + 1,
    )  # fmt: skip
    torch.manual_seed(seed + 2)
    oracle = train_segmenter(
        DilatedSegmenter(num_classes), num_classes=num_classes, steps=segmenter_steps,
        noise_std=(0.0, 0.5), seed=seed + 2,
    )  # fmt: skip
    return ToyWorld(unet, scheduler, g, oracle, num_classes, noise_std)


WORLD_KEYS: dict[str, Any] = {
    "num_classes": 4,
    "corruption": 0.0,
    "omega": 300.0,
    "amplitude": 4.0,
    "pretrain_steps": 600,
    "segmenter_steps": 200,
    "stage1_steps": 0,
    "noise_std": 0.15,
    "eval_samples": 64,
    "sample_steps": 10,
    "world_seed": 0,
}
"""Keys of :func:`train_from_config` beyond :class:`CtrlUConfig`'s fields, with defaults."""


def train_from_config(cfg: Mapping[str, Any]) -> dict[str, float]:
    """Builds the toy world, trains one ControlNet arm and evaluates it (``varl diffusion
    ctrl-u --config cfg.yaml``).

    Args:
        cfg: A flat mapping; keys are :class:`CtrlUConfig`'s fields (``arm``, ``t_max``,
            ``delta``, ``lam``, ``scale``, ``scale_in_exponent``, ``mu``, ``lr``, ``steps``,
            ``batch_size``, ``kind``, ``seed``, ``detach_uncertainty``) and
            :data:`WORLD_KEYS` (``num_classes``, ``corruption`` β, ``omega``, ``amplitude``,
            ``pretrain_steps``, ``segmenter_steps``, ``stage1_steps`` (diffusion-only
            ControlNet steps run before the arm, as the experiment does; 0 trains the arm from
            the zero-initialised ControlNet), ``noise_std``, ``eval_samples``,
            ``sample_steps``, ``world_seed``). Missing keys take their defaults.

    Returns:
        ``miou``, ``pixel_accuracy`` (oracle, on held-out conditions) and the means of the
        last 20 steps' ``loss``, ``ce`` and ``u_mean``.

    Raises:
        ValueError: On an unknown key or an invalid value.
    """
    config_keys = {f.name for f in fields(CtrlUConfig)}
    unknown = sorted(set(cfg) - config_keys - set(WORLD_KEYS))
    if unknown:
        raise ValueError(
            f"cfg: unknown key(s) {unknown}; expected keys from {sorted(config_keys)} or "
            f"{sorted(WORLD_KEYS)}"
        )
    config = CtrlUConfig(**{k: v for k, v in cfg.items() if k in config_keys})
    w = {**WORLD_KEYS, **{k: v for k, v in cfg.items() if k in WORLD_KEYS}}
    torch.set_num_threads(1)
    world = build_world(
        num_classes=int(w["num_classes"]), pretrain_steps=int(w["pretrain_steps"]),
        segmenter_steps=int(w["segmenter_steps"]), noise_std=float(w["noise_std"]),
        seed=int(w["world_seed"]), progress=True,
    )  # fmt: skip
    controlnet = build_controlnet(world.unet, world.num_classes)
    g = world.corrupted(float(w["corruption"]), omega=float(w["omega"]),
                        amplitude=float(w["amplitude"]))  # fmt: skip
    if int(w["stage1_steps"]) > 0:
        stage1 = dataclasses.replace(config, arm="diffusion", steps=int(w["stage1_steps"]))
        train_ctrl_u(
            stage1, unet=world.unet, controlnet=controlnet, scheduler=world.scheduler,
            segmenter=g, noise_std=world.noise_std, progress=True,
        )  # fmt: skip
    history = train_ctrl_u(
        config, unet=world.unet, controlnet=controlnet, scheduler=world.scheduler, segmenter=g,
        noise_std=world.noise_std, progress=True,
    )  # fmt: skip
    held_out = random_label_maps(
        int(w["eval_samples"]), num_classes=world.num_classes,
        generator=torch.Generator().manual_seed(10_000 + int(w["world_seed"])),
    )  # fmt: skip
    scores = evaluate_controlnet(
        world.unet, controlnet, world.scheduler, world.oracle, held_out,
        steps=int(w["sample_steps"]), seed=config.seed,
    )  # fmt: skip
    last = history[-20:]
    return {
        **scores,
        "loss": sum(h["loss"] for h in last) / len(last),
        "ce": sum(h["ce"] for h in last) / len(last),
        "u_mean": sum(h["u_mean"] for h in last) / len(last),
    }
