"""The offline tiny text-to-image setting: procedural images, tokenizer, pretraining, cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from varl.diffusion import tiny

torch.set_num_threads(1)

FAST = tiny.TinyDiffusionConfig(pretrain_steps=4, batch_size=4)


def test_procedural_images_have_the_prompt_colour_square_on_grey() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.tensor([0, 1, 2, 3, 0])
    images = tiny.procedural_images(ids, generator=gen)
    assert images.shape == (5, 3, 16, 16)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    for b, i in enumerate(ids.tolist()):
        colour = torch.tensor(tiny.PROMPT_COLOURS[tiny.PROMPTS[i]]).reshape(3, 1, 1)
        close = ((images[b] - colour).abs() < 0.15).all(dim=0)
        assert int(close.sum()) >= (16 // 4) ** 2  # at least the smallest square
        assert int(close.sum()) <= (16 // 2) ** 2 + 5  # grey background is far from the colour


def test_procedural_images_reject_unknown_prompts() -> None:
    with pytest.raises(ValueError, match="prompt_ids"):
        tiny.procedural_images(torch.tensor([4]))
    with pytest.raises(ValueError, match="image_size"):
        tiny.procedural_images(torch.tensor([0]), image_size=2)


def test_char_tokenizer_wraps_and_pads() -> None:
    tok = tiny.build_char_tokenizer()
    ids = tok(["ab"], padding="max_length", max_length=tiny.MAX_TOKENS).input_ids[0]
    a = 3 + ord("a") - 32
    assert ids == [1, a, a + 1, 2] + [0] * (tiny.MAX_TOKENS - 4)


def test_cache_key_changes_with_settings_and_cache_round_trips(tmp_path: Path) -> None:
    assert FAST.key() != tiny.TinyDiffusionConfig(pretrain_steps=5, batch_size=4).key()
    first = tiny.tiny_pipeline(FAST, cache_dir=tmp_path)
    assert (tmp_path / f"tiny-diffusion-{FAST.key()}.pt").exists()
    second = tiny.tiny_pipeline(FAST, cache_dir=tmp_path)
    second_state = second.unet.state_dict()
    for name, p in first.unet.state_dict().items():
        assert torch.equal(p, second_state[name]), name
    fresh = tiny.build_models(FAST)[0]
    assert not all(
        torch.equal(p, q) for p, q in zip(fresh.parameters(), first.unet.parameters(), strict=True)
    )  # the cached weights are the pretrained ones, not the initialisation
    assert not any(p.requires_grad for p in first.unet.parameters())


def test_pretraining_lowers_the_noise_prediction_loss() -> None:
    cfg = tiny.TinyDiffusionConfig(pretrain_steps=30, batch_size=4, lr=3e-3)
    unet, text_encoder, tokenizer, scheduler = tiny.build_models(cfg)
    pipe = tiny.TinyTextToImagePipeline(unet, scheduler, text_encoder, tokenizer)
    losses = tiny.pretrain(pipe, cfg)
    assert len(losses) == 30
    assert sum(losses[-10:]) < 0.7 * sum(losses[:10])


def test_pipeline_call_samples_deterministic_images_in_range(tmp_path: Path) -> None:
    pipe = tiny.tiny_pipeline(FAST, cache_dir=tmp_path)
    images = pipe(list(tiny.PROMPTS), generator=torch.Generator().manual_seed(0))
    again = pipe(list(tiny.PROMPTS), generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 3, 16, 16)
    assert torch.equal(images, again)
    assert float(images.min()) >= 0 and float(images.max()) <= 1


def test_tiny_pipeline_pretrains_under_no_grad(tmp_path: Path) -> None:
    unet, text_encoder, tokenizer, scheduler = tiny.build_models(FAST)
    pipe = tiny.TinyTextToImagePipeline(unet, scheduler, text_encoder, tokenizer)
    with torch.no_grad():  # e.g. first use inside an evaluation loop, with an empty cache
        inside = tiny.tiny_pipeline(FAST, cache_dir=tmp_path / "a")
        losses = tiny.pretrain(pipe, FAST, steps=2)
        assert not torch.is_grad_enabled()  # the caller's no_grad is back in force
    assert len(losses) == 2 and all(math.isfinite(loss) and loss > 0 for loss in losses)
    outside = tiny.tiny_pipeline(FAST, cache_dir=tmp_path / "b")
    fresh = tiny.build_models(FAST)[0].state_dict()
    state = outside.unet.state_dict()
    for name, p in inside.unet.state_dict().items():
        assert torch.equal(p, state[name]), name  # the same fit as with gradients enabled
    assert any(not torch.equal(p, fresh[name]) for name, p in state.items())
