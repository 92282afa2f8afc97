"""An explicit, differentiable DDIM sampling loop with truncation, guidance and log-probabilities.

Paper: Prabhudesai et al., AlignProp, arXiv 2310.03739; spec alignprop_ctrlu.md §1.1-§1.3. Steps
are indexed i = 0..T−1 from noisiest to cleanest; step i maps x_{t_i} to x_{t_{i+1}} (x at the
"previous" timestep in diffusers' words). With ᾱ the cumulative alpha and w the guidance scale:

    ε̂   = ε_θ(x_t, t, ∅) + w (ε_θ(x_t, t, c) − ε_θ(x_t, t, ∅))      (classifier-free guidance)
    x̂_0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t
    σ_t  = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)
    x_prev = √ᾱ_prev x̂_0 + √(1−ᾱ_prev−σ_t²) ε̂ + σ_t z,   z ~ N(0, I)

so with η > 0 a transition is Gaussian, x_prev ~ N(μ_θ(x_t), σ_t² I), and its log-density is
what DDPO's policy gradient needs. Truncated backpropagation (§1.2): at a step whose entry in
``grad_mask`` is False the noise prediction is computed under ``torch.no_grad`` (the reference
detaches ε̂); the latent chain is never detached, so gradients still flow through the later
steps' inputs, but only the masked-in UNet calls contribute parameter gradients. Each
gradient-carrying UNet call can be wrapped in ``torch.utils.checkpoint`` (non-reentrant) so only
its inputs are kept and its activations are recomputed in the backward pass (§1.3).

Everything is pure torch plus duck-typed diffusers pieces: the UNet is called as
``unet(x, t, encoder_hidden_states=h).sample`` (or ``unet(x, t).sample`` without text), the
scheduler supplies ``alphas_cumprod``, ``final_alpha_cumprod``, ``config.num_train_timesteps``,
``config.prediction_type`` and ``set_timesteps``/``timesteps``. The x̂_0 update is computed
here rather than by ``scheduler.step`` so that σ_t, the mean and the noise are available for the
log-probability.

API:
    ddim_schedule             timesteps and ᾱ_t, ᾱ_prev of a T-step DDIM schedule
    ddim_step                 one DDIM update from a noise prediction (pure math)
    gaussian_log_prob         log N(x; μ, σ² I), averaged over the non-batch dims (as DDPO)
    predict_noise             the guided ε̂ of one UNet call (optionally checkpointed)
    ddim_sample               the whole loop: final latent with graph, stored latents, log-probs
    ddim_transition_log_prob  log p_θ(x_prev | x_t) of given transitions, current model (PPO)
    sample_images             prompts → images in [0, 1] for a diffusers pipeline
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class DDIMStep:
    """The result of one DDIM update.

    Attributes:
        prev_sample: ``[B, ...]`` x_prev = mean + σ z (= mean when σ = 0).
        mean: ``[B, ...]`` μ = √ᾱ_prev x̂_0 + √(1−ᾱ_prev−σ²) ε̂.
        std: σ_t, a 0-dim tensor.
        pred_original_sample: ``[B, ...]`` x̂_0.
    """

    prev_sample: Tensor
    mean: Tensor
    std: Tensor
    pred_original_sample: Tensor


@dataclass(frozen=True)
class DDIMTrajectory:
    """A sampled DDIM chain.

    Attributes:
        sample: ``[B, C, H, W]`` the final latent x_0, carrying the graph of the gradient steps.
        latents: ``[B, T+1, C, H, W]`` detached x_{t_0} (pure noise), ..., x_0: the states a DDPO
            update replays.
        log_probs: ``[B, T]`` detached log-probabilities of the sampled transitions (see
            :func:`gaussian_log_prob`), or None when not requested.
        timesteps: ``[T]`` the timesteps t_0 > t_1 > ... of the steps.
        grad_mask: ``[T]`` which steps' UNet calls kept parameter gradients.
    """

    sample: Tensor
    latents: Tensor
    log_probs: Tensor | None
    timesteps: Tensor
    grad_mask: BoolArray


@dataclass(frozen=True)
class ImageSample:
    """Images sampled from a pipeline.

    Attributes:
        images: ``[B, 3, H, W]`` decoded images in [0, 1], with the graph of the gradient steps.
        trajectory: The latent chain (see :class:`DDIMTrajectory`).
        prompt_embeds: ``[B, L, D]`` text embeddings used (None for an unconditional UNet).
        negative_embeds: ``[B, L, D]`` embeddings of the negative/empty prompt, or None.
    """

    images: Tensor
    trajectory: DDIMTrajectory
    prompt_embeds: Tensor | None
    negative_embeds: Tensor | None


def ddim_schedule(scheduler: Any, num_steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """Timesteps and cumulative alphas of a ``num_steps``-step DDIM schedule.

    Calls ``scheduler.set_timesteps(num_steps)`` (as a diffusers pipeline does); the previous
    timestep of t is t − num_train_timesteps // num_steps, with ᾱ of a negative timestep being
    ``scheduler.final_alpha_cumprod``.

    Args:
        scheduler: A diffusers ``DDIMScheduler`` (or one with the same attributes).
        num_steps: T >= 1.

    Returns:
        ``(timesteps [T] long, alpha_t [T] float64, alpha_prev [T] float64)``.

    Raises:
        ValueError: If ``num_steps`` < 1 or exceeds the training timesteps.
    """
    n_train = int(scheduler.config.num_train_timesteps)
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps: expected an int >= 1, got {num_steps!r}")
    if num_steps > n_train:
        raise ValueError(f"num_steps: expected at most {n_train} (training steps), got {num_steps}")
    scheduler.set_timesteps(num_steps)
    timesteps = torch.as_tensor(scheduler.timesteps, dtype=torch.long).cpu()
    alphas = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float64).cpu()
    final = float(scheduler.final_alpha_cumprod)
    prev = timesteps - n_train // num_steps
    alpha_t = alphas[timesteps]
    alpha_prev = torch.where(prev >= 0, alphas[prev.clamp(min=0)], torch.tensor(final))
    return timesteps, alpha_t, alpha_prev


def ddim_std(alpha_t: float, alpha_prev: float, eta: float) -> float:
    """σ_t = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev) (DDIM, Song et al. 2021, eq. 16)."""
    variance = (1 - alpha_prev) / (1 - alpha_t) * (1 - alpha_t / alpha_prev)
    return eta * math.sqrt(max(variance, 0.0))


def ddim_step(
    eps: Tensor,
    x_t: Tensor,
    alpha_t: float,
    alpha_prev: float,
    *,
    eta: float = 0.0,
    noise: Tensor | None = None,
    clip_sample: float | None = None,
) -> DDIMStep:
    """One DDIM update from a (guided) noise prediction (module docstring equations).

    Args:
        eps: ``[B, ...]`` predicted noise ε̂.
        x_t: ``[B, ...]`` current latent.
        alpha_t: ᾱ_t in (0, 1).
        alpha_prev: ᾱ_prev in (0, 1].
        eta: η >= 0 (0: deterministic DDIM, 1: DDPM-like variance).
        noise: ``[B, ...]`` z ~ N(0, I); needed when σ > 0.
        clip_sample: Clamp x̂_0 to [−c, c] (diffusers' ``clip_sample``); None keeps it unclipped.

    Returns:
        The :class:`DDIMStep`.

    Raises:
        ValueError: If σ > 0 and ``noise`` is None or has another shape than ``x_t``.
    """
    std = ddim_std(alpha_t, alpha_prev, eta)
    x0 = (x_t - math.sqrt(1 - alpha_t) * eps) / math.sqrt(alpha_t)
    if clip_sample is not None:
        x0 = x0.clamp(-clip_sample, clip_sample)
        eps = (x_t - math.sqrt(alpha_t) * x0) / math.sqrt(1 - alpha_t)
    direction = math.sqrt(max(1 - alpha_prev - std**2, 0.0)) * eps
    mean = math.sqrt(alpha_prev) * x0 + direction
    if std > 0:
        if noise is None or noise.shape != x_t.shape:
            got = None if noise is None else tuple(noise.shape)
            raise ValueError(f"noise: expected shape {tuple(x_t.shape)} when eta > 0, got {got}")
        prev = mean + std * noise
    else:
        prev = mean
    return DDIMStep(prev, mean, torch.tensor(std, dtype=x_t.dtype), x0)


def gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor | float) -> Tensor:
    """log N(x; μ, σ² I) per sample, *averaged* over the non-batch dimensions.

    ``log p = mean_d [ −(x_d − μ_d)² / (2σ²) − log σ − ½ log 2π ]``. The average (not the sum)
    over pixels is the convention of DDPO's reference code and keeps PPO ratios in a sane range;
    multiply by the number of elements per sample for the exact log-density.

    Args:
        x: ``[B, ...]`` values.
        mean: ``[B, ...]`` means.
        std: σ > 0 (scalar).

    Returns:
        ``[B]`` log-probabilities.

    Raises:
        ValueError: If σ is not > 0 (η = 0 makes the transition deterministic: no density).
    """
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if not bool(s > 0):
        raise ValueError(f"std: expected > 0 for a log-probability (use eta > 0), got {float(s)}")
    z = (x.detach() - mean) / s
    log_p = -0.5 * z.square() - torch.log(s) - 0.5 * math.log(2 * math.pi)
    return log_p.flatten(1).mean(dim=1)


def _unet_eps(unet: nn.Module, scheduler: Any, x: Tensor, t: Tensor, cond: Tensor | None) -> Tensor:
    """The UNet's output converted to a noise prediction ε (ε, v or x_0 parameterisation)."""
    t_batch = t.expand(x.shape[0]).to(x.device)
    out = unet(x, t_batch).sample if cond is None else unet(x, t_batch, cond).sample
    kind = getattr(scheduler.config, "prediction_type", "epsilon")
    if kind == "epsilon":
        eps: Tensor = out
        return eps
    alpha = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float64)[t.cpu()]
    a = alpha.to(x.dtype).to(x.device).reshape(-1, *([1] * (x.dim() - 1)))
    if kind == "v_prediction":
        v_eps: Tensor = a.sqrt() * out + (1 - a).sqrt() * x
        return v_eps
    if kind == "sample":
        x0_eps: Tensor = (x - a.sqrt() * out) / (1 - a).sqrt()
        return x0_eps
    raise ValueError(f"scheduler.config.prediction_type: unsupported {kind!r}")


def predict_noise(
    unet: nn.Module,
    scheduler: Any,
    x_t: Tensor,
    t: Tensor,
    cond: Tensor | None,
    *,
    uncond: Tensor | None = None,
    guidance_scale: float = 1.0,
    gradient_checkpointing: bool = False,
) -> Tensor:
    """Guided noise prediction ε̂ of one step; one UNet call on the CFG-doubled batch.

    Args:
        unet: The UNet (``UNet2DConditionModel`` with ``cond``, ``UNet2DModel`` without).
        scheduler: Supplies ``prediction_type`` and ``alphas_cumprod``.
        x_t: ``[B, C, H, W]`` latents.
        t: A 0-dim long tensor, the timestep.
        cond: ``[B, L, D]`` text embeddings or None (unconditional UNet).
        uncond: ``[B, L, D]`` embeddings of the empty/negative prompt; used when
            ``guidance_scale != 1``.
        guidance_scale: w; 1 means no guidance.
        gradient_checkpointing: Wrap the call in ``torch.utils.checkpoint`` (non-reentrant),
            storing only its inputs; has an effect only when grad mode is on.

    Returns:
        ``[B, C, H, W]`` ε̂.

    Raises:
        ValueError: If guidance is asked for without ``cond`` and ``uncond``.
    """
    guided = guidance_scale != 1.0
    if guided and (cond is None or uncond is None):
        raise ValueError("uncond: guidance_scale != 1 needs text embeddings cond and uncond")

    def call(x: Tensor, c: Tensor | None) -> Tensor:
        if guided:
            assert c is not None and uncond is not None
            both = _unet_eps(unet, scheduler, torch.cat([x, x]), t, torch.cat([uncond, c]))
            e_u, e_c = both.chunk(2)
            return e_u + guidance_scale * (e_c - e_u)
        return _unet_eps(unet, scheduler, x, t, c)

    if gradient_checkpointing and torch.is_grad_enabled():
        out: Tensor = checkpoint(call, x_t, cond, use_reentrant=False)
        return out
    return call(x_t, cond)


def _check_mask(grad_mask: BoolArray | Sequence[bool] | None, num_steps: int) -> BoolArray:
    if grad_mask is None:
        return np.ones(num_steps, dtype=np.bool_)
    mask = np.asarray(grad_mask)
    if mask.shape != (num_steps,) or mask.dtype != np.bool_:
        raise ValueError(
            f"grad_mask: expected a bool array of shape [{num_steps}], got {mask.dtype} "
            f"{mask.shape}"
        )
    return mask


def ddim_sample(
    unet: nn.Module,
    scheduler: Any,
    cond: Tensor | None,
    *,
    num_steps: int,
    uncond: Tensor | None = None,
    guidance_scale: float = 1.0,
    eta: float = 0.0,
    grad_mask: BoolArray | Sequence[bool] | None = None,
    gradient_checkpointing: bool = False,
    latents: Tensor | None = None,
    shape: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    with_log_probs: bool = False,
) -> DDIMTrajectory:
    """Run the DDIM chain from noise, keeping parameter gradients only at the masked-in steps.

    Step i's UNet call runs under ``torch.no_grad`` when ``grad_mask[i]`` is False (its ε̂ is a
    constant, as in AlignProp's truncation) and, when ``gradient_checkpointing``, is wrapped in
    a non-reentrant checkpoint otherwise. The chain x_t → x_prev itself is never detached.
    Call it under ``torch.no_grad()`` for plain sampling.

    Args:
        unet: The noise-prediction UNet.
        scheduler: A DDIM scheduler (see module docstring).
        cond: ``[B, L, D]`` text embeddings, or None for an unconditional UNet.
        num_steps: T, the number of DDIM steps.
        uncond: ``[B, L, D]`` empty/negative-prompt embeddings (needed when guidance != 1).
        guidance_scale: w of classifier-free guidance.
        eta: η >= 0; > 0 makes the transitions stochastic (needed for log-probs).
        grad_mask: ``[T]`` bools (from :meth:`TruncationSchedule.grad_mask`); None: all steps.
        gradient_checkpointing: Checkpoint each gradient-carrying UNet call.
        latents: ``[B, C, H, W]`` the initial noise x_T; drawn from ``generator`` when None.
        shape: ``(B, C, H, W)`` of the noise when ``latents`` is None.
        generator: Random source of x_T and of the per-step noise z (drawn on the CPU).
        with_log_probs: Also return the per-step log-probabilities (needs η > 0).

    Returns:
        The :class:`DDIMTrajectory`.

    Raises:
        ValueError: On a bad ``eta``, ``guidance_scale``, ``grad_mask``, ``num_steps`` or
            missing ``latents``/``shape``, or log-probs asked for with η = 0.
    """
    if not (math.isfinite(eta) and eta >= 0):
        raise ValueError(f"eta: expected a finite float >= 0, got {eta}")
    if not math.isfinite(guidance_scale):
        raise ValueError(f"guidance_scale: expected a finite float, got {guidance_scale}")
    if with_log_probs and eta == 0:
        raise ValueError("with_log_probs: needs eta > 0 (eta = 0 is deterministic)")
    timesteps, alpha_t, alpha_prev = ddim_schedule(scheduler, num_steps)
    mask = _check_mask(grad_mask, num_steps)
    param = next(unet.parameters())
    if latents is None:
        if shape is None:
            raise ValueError("latents, shape: give the initial noise or its shape")
        latents = torch.randn(tuple(shape), generator=generator, dtype=param.dtype)
    x = latents.to(device=param.device, dtype=param.dtype)
    clip = getattr(scheduler.config, "clip_sample", False)
    clip_range = float(getattr(scheduler.config, "clip_sample_range", 1.0)) if clip else None
    stored = [x.detach()]
    log_probs = []
    for i, t in enumerate(timesteps):
        with torch.set_grad_enabled(torch.is_grad_enabled() and bool(mask[i])):
            eps = predict_noise(
                unet,
                scheduler,
                x,
                t,
                cond,
                uncond=uncond,
                guidance_scale=guidance_scale,
                gradient_checkpointing=gradient_checkpointing,
            )
        a_t, a_prev = float(alpha_t[i]), float(alpha_prev[i])
        noise = None
        if ddim_std(a_t, a_prev, eta) > 0:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        step = ddim_step(eps, x, a_t, a_prev, eta=eta, noise=noise, clip_sample=clip_range)
        if with_log_probs:
            log_probs.append(gaussian_log_prob(step.prev_sample, step.mean.detach(), step.std))
        x = step.prev_sample
        stored.append(x.detach())
    return DDIMTrajectory(
        sample=x,
        latents=torch.stack(stored, dim=1),
        log_probs=torch.stack(log_probs, dim=1) if with_log_probs else None,
        timesteps=timesteps,
        grad_mask=mask,
    )


def ddim_transition_log_prob(
    unet: nn.Module,
    scheduler: Any,
    x_t: Tensor,
    x_prev: Tensor,
    step_index: int,
    cond: Tensor | None,
    *,
    num_steps: int,
    eta: float,
    uncond: Tensor | None = None,
    guidance_scale: float = 1.0,
    gradient_checkpointing: bool = False,
) -> Tensor:
    """log p_θ(x_prev | x_t) of given transitions under the *current* model (for PPO / DDPO).

    Recomputes ε̂ at step ``step_index`` of the ``num_steps``-step schedule with gradients,
    forms μ_θ(x_t) and σ_t as :func:`ddim_step` does, and scores the stored ``x_prev``
    (treated as data: no gradient through it) with :func:`gaussian_log_prob`. With the model
    unchanged it reproduces ``DDIMTrajectory.log_probs[:, step_index]``; the PPO ratio is
    ``exp(new − old)``.

    Args:
        unet: The UNet (its current parameters define p_θ).
        scheduler: The DDIM scheduler used for sampling.
        x_t: ``[B, C, H, W]`` latents before the step (``trajectory.latents[:, i]``).
        x_prev: ``[B, C, H, W]`` latents after it (``trajectory.latents[:, i + 1]``).
        step_index: i in [0, T).
        cond: ``[B, L, D]`` text embeddings or None.
        num_steps: T used for sampling.
        eta: η used for sampling, > 0.
        uncond: Empty-prompt embeddings when ``guidance_scale != 1``.
        guidance_scale: w used for sampling.
        gradient_checkpointing: Checkpoint the UNet call.

    Returns:
        ``[B]`` log-probabilities (averaged over dims), differentiable in the UNet parameters.

    Raises:
        ValueError: On η <= 0, a ``step_index`` outside [0, T) or mismatched shapes.
    """
    if not (math.isfinite(eta) and eta > 0):
        raise ValueError(f"eta: expected a finite float > 0 for a log-probability, got {eta}")
    if isinstance(step_index, bool) or not 0 <= step_index < num_steps:
        raise ValueError(f"step_index: expected an int in [0, {num_steps}), got {step_index!r}")
    if x_t.shape != x_prev.shape:
        raise ValueError(f"x_prev: expected shape {tuple(x_t.shape)}, got {tuple(x_prev.shape)}")
    timesteps, alpha_t, alpha_prev = ddim_schedule(scheduler, num_steps)
    eps = predict_noise(
        unet,
        scheduler,
        x_t,
        timesteps[step_index],
        cond,
        uncond=uncond,
        guidance_scale=guidance_scale,
        gradient_checkpointing=gradient_checkpointing,
    )
    clip = getattr(scheduler.config, "clip_sample", False)
    clip_range = float(getattr(scheduler.config, "clip_sample_range", 1.0)) if clip else None
    a_t, a_prev = float(alpha_t[step_index]), float(alpha_prev[step_index])
    step = ddim_step(
        eps, x_t, a_t, a_prev, eta=eta, noise=torch.zeros_like(x_t), clip_sample=clip_range
    )
    return gaussian_log_prob(x_prev, step.mean, step.std)


def check_pipeline(pipeline: Any, *, need_text: bool = True) -> None:
    """Raise a ``ValueError`` naming the components ``pipeline`` lacks.

    A UNet and a scheduler are always needed; a conditional UNet (one with a
    ``cross_attention_dim``) also needs ``text_encoder`` and ``tokenizer``.
    """
    missing = [n for n in ("unet", "scheduler") if getattr(pipeline, n, None) is None]
    unet = getattr(pipeline, "unet", None)
    conditional = unet is not None and getattr(unet.config, "cross_attention_dim", None)
    if need_text and conditional:
        missing += [n for n in ("text_encoder", "tokenizer") if getattr(pipeline, n, None) is None]
    if missing:
        raise ValueError(f"pipeline: missing components {missing} needed for sampling")
    for name in ("alphas_cumprod", "final_alpha_cumprod", "set_timesteps"):
        if not hasattr(pipeline.scheduler, name):
            raise ValueError(f"pipeline.scheduler: expected a DDIM-style scheduler with {name}")


@torch.no_grad()
def encode_text(pipeline: Any, prompts: Sequence[str]) -> Tensor:
    """``[B, L, D]`` frozen text-encoder hidden states (``last_hidden_state``) of ``prompts``."""
    tokenizer = pipeline.tokenizer
    tokens = tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    device = next(pipeline.unet.parameters()).device
    hidden: Tensor = pipeline.text_encoder(tokens.input_ids.to(device))[0]
    return hidden.to(next(pipeline.unet.parameters()).dtype)


def decode_latents(pipeline: Any, latents: Tensor) -> Tensor:
    """``[B, 3, H, W]`` images in [0, 1] from latents: through ``pipeline.vae`` when it has one
    (scaled by ``vae.config.scaling_factor``), else the latents are pixels in [−1, 1]; then
    x / 2 + 1/2, clamped (values inside [0, 1] keep their gradient)."""
    vae = getattr(pipeline, "vae", None)
    if vae is not None:
        latents = vae.decode(latents / vae.config.scaling_factor).sample
    return (latents / 2 + 0.5).clamp(0, 1)


def sample_images(
    pipeline: Any,
    prompts: Sequence[str],
    *,
    num_steps: int,
    guidance_scale: float = 1.0,
    eta: float = 0.0,
    negative_prompt: str = "",
    grad_mask: BoolArray | Sequence[bool] | None = None,
    gradient_checkpointing: bool = False,
    latents: Tensor | None = None,
    generator: torch.Generator | None = None,
    with_log_probs: bool = False,
) -> ImageSample:
    """Prompts → images for a diffusers pipeline (AlignProp's ``rgb_with_grad``).

    Encodes the prompts (and ``negative_prompt`` when guidance is on) with the frozen text
    encoder, runs :func:`ddim_sample` and decodes with :func:`decode_latents`. The pipeline is
    used as is: freeze or adapt its UNet before calling.

    Args:
        pipeline: Has ``unet`` and ``scheduler``; ``text_encoder`` and ``tokenizer`` for a
            conditional UNet; optionally ``vae``.
        prompts: B prompts (ignored by an unconditional UNet, which still samples B images).
        num_steps, guidance_scale, eta, grad_mask, gradient_checkpointing, latents, generator,
            with_log_probs: As in :func:`ddim_sample`.
        negative_prompt: The prompt of the unconditional branch of guidance.

    Returns:
        The :class:`ImageSample`.

    Raises:
        ValueError: On a pipeline without the needed components, an empty ``prompts`` or a bad
            sampling argument.
    """
    check_pipeline(pipeline)
    if len(prompts) == 0:
        raise ValueError("prompts: expected at least one prompt")
    unet = pipeline.unet
    cond = uncond = None
    if getattr(unet.config, "cross_attention_dim", None):
        cond = encode_text(pipeline, prompts)
        if guidance_scale != 1.0:
            uncond = encode_text(pipeline, [negative_prompt] * len(prompts))
    elif guidance_scale != 1.0:
        raise ValueError("guidance_scale: an unconditional UNet takes no guidance; use 1.0")
    size = unet.config.sample_size
    hw = (size, size) if isinstance(size, int) else tuple(size)
    trajectory = ddim_sample(
        unet,
        pipeline.scheduler,
        cond,
        num_steps=num_steps,
        uncond=uncond,
        guidance_scale=guidance_scale,
        eta=eta,
        grad_mask=grad_mask,
        gradient_checkpointing=gradient_checkpointing,
        latents=latents,
        shape=(len(prompts), unet.config.in_channels, *hw),
        generator=generator,
        with_log_probs=with_log_probs,
    )
    images = decode_latents(pipeline, trajectory.sample)
    return ImageSample(images, trajectory, cond, uncond)
