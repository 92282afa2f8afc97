"""An offline tiny text-to-image diffusion setting: models from configs, procedural images.

Spec alignprop_ctrlu.md §4. Nothing here touches the Hugging Face Hub. :func:`tiny_pipeline`
returns a :class:`TinyTextToImagePipeline`, a real ``diffusers.DiffusionPipeline`` with the
Stable Diffusion LoRA loader (``load_lora_weights`` / ``save_lora_weights``), holding

- ``unet``: a ``UNet2DConditionModel`` on 16×16 RGB *pixels* (no VAE: ``vae`` is None, so the
  "latents" are the images in [−1, 1]), block channels (32, 64), one cross-attention block
  (the LoRA targets ``to_q/to_k/to_v/to_out.0`` live there), cross-attention width 32, about 1M
  parameters;
- ``text_encoder``: a one-layer ``CLIPTextModel`` (width 32) from a config, with
- ``tokenizer``: a character-level tokenizer (printable ASCII), padded to 16 tokens;
- ``scheduler``: a ``DDIMScheduler`` (1000 training steps, cosine betas — they fit far better
  than linear ones in a 300-step pretraining at 16×16 —, no x̂_0 clipping so gradients are
  never cut), sampled with 10 steps by default.

The base model is pretrained with the standard ε-prediction loss on procedural images
(:func:`procedural_images`: a square of the prompt's colour on a grey background, random size
and position) with 10% of the prompts dropped to "" so classifier-free guidance works. The
pretrained weights are cached under ``cache_dir`` keyed by a hash of every setting, so the
pretraining (about 57 s of CPU time on one thread for the default) runs once per machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers import loaders as diffusers_loaders
from tokenizers import Tokenizer, decoders, models
from torch import Tensor
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

# diffusers ships no type hints: its classes are used through Any-typed names.
_DiffusionPipeline: Any = diffusers.DiffusionPipeline
_LoraLoaderMixin: Any = diffusers_loaders.StableDiffusionLoraLoaderMixin  # type: ignore[attr-defined]
_UNet2DConditionModel: Any = diffusers.UNet2DConditionModel
_DDIMScheduler: Any = diffusers.DDIMScheduler

PROMPT_COLOURS: dict[str, tuple[float, float, float]] = {
    "a red square": (0.9, 0.1, 0.1),
    "a green square": (0.1, 0.8, 0.1),
    "a blue square": (0.1, 0.2, 0.9),
    "a yellow square": (0.9, 0.85, 0.1),
}
"""The tiny model's prompts and the colour of the square each one draws."""
PROMPTS = tuple(PROMPT_COLOURS)
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")
MAX_TOKENS = 16


@dataclass(frozen=True, kw_only=True)
class TinyDiffusionConfig:
    """Settings of the tiny model and its pretraining (all enter the cache key)."""

    image_size: int = 16
    """Side of the square RGB images (= UNet sample size)."""
    block_out_channels: tuple[int, ...] = (32, 64)
    """UNet block widths; the last block has cross-attention."""
    cross_attention_dim: int = 32
    """Text-embedding width (CLIP hidden size)."""
    pretrain_steps: int = 280
    """Adam steps of ε-loss pretraining (0: random weights)."""
    batch_size: int = 16
    """Pretraining batch size."""
    lr: float = 3e-3
    """Pretraining Adam learning rate."""
    uncond_prob: float = 0.1
    """Share of pretraining prompts replaced by "" (for classifier-free guidance)."""
    seed: int = 0
    """Seed of the initial weights and of the pretraining data."""

    def key(self) -> str:
        """A short hash of every field: the cache key."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class TinyTextToImagePipeline(_DiffusionPipeline, _LoraLoaderMixin):  # type: ignore[misc]
    """A diffusers pipeline with a UNet, a DDIM scheduler, a text encoder and a tokenizer.

    It is shaped like ``StableDiffusionPipeline`` where AlignProp needs it (``unet``,
    ``scheduler``, ``text_encoder``, ``tokenizer``, optional ``vae``), and it inherits
    ``load_lora_weights`` / ``save_lora_weights`` from diffusers' Stable Diffusion LoRA loader,
    so LoRA files written by :func:`varl.diffusion.lora.save_lora` load into it and into a real
    Stable Diffusion pipeline alike. Calling it samples images (no gradients).

    Args:
        unet: The noise-prediction UNet.
        scheduler: A DDIM-compatible scheduler.
        text_encoder: Maps token ids ``[B, L]`` to ``last_hidden_state [B, L, D]``.
        tokenizer: A Hugging Face tokenizer for ``text_encoder``.
        vae: An ``AutoencoderKL`` or None for a pixel-space UNet.
    """

    _optional_components = ["vae"]  # noqa: RUF012 (diffusers reads this class attribute)
    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(
        self,
        unet: Any,
        scheduler: Any,
        text_encoder: Any,
        tokenizer: Any,
        vae: Any = None,
    ) -> None:
        super().__init__()
        self.register_modules(
            unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer, vae=vae
        )

    @torch.no_grad()
    def __call__(
        self,
        prompts: Sequence[str],
        *,
        num_inference_steps: int = 10,
        guidance_scale: float = 2.0,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample ``[B, 3, H, W]`` images in [0, 1] for ``prompts`` (DDIM, no gradients)."""
        from varl.diffusion.sampling import sample_images

        return sample_images(
            self,
            list(prompts),
            num_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            eta=eta,
            generator=generator,
        ).images


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer over printable ASCII; pads on the right to 16 tokens.

    Every character is one token; each text is wrapped as ``<bos> text <eos>`` and padded with
    ``<pad>`` (id 0), like CLIP's tokenizer used with ``padding="max_length"``.
    """
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *map(chr, range(32, 127))])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 1), ("<eos>", 2)]
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        padding_side="right",
        model_max_length=MAX_TOKENS,
    )


def build_models(cfg: TinyDiffusionConfig) -> tuple[Any, Any, Any, Any]:
    """Randomly initialised tiny models (seeded by ``cfg.seed``) and the DDIM scheduler."""
    torch.manual_seed(cfg.seed)
    n_blocks = len(cfg.block_out_channels)
    unet = _UNet2DConditionModel(
        sample_size=cfg.image_size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=cfg.block_out_channels,
        down_block_types=("DownBlock2D",) * (n_blocks - 1) + ("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (n_blocks - 1),
        cross_attention_dim=cfg.cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    tokenizer = build_char_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=cfg.cross_attention_dim,
            intermediate_size=2 * cfg.cross_attention_dim,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=cfg.cross_attention_dim,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
    )
    scheduler = _DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return unet, text_encoder, tokenizer, scheduler


def procedural_images(
    prompt_ids: Tensor, *, image_size: int = 16, generator: torch.Generator | None = None
) -> Tensor:
    """Class-coloured squares on a grey background: the tiny model's training images.

    Image b is a uniform grey background (level ~ U[0.3, 0.6]) with an axis-aligned square of
    side ~ U{size/4..size/2} at a uniform random position, filled with the colour of prompt
    ``prompt_ids[b]`` (see :data:`PROMPT_COLOURS`) plus N(0, 0.03²) pixel noise, clamped to
    [0, 1].

    Args:
        prompt_ids: ``[B]`` integer indices into :data:`PROMPTS`.
        image_size: Side of the images, >= 4.
        generator: Random source.

    Returns:
        ``[B, 3, image_size, image_size]`` float32 images in [0, 1].

    Raises:
        ValueError: If ``prompt_ids`` holds an index outside ``[0, len(PROMPTS))`` or
            ``image_size`` < 4.
    """
    if image_size < 4:
        raise ValueError(f"image_size: expected an int >= 4, got {image_size}")
    ids = torch.as_tensor(prompt_ids, dtype=torch.long).flatten()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(PROMPTS)):
        raise ValueError(f"prompt_ids: expected values in [0, {len(PROMPTS)}), got {ids.tolist()}")
    n = ids.numel()
    colours = torch.tensor([PROMPT_COLOURS[p] for p in PROMPTS])[ids]  # [B, 3]
    grey = 0.3 + 0.3 * torch.rand(n, 1, 1, 1, generator=generator)
    images = grey.expand(n, 3, image_size, image_size).clone()
    lo, hi = image_size // 4, image_size // 2
    sides = torch.randint(lo, hi + 1, (n,), generator=generator)
    for b in range(n):
        side = int(sides[b])
        top, left = torch.randint(0, image_size - side + 1, (2,), generator=generator).tolist()
        images[b, :, top : top + side, left : left + side] = colours[b].reshape(3, 1, 1)
    noise = 0.03 * torch.randn(images.shape, generator=generator)
    return (images + noise).clamp(0, 1)


def encode_prompts(pipeline: Any, prompts: Sequence[str]) -> Tensor:
    """``[B, L, D]`` text-encoder hidden states of ``prompts`` (tokenised to the max length)."""
    tokens = pipeline.tokenizer(
        list(prompts),
        padding="max_length",
        max_length=pipeline.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    device = next(pipeline.text_encoder.parameters()).device
    hidden: Tensor = pipeline.text_encoder(tokens.input_ids.to(device))[0]
    return hidden


def pretrain(pipeline: Any, cfg: TinyDiffusionConfig, *, steps: int | None = None) -> list[float]:
    """Fit the UNet and the text encoder with the ε-prediction loss on procedural images.

    ``L = ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t, c)‖²`` with t ~ U{0..999}, x_0 from
    :func:`procedural_images` scaled to [−1, 1] and c the prompt's embedding ("" with
    probability ``cfg.uncond_prob``). Adam, seeded by ``cfg.seed``; both models end in eval mode.
    Gradients are enabled for the fit even when the caller runs under ``torch.no_grad()`` (e.g.
    :func:`tiny_pipeline` building the model on first use inside an evaluation loop).

    Returns:
        The loss of every step.
    """
    n_steps = cfg.pretrain_steps if steps is None else steps
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    unet, text_encoder, scheduler = pipeline.unet, pipeline.text_encoder, pipeline.scheduler
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimiser = torch.optim.Adam(params, lr=cfg.lr)
    alphas = scheduler.alphas_cumprod.float()
    unet.train()
    text_encoder.train()
    losses = []
    with torch.enable_grad():  # backward() needs a graph even under an outer no_grad
        for _ in range(n_steps):
            ids = torch.randint(0, len(PROMPTS), (cfg.batch_size,), generator=gen)
            x0 = procedural_images(ids, image_size=cfg.image_size, generator=gen) * 2 - 1
            drop = torch.rand(cfg.batch_size, generator=gen) < cfg.uncond_prob
            prompts = ["" if d else PROMPTS[int(i)] for i, d in zip(ids, drop, strict=True)]
            t = torch.randint(0, len(alphas), (cfg.batch_size,), generator=gen)
            eps = torch.randn(x0.shape, generator=gen)
            a = alphas[t].reshape(-1, 1, 1, 1)
            xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
            pred = unet(xt, t, encoder_hidden_states=encode_prompts(pipeline, prompts)).sample
            loss = torch.nn.functional.mse_loss(pred, eps)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            losses.append(float(loss.detach()))
    unet.eval()
    text_encoder.eval()
    return losses


def default_cache_dir() -> Path:
    """``$VARL_CACHE`` or ``~/.cache/varl``."""
    return Path(os.environ.get("VARL_CACHE", Path.home() / ".cache" / "varl"))


def tiny_pipeline(
    cfg: TinyDiffusionConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> TinyTextToImagePipeline:
    """The pretrained tiny pipeline; pretrains (and caches) on first use.

    The cache file is ``cache_dir / f"tiny-diffusion-{cfg.key()}.pt"`` holding the UNet and
    text-encoder state dicts; a different setting gets a different file. All parameters are
    frozen (``requires_grad=False``) and the models are in eval mode.

    Args:
        cfg: The model and pretraining settings (default :class:`TinyDiffusionConfig`).
        cache_dir: Where to cache (default :func:`default_cache_dir`).
        use_cache: Read and write the cache; False always pretrains.

    Returns:
        The pipeline on the CPU in float32.
    """
    cfg = cfg or TinyDiffusionConfig()
    unet, text_encoder, tokenizer, scheduler = build_models(cfg)
    pipeline = TinyTextToImagePipeline(unet, scheduler, text_encoder, tokenizer)
    path = Path(cache_dir or default_cache_dir()) / f"tiny-diffusion-{cfg.key()}.pt"
    if use_cache and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
    else:
        if cfg.pretrain_steps > 0:
            pretrain(pipeline, cfg)
        if use_cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # concurrent writers do not clash
            torch.save({"unet": unet.state_dict(), "text_encoder": text_encoder.state_dict()}, tmp)
            tmp.replace(path)
    unet.requires_grad_(False).eval()
    text_encoder.requires_grad_(False).eval()
    return pipeline


def random_stable_diffusion_pipeline(seed: int = 0) -> Any:
    """A real ``StableDiffusionPipeline`` with tiny *random* components, for interop checks.

    A latent ``UNet2DConditionModel`` (4 channels, 8×8 latents, the same block layout as
    :func:`build_models`), an ``AutoencoderKL`` with two blocks (scale factor 2, so 16×16
    images), the tiny CLIP text encoder and character tokenizer, a DDIM scheduler, no safety
    checker. Nothing is trained: it shows that code written for the tiny pipeline runs
    unchanged on the pipeline class users load from the Hub.
    """
    cfg = TinyDiffusionConfig(seed=seed, pretrain_steps=0)
    _, text_encoder, tokenizer, scheduler = build_models(cfg)
    torch.manual_seed(seed)
    unet = _UNet2DConditionModel(
        sample_size=cfg.image_size // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=cfg.block_out_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cfg.cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    autoencoder: Any = diffusers.AutoencoderKL
    vae = autoencoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=cfg.image_size,
    )
    pipeline_cls: Any = diffusers.StableDiffusionPipeline
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False).eval()
    return pipeline_cls(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
