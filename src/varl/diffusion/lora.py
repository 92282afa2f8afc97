"""LoRA on a diffusers UNet's attention projections via peft, saved in the diffusers format.

Spec alignprop_ctrlu.md §1.1/§1.3: AlignProp trains only low-rank adapters in the UNet's
attention layers (rank 4, targets ``to_q``, ``to_k``, ``to_v``, ``to_out.0``, Gaussian init of A
and zero init of B as TRL did, so the adapted model starts equal to the base); the UNet base
weights, the VAE, the text encoder and the reward model stay frozen.

Files written by :func:`save_lora` are what ``StableDiffusionPipeline.save_lora_weights``
writes (``pytorch_lora_weights.safetensors`` with ``unet.``-prefixed diffusers keys and the
adapter config as metadata), so ``pipeline.load_lora_weights(directory)`` of any pipeline with
diffusers' Stable Diffusion LoRA loader loads them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import loaders as diffusers_loaders
from diffusers import utils as diffusers_utils
from peft import LoraConfig, get_peft_model_state_dict, set_peft_model_state_dict
from torch import Tensor, nn

# diffusers ships no type hints: its helpers are used through Any-typed names.
_LoraLoaderMixin: Any = diffusers_loaders.StableDiffusionLoraLoaderMixin  # type: ignore[attr-defined]
_to_diffusers: Any = diffusers_utils.convert_state_dict_to_diffusers  # type: ignore[attr-defined]

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
ADAPTER_NAME = "default"
WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def add_lora(
    unet: nn.Module,
    *,
    rank: int = 4,
    alpha: float | None = None,
    targets: tuple[str, ...] = LORA_TARGETS,
    seed: int | None = None,
) -> list[nn.Parameter]:
    """Freeze ``unet`` and add a trainable LoRA adapter (``unet.add_adapter``) to its attention.

    Args:
        unet: A diffusers UNet with peft support (``UNet2DConditionModel``, ``UNet2DModel``).
        rank: r >= 1 of the low-rank update ΔW = (α / r) B A.
        alpha: α (default: ``rank``, i.e. scale 1, as TRL).
        targets: Module-name suffixes to adapt.
        seed: Seeds torch before the Gaussian init of A, for a reproducible start.

    Returns:
        The trainable LoRA parameters (and nothing else has ``requires_grad``).

    Raises:
        ValueError: If ``rank`` < 1, the UNet already has an adapter, or no module matches
            ``targets``.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank: expected an int >= 1, got {rank!r}")
    if getattr(unet, "peft_config", None):
        raise ValueError("unet: already has a LoRA adapter; build the trainer on a fresh UNet")
    names = [n for n, _ in unet.named_modules()]
    if not any(n.endswith(t) for n in names for t in targets):
        raise ValueError(f"targets: no module of the UNet ends with any of {targets}")
    unet.requires_grad_(False)
    if seed is not None:
        torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank if alpha is None else alpha,  # type: ignore[arg-type]
        init_lora_weights="gaussian",
        target_modules=list(targets),
    )
    adapter: Any = unet.add_adapter
    adapter(config, adapter_name=ADAPTER_NAME)
    return lora_parameters(unet)


def lora_parameters(unet: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad`` (the LoRA weights after :func:`add_lora`)."""
    return [p for p in unet.parameters() if p.requires_grad]


def lora_state_dict(unet: nn.Module) -> dict[str, Tensor]:
    """The adapter's weights in peft's key format (for checkpoints; detached clones)."""
    state = get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME)
    return {k: v.detach().clone() for k, v in state.items()}


def load_lora_state_dict(unet: nn.Module, state: dict[str, Tensor]) -> None:
    """Copy weights from :func:`lora_state_dict` back into the adapter of ``unet``.

    Raises:
        ValueError: If a key is missing or unexpected.
    """
    current = get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME)
    if set(current) != set(state):
        raise ValueError(
            f"state: keys differ from the adapter's ({len(state)} vs {len(current)} tensors)"
        )
    result = set_peft_model_state_dict(unet, state, adapter_name=ADAPTER_NAME)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"state: unexpected keys {unexpected[:3]}")


def save_lora(unet: nn.Module, directory: str | Path) -> Path:
    """Write the UNet's adapter in the diffusers LoRA format (loadable by ``load_lora_weights``).

    Args:
        unet: A UNet with an adapter from :func:`add_lora`.
        directory: Created if needed.

    Returns:
        The path of the written ``pytorch_lora_weights.safetensors``.

    Raises:
        ValueError: If ``unet`` has no adapter.
    """
    peft_config: dict[str, Any] | None = getattr(unet, "peft_config", None)
    if not peft_config or ADAPTER_NAME not in peft_config:
        raise ValueError("unet: has no LoRA adapter to save (call add_lora first)")
    layers = _to_diffusers(get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME))
    layers = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in layers.items()}
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _LoraLoaderMixin.save_lora_weights(
        out,
        unet_lora_layers=layers,
        unet_lora_adapter_metadata=peft_config[ADAPTER_NAME].to_dict(),
        weight_name=WEIGHT_NAME,
    )
    return out / WEIGHT_NAME


def trainable_fraction(unet: nn.Module) -> float:
    """Trainable parameters / all parameters of ``unet`` (LoRA share; < 5% expected, §4.2)."""
    total = sum(p.numel() for p in unet.parameters())
    return sum(p.numel() for p in unet.parameters() if p.requires_grad) / max(total, 1)
