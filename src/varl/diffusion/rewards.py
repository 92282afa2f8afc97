"""Differentiable image rewards for reward backpropagation (AlignProp) and the DDPO baseline.

Paper: Prabhudesai et al., "Aligning Text-to-Image Diffusion Models with Reward
Backpropagation" (AlignProp), arXiv 2310.03739; how each reward is made differentiable follows
spec alignprop_ctrlu.md §1.5.

Every reward here is a TRL-AlignProp-compatible callable

    reward_fn(images, prompts, metadata) -> (rewards [B], info dict)

where ``images`` is a ``[B, C, H, W]`` float tensor in [0, 1] (C = 1 or 3) that carries the
gradient of the denoising chain, and ``rewards`` keeps a ``grad_fn`` back to it. A reward that
detaches its output (``@torch.no_grad``, a uint8 ``round()``, a PIL or HF-processor round trip:
the DDPO scorers do all three) would make reward backpropagation silently train nothing, so every
reward here ends with :func:`check_differentiable`, which raises instead; wrap user rewards in it
too. ``prompts`` and ``metadata`` are accepted for the signature and ignored.

Rewards:
    brightness_reward       mean intensity
    ColourReward            −mean ‖x_p − c‖² to a target colour c (``colour_reward(c)`` builds one)
    compressibility_reward  −total variation: a differentiable *proxy* of JPEG size
    JpegSizeSurrogate       a small CNN fitted on the fly to measured JPEG sizes: a *learned
                            surrogate*; its ``reward`` is −predicted size in kB
    AestheticHead           the LAION improved-aesthetic-predictor head on CLIP embeddings;
                            ``AestheticReward`` chains a user CLIP image encoder and the head
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

RewardOutput = tuple[Tensor, dict[str, Any]]

RANGE_TOLERANCE = 1e-3
"""How far outside [0, 1] an image value may lie (VAE decodes overshoot by float error)."""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class NonDifferentiableRewardError(RuntimeError):
    """A reward returned a tensor without ``grad_fn`` although the images require grad."""


def validate_images(
    images: Tensor,
    *,
    name: str = "images",
    channels: Sequence[int] = (1, 3),
    tolerance: float = RANGE_TOLERANCE,
) -> None:
    """Check that ``images`` is a finite ``[B, C, H, W]`` float batch in [0, 1].

    Args:
        images: The batch to check.
        name: The argument name used in the error message.
        channels: The accepted channel counts C.
        tolerance: How far outside [0, 1] a value may lie.

    Raises:
        ValueError: If ``images`` is not a floating tensor of rank 4 with B >= 1 and an accepted
            C, or contains NaN, inf or values outside [−tolerance, 1 + tolerance].
    """
    if not isinstance(images, Tensor) or not images.is_floating_point():
        raise ValueError(f"{name}: expected a float tensor [B, C, H, W], got {type(images)}")
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(
            f"{name}: expected shape [B, C, H, W] with B >= 1, got {tuple(images.shape)}"
        )
    if images.shape[1] not in channels:
        raise ValueError(f"{name}: expected C in {tuple(channels)}, got {images.shape[1]}")
    with torch.no_grad():
        if not torch.isfinite(images).all():
            raise ValueError(f"{name}: contains NaN or inf")
        lo, hi = float(images.min()), float(images.max())
    if lo < -tolerance or hi > 1.0 + tolerance:
        raise ValueError(f"{name}: expected values in [0, 1], got range [{lo:.4g}, {hi:.4g}]")


def check_differentiable(rewards: Tensor, images: Tensor, *, name: str = "rewards") -> Tensor:
    """Guard against a reward that cut the graph (the DDPO-scorer pitfall, spec §1.5).

    Args:
        rewards: ``[B]`` rewards returned by a reward function.
        images: ``[B, C, H, W]`` images the rewards were computed from.
        name: The reward's name in the error message.

    Returns:
        ``rewards`` unchanged.

    Raises:
        ValueError: If ``rewards`` is not a ``[B]`` tensor matching the batch, or is not finite.
        NonDifferentiableRewardError: If ``images.requires_grad`` but ``rewards`` has no
            ``grad_fn``, i.e. no gradient can reach the images (``@torch.no_grad``,
            ``.detach()``, a uint8 round trip, a PIL/processor round trip or ``.item()``).
    """
    if not isinstance(rewards, Tensor) or rewards.shape != images.shape[:1]:
        shape = tuple(rewards.shape) if isinstance(rewards, Tensor) else type(rewards)
        raise ValueError(f"{name}: expected a tensor of shape [{images.shape[0]}], got {shape}")
    if not torch.isfinite(rewards.detach()).all():
        raise ValueError(f"{name}: contains NaN or inf")
    if images.requires_grad and rewards.grad_fn is None:
        raise NonDifferentiableRewardError(
            f"{name}: has no grad_fn although the images require grad, so reward "
            "backpropagation would train nothing; compute the reward with differentiable torch "
            "ops (no torch.no_grad, .detach(), uint8 rounding, PIL or HF image processors)"
        )
    return rewards


def _check_prompts(prompts: Sequence[str] | None, images: Tensor) -> None:
    if prompts is not None and len(prompts) != images.shape[0]:
        raise ValueError(f"prompts: expected {images.shape[0]} prompts, got {len(prompts)}")


# --- pure image statistics ---------------------------------------------------------------------


def brightness(images: Tensor) -> Tensor:
    """Mean intensity ``[B]`` of ``[B, C, H, W]`` images: mean over C, H and W."""
    return images.mean(dim=(1, 2, 3))


def colour_distance(images: Tensor, target_rgb: Tensor) -> Tensor:
    """Mean squared distance ``[B]`` to a colour: ``mean_p ‖x_p − c‖²`` summed over channels.

    Args:
        images: ``[B, 3, H, W]`` images.
        target_rgb: ``[3]`` target colour c.
    """
    diff = images - target_rgb.to(images).reshape(1, -1, 1, 1)
    return diff.square().sum(dim=1).mean(dim=(1, 2))


def total_variation(images: Tensor) -> Tensor:
    """Anisotropic L1 total variation per pixel pair ``[B]``.

    ``TV = mean|x[:, :, i+1, j] − x[:, :, i, j]| + mean|x[:, :, i, j+1] − x[:, :, i, j]|``, each
    mean over channels and all neighbour pairs, so TV is in [0, 2] for images in [0, 1] and does
    not depend on resolution (a 0/1 checkerboard scores 2, a constant image 0).

    Args:
        images: ``[B, C, H, W]`` images with H, W >= 2.
    """
    dh = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
    dw = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    return dh + dw


def to_uint8(images: Tensor) -> Tensor:
    """Quantise ``[B, C, H, W]`` images in [0, 1] to uint8 ``[B, H, W, C]`` (not differentiable)."""
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def jpeg_size_kb(images: Tensor, *, quality: int = 95) -> Tensor:
    """Measured JPEG file size ``[B]`` in kB (1 kB = 1000 bytes), as DDPO's compressibility reward.

    Each image is quantised to uint8 and encoded with Pillow at a fixed ``quality`` in memory.
    Not differentiable: a black-box reward for DDPO and the regression target of
    :class:`JpegSizeSurrogate`.

    Args:
        images: ``[B, C, H, W]`` images in [0, 1], C = 1 (greyscale) or 3 (RGB).
        quality: JPEG quality in [1, 95] (DDPO uses 95).

    Raises:
        ValueError: On bad ``images`` or ``quality``.
    """
    from PIL import Image

    validate_images(images)
    if not 1 <= quality <= 95:
        raise ValueError(f"quality: expected an int in [1, 95], got {quality}")
    sizes = []
    for arr in to_uint8(images).numpy():
        pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=quality)
        sizes.append(buffer.tell() / 1000.0)
    return torch.tensor(sizes, dtype=torch.float32)


# --- reward callables --------------------------------------------------------------------------


def brightness_reward(
    images: Tensor, prompts: Sequence[str] | None = None, metadata: Any = None
) -> RewardOutput:
    """Reward = mean intensity of each image, in [0, 1].

    Args:
        images: ``[B, C, H, W]`` images in [0, 1].
        prompts: The prompts (ignored; length checked when given).
        metadata: The prompt metadata (ignored).

    Returns:
        ``[B]`` rewards and ``{"brightness": [B] detached}``.

    Raises:
        ValueError: On bad ``images`` or a ``prompts`` length that differs from B.

    Example:
        >>> float(brightness_reward(torch.full((1, 3, 4, 4), 0.25))[0][0])
        0.25
    """
    validate_images(images)
    _check_prompts(prompts, images)
    rewards = check_differentiable(brightness(images), images, name="brightness_reward")
    return rewards, {"brightness": rewards.detach()}


class ColourReward:
    """Reward = −mean squared distance of the pixels to a target colour c.

    ``r = −mean_p ‖x_p − c‖²`` over pixels p, the squared norm over RGB; 0 for an image of
    exactly colour c, down to −3. ``ColourReward((1, 0, 0))`` is the "redness" reward.

    Args:
        target_rgb: Three values in [0, 1].

    Raises:
        ValueError: If ``target_rgb`` does not have three finite values in [0, 1].
    """

    def __init__(self, target_rgb: Sequence[float] | Tensor) -> None:
        target = torch.as_tensor(target_rgb, dtype=torch.float32).detach().flatten()
        if target.numel() != 3 or not torch.isfinite(target).all():
            raise ValueError(f"target_rgb: expected three finite values, got {target_rgb!r}")
        if ((target < 0) | (target > 1)).any():
            raise ValueError(f"target_rgb: expected values in [0, 1], got {target.tolist()}")
        self.target_rgb = target

    def __call__(
        self, images: Tensor, prompts: Sequence[str] | None = None, metadata: Any = None
    ) -> RewardOutput:
        """Score ``[B, 3, H, W]`` images in [0, 1]; returns ``[B]`` rewards and
        ``{"colour_mse": [B] detached}``.

        Raises:
            ValueError: On bad ``images`` (including C != 3) or a ``prompts`` length != B.
        """
        validate_images(images, channels=(3,))
        _check_prompts(prompts, images)
        mse = colour_distance(images, self.target_rgb)
        rewards = check_differentiable(-mse, images, name="colour_reward")
        return rewards, {"colour_mse": mse.detach()}

    def __repr__(self) -> str:
        return f"ColourReward(target_rgb={self.target_rgb.tolist()})"


def colour_reward(target_rgb: Sequence[float] | Tensor) -> ColourReward:
    """Build the reward ``−mean_p ‖x_p − c‖²`` for a target colour c (see :class:`ColourReward`)."""
    return ColourReward(target_rgb)


def compressibility_reward(
    images: Tensor, prompts: Sequence[str] | None = None, metadata: Any = None
) -> RewardOutput:
    """Reward = −total variation: a differentiable *proxy* of JPEG compressibility.

    JPEG file size is not differentiable (DDPO measures it with PIL at quality 95). Total
    variation (:func:`total_variation`) counts high-frequency content, which JPEG spends its bits
    on, so it correlates strongly with file size (spec §1.5) — but it is a proxy, not the size;
    use :class:`JpegSizeSurrogate` for a learned estimate of the size itself.

    Args:
        images: ``[B, C, H, W]`` images in [0, 1] with H, W >= 2.
        prompts: The prompts (ignored; length checked when given).
        metadata: The prompt metadata (ignored).

    Returns:
        ``[B]`` rewards in [−2, 0] and ``{"total_variation": [B] detached}``.

    Raises:
        ValueError: On bad ``images`` or a ``prompts`` length that differs from B.
    """
    validate_images(images)
    _check_prompts(prompts, images)
    if min(images.shape[2:]) < 2:
        raise ValueError(f"images: expected H, W >= 2, got {tuple(images.shape)}")
    tv = total_variation(images)
    rewards = check_differentiable(-tv, images, name="compressibility_reward")
    return rewards, {"total_variation": tv.detach()}


class JpegSizeSurrogate(nn.Module):
    """A small CNN that regresses the JPEG file size (kB): a *learned*, differentiable surrogate.

    JPEG size is a black box; for reward backpropagation the AlignProp authors' follow-up code
    regresses measured sizes with a network (spec §1.5: a CLIP-embedding MLP there). This one is
    a CNN on the pixels, small enough to fit on the fly with :meth:`fit` from sizes measured with
    Pillow (:func:`jpeg_size_kb`). Its prediction mirrors how a JPEG file is built:

        size_kB = header + Σ_pixels softplus(f(x)) / 1000

    a learned header size plus a non-negative bytes-per-pixel density map ``f`` (three
    convolutions, /4 resolution, upsampled implicitly by the pixel count), so it extrapolates
    across resolutions. It is only as good as its training images: fit it on images like the
    ones being optimised, and expect the optimiser to exploit its errors (reward hacking).

    Args:
        in_channels: C of the images, 1 or 3.
        width: Convolution channels.
        quality: The JPEG quality :meth:`fit` measures at.

    Raises:
        ValueError: On a bad ``in_channels``, ``width`` or ``quality``.
    """

    def __init__(self, in_channels: int = 3, *, width: int = 16, quality: int = 95) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels: expected 1 or 3, got {in_channels}")
        if width < 1:
            raise ValueError(f"width: expected an int >= 1, got {width}")
        if not 1 <= quality <= 95:
            raise ValueError(f"quality: expected an int in [1, 95], got {quality}")
        self.in_channels = in_channels
        self.quality = quality
        self.density = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 1, 1),
        )
        self.header_kb = nn.Parameter(torch.tensor(0.6))  # a baseline JPEG header is ~0.6 kB

    def forward(self, images: Tensor) -> Tensor:
        """Predicted JPEG size ``[B]`` in kB of ``[B, C, H, W]`` images in [0, 1] (H, W >= 8)."""
        validate_images(images, channels=(self.in_channels,))
        height, width = images.shape[2:]
        if min(height, width) < 8:
            raise ValueError(f"images: expected H, W >= 8, got {tuple(images.shape)}")
        dens = nn.functional.softplus(self.density(images * 2 - 1))  # bytes per pixel
        return self.header_kb + dens.mean(dim=(1, 2, 3)) * (height * width / 1000.0)

    def fit(
        self,
        images: Tensor,
        steps: int = 200,
        *,
        lr: float = 3e-3,
        batch_size: int = 32,
        seed: int = 0,
    ) -> list[float]:
        """Regress the measured JPEG sizes of ``images`` (MSE in kB², Adam).

        Sizes are measured once with :func:`jpeg_size_kb` at ``self.quality``; each step draws
        a minibatch with a generator seeded by ``seed``. Afterwards the parameters are frozen
        (``requires_grad=False``) and the module is in eval mode, so reward backpropagation
        reaches only the images; call ``fit`` again to refit.

        Args:
            images: ``[N, C, H, W]`` training images in [0, 1], ideally like the ones the reward
                will score (e.g. samples of the model being fine-tuned).
            steps: Optimiser steps, >= 1.
            lr: Adam learning rate, > 0.
            batch_size: Minibatch size, >= 1 (capped at N).
            seed: Seed of the minibatch draws.

        Returns:
            The training loss of every step.

        Raises:
            ValueError: On bad ``images``, ``steps``, ``lr`` or ``batch_size``.
        """
        validate_images(images, channels=(self.in_channels,))
        if steps < 1:
            raise ValueError(f"steps: expected an int >= 1, got {steps}")
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr: expected a finite float > 0, got {lr}")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size}")
        data = images.detach().float()
        targets = jpeg_size_kb(data, quality=self.quality)
        device = self.header_kb.device
        data, targets = data.to(device), targets.to(device)
        generator = torch.Generator().manual_seed(seed)
        batch = min(batch_size, data.shape[0])
        self.requires_grad_(True)
        self.train()
        optimiser = torch.optim.Adam(self.parameters(), lr=lr)
        losses = []
        for _ in range(steps):
            idx = torch.randperm(data.shape[0], generator=generator)[:batch].to(device)
            loss = nn.functional.mse_loss(self(data[idx]), targets[idx])
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            losses.append(float(loss.detach()))
        self.requires_grad_(False)
        self.eval()
        return losses

    def reward(
        self, images: Tensor, prompts: Sequence[str] | None = None, metadata: Any = None
    ) -> RewardOutput:
        """Reward = −predicted JPEG size in kB (higher = more compressible).

        Returns:
            ``[B]`` rewards and ``{"predicted_jpeg_kb": [B] detached}``.

        Raises:
            ValueError: On bad ``images`` or a ``prompts`` length that differs from B.
        """
        _check_prompts(prompts, images)
        size = self(images)
        rewards = check_differentiable(-size, images, name="JpegSizeSurrogate.reward")
        return rewards, {"predicted_jpeg_kb": size.detach()}


class AestheticHead(nn.Module):
    """The LAION "improved aesthetic predictor" head on CLIP image embeddings.

    The architecture of ``christophschuhmann/improved-aesthetic-predictor`` (spec §1.5), which
    TRL's and AlignProp's aesthetic scorers wrap: an L2-normalised CLIP ViT-L/14 image embedding
    → Linear 768→1024, Dropout 0.2, Linear →128, Dropout 0.2, Linear →64, Dropout 0.1,
    Linear →16, Linear →1. As in the original there is no activation between the layers, so in
    eval mode it is an affine map of the embedding. The submodule is named ``layers`` like the
    original, so its published state dicts (e.g. ``sac+logos+ava1-l14-linearMSE.pth``) load as
    they are. No weights ship with varl and nothing is downloaded: load your own with
    :meth:`load`, and compute embeddings with your own CLIP model.

    Args:
        embed_dim: The embedding size (768 for ViT-L/14).
        normalize: L2-normalise embeddings before the head, as the predictor was trained.

    Raises:
        ValueError: If ``embed_dim`` < 1.
    """

    def __init__(self, embed_dim: int = 768, *, normalize: bool = True) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim: expected an int >= 1, got {embed_dim}")
        self.embed_dim = embed_dim
        self.normalize = normalize
        self.layers = nn.Sequential(
            nn.Linear(embed_dim, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, embeddings: Tensor) -> Tensor:
        """Aesthetic scores ``[B]`` (about 1-10 with the LAION weights) of ``[B, D]`` embeddings.

        Raises:
            ValueError: If ``embeddings`` is not a finite ``[B, embed_dim]`` float tensor.
        """
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embed_dim:
            raise ValueError(
                f"embeddings: expected shape [B, {self.embed_dim}], got {tuple(embeddings.shape)}"
            )
        if not torch.isfinite(embeddings.detach()).all():
            raise ValueError("embeddings: contains NaN or inf")
        x = embeddings.float()
        if self.normalize:
            x = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=1e-12)
        out: Tensor = self.layers(x).squeeze(-1)
        return out

    def save(self, path: str | Path) -> None:
        """Write the state dict (``layers.*`` keys, as the original) to ``path``."""
        torch.save(self.state_dict(), Path(path))

    @classmethod
    def load(
        cls, path: str | Path, *, embed_dim: int = 768, normalize: bool = True
    ) -> AestheticHead:
        """A head with the state dict at ``path`` (weights only, loaded on the CPU), in eval mode
        with frozen parameters.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            RuntimeError: If the state dict does not match the architecture.
        """
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        head = cls(embed_dim, normalize=normalize)
        head.load_state_dict(state)
        head.requires_grad_(False)
        return head.eval()


def clip_preprocess(images: Tensor, *, size: int = 224) -> Tensor:
    """Differentiable CLIP preprocessing: resize to ``size``² (bicubic) and normalise with the
    CLIP mean/std, replacing the HF image processor, which is not differentiable (spec §1.5).

    Args:
        images: ``[B, 3, H, W]`` images in [0, 1].
        size: The CLIP input resolution.

    Returns:
        ``[B, 3, size, size]`` pixel values for ``get_image_features(pixel_values=...)``.
    """
    x = nn.functional.interpolate(
        images.clamp(0, 1), size=(size, size), mode="bicubic", align_corners=False
    )
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    return (x - mean) / std


class AestheticReward:
    """Reward = the LAION aesthetic score of images, differentiable end to end.

    images → :func:`clip_preprocess` → ``embed_fn`` (your CLIP image encoder, e.g.
    ``lambda px: clip.get_image_features(pixel_values=px)``) → :class:`AestheticHead`.

    Args:
        head: The aesthetic head (see :meth:`AestheticHead.load`).
        embed_fn: Maps ``[B, 3, size, size]`` CLIP pixel values to ``[B, D]`` embeddings; must
            not cut the graph.
        size: The CLIP input resolution.
    """

    def __init__(
        self, head: AestheticHead, embed_fn: Callable[[Tensor], Tensor], *, size: int = 224
    ) -> None:
        self.head = head
        self.embed_fn = embed_fn
        self.size = size

    def __call__(
        self, images: Tensor, prompts: Sequence[str] | None = None, metadata: Any = None
    ) -> RewardOutput:
        """Score ``[B, 3, H, W]`` images in [0, 1]; returns ``[B]`` rewards and
        ``{"aesthetic": [B] detached}``.

        Raises:
            ValueError: On bad ``images`` or embeddings, or a ``prompts`` length != B.
        """
        validate_images(images, channels=(3,))
        _check_prompts(prompts, images)
        scores = self.head(self.embed_fn(clip_preprocess(images, size=self.size)))
        rewards = check_differentiable(scores, images, name="AestheticReward")
        return rewards, {"aesthetic": rewards.detach()}
