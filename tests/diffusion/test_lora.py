"""LoRA on the UNet attention: only adapters train, diffusers-format save/load round trip.

Spec alignprop_ctrlu.md §4.2 (LoRA check) and §6 item 6.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from varl.diffusion import lora, sampling, tiny

torch.set_num_threads(1)

TEST_CFG = tiny.TinyDiffusionConfig(pretrain_steps=20, batch_size=8)
"""A briefly pretrained tiny model; the file name is shared with the other test modules."""

PipeFactory = Callable[[], tiny.TinyTextToImagePipeline]


@pytest.fixture(scope="module")
def make_pipe(tmp_path_factory: pytest.TempPathFactory) -> PipeFactory:
    cache = tmp_path_factory.getbasetemp() / "varl-tiny"
    return lambda: tiny.tiny_pipeline(TEST_CFG, cache_dir=cache)


def _sample(pipe: tiny.TinyTextToImagePipeline, guidance: float = 2.0) -> torch.Tensor:
    return pipe(
        list(tiny.PROMPTS), guidance_scale=guidance, generator=torch.Generator().manual_seed(0)
    )


def test_lora_targets_attention_and_is_a_small_share(make_pipe: PipeFactory) -> None:
    pipe = make_pipe()
    params = lora.add_lora(pipe.unet, seed=0)
    names = [n for n, p in pipe.unet.named_parameters() if p.requires_grad]
    assert len(names) == len(params) > 0
    assert all("lora_A" in n or "lora_B" in n for n in names)
    assert {t for n in names for t in lora.LORA_TARGETS if f".{t}." in n} == set(lora.LORA_TARGETS)
    assert 0 < lora.trainable_fraction(pipe.unet) < 0.05
    with pytest.raises(ValueError, match="already"):
        lora.add_lora(pipe.unet)
    with pytest.raises(ValueError, match="rank"):
        lora.add_lora(make_pipe().unet, rank=0)


def test_fresh_lora_leaves_the_model_unchanged(make_pipe: PipeFactory) -> None:
    pipe = make_pipe()
    before = _sample(pipe)
    lora.add_lora(pipe.unet, seed=0)
    torch.testing.assert_close(_sample(pipe), before, rtol=0, atol=1e-6)
    assert not torch.equal(_sample(pipe, guidance=4.0), before)  # guidance is applied


def test_cfg_backward_gives_grads_to_lora_only(make_pipe: PipeFactory) -> None:
    pipe = make_pipe()
    params = lora.add_lora(pipe.unet, seed=0)
    out = sampling.sample_images(
        pipe,
        list(tiny.PROMPTS),
        num_steps=4,
        guidance_scale=3.0,
        gradient_checkpointing=True,
        generator=torch.Generator().manual_seed(0),
    )
    out.images.mean().backward()
    assert all(p.grad is not None for p in params)
    assert any(float(p.grad.abs().sum()) > 0 for p in params if p.grad is not None)
    ids = {id(p) for p in params}
    frozen = [p for p in pipe.unet.parameters() if id(p) not in ids]
    assert frozen and all(p.grad is None for p in frozen)
    assert all(p.grad is None for p in pipe.text_encoder.parameters())


def test_save_and_load_lora_weights_round_trip(make_pipe: PipeFactory, tmp_path: Path) -> None:
    pipe = make_pipe()
    lora.add_lora(pipe.unet, seed=0)
    with torch.no_grad():
        for name, p in pipe.unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    trained = _sample(pipe)
    path = lora.save_lora(pipe.unet, tmp_path)
    assert path.name == "pytorch_lora_weights.safetensors"
    from safetensors.torch import load_file

    assert all(k.startswith("unet.") for k in load_file(path))
    base = make_pipe()
    assert not torch.allclose(_sample(base), trained, atol=1e-4)  # the LoRA matters
    base.load_lora_weights(tmp_path)
    torch.testing.assert_close(_sample(base), trained, rtol=0, atol=1e-6)


def test_lora_state_dict_round_trip_and_key_check(make_pipe: PipeFactory) -> None:
    pipe = make_pipe()
    lora.add_lora(pipe.unet, seed=0)
    state = lora.lora_state_dict(pipe.unet)
    changed = {k: v + 1.0 for k, v in state.items()}
    lora.load_lora_state_dict(pipe.unet, changed)
    for k, v in lora.lora_state_dict(pipe.unet).items():
        assert torch.equal(v, changed[k])
    with pytest.raises(ValueError, match="keys"):
        lora.load_lora_state_dict(pipe.unet, dict(list(state.items())[:-1]))
    with pytest.raises(ValueError, match="adapter"):
        lora.save_lora(make_pipe().unet, Path("unused"))
