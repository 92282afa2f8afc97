"""Differentiable diffusion rewards: hand-computed values, gradients (spec §6 item 5), the
grad_fn guard, the learned JPEG-size surrogate, the aesthetic head and bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

from varl.diffusion.rewards import (
    AestheticHead,
    AestheticReward,
    ColourReward,
    JpegSizeSurrogate,
    NonDifferentiableRewardError,
    brightness,
    brightness_reward,
    check_differentiable,
    colour_reward,
    compressibility_reward,
    jpeg_size_kb,
    total_variation,
)

torch.set_num_threads(1)

RewardFn = Callable[..., tuple[Tensor, dict[str, Any]]]


def _checkerboard(size: int = 4, low: float = 0.0, high: float = 1.0) -> Tensor:
    i = torch.arange(size)
    board = ((i[:, None] + i[None, :]) % 2).float()
    return (low + (high - low) * board).expand(1, 3, size, size).clone()


def _training_images(n: int = 32, size: int = 32, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 1, 1, generator=g)
    amplitude = torch.rand(n, 1, 1, 1, generator=g) * 0.5
    noise = torch.rand(n, 3, size, size, generator=g) - 0.5
    return (base + amplitude * noise).clamp(0, 1)


def _fake_clip(dim: int = 768) -> Callable[[Tensor], Tensor]:
    proj = torch.randn(3, dim, generator=torch.Generator().manual_seed(1))
    return lambda px: px.mean(dim=(2, 3)) @ proj + px.std(dim=(2, 3)) @ proj.flip(1)


# --- exact values ------------------------------------------------------------------------------


def test_brightness_of_constant_image() -> None:
    images = torch.full((2, 3, 4, 4), 0.25)
    rewards, info = brightness_reward(images, ["a", "b"], [{}, {}])
    assert_close(rewards, torch.tensor([0.25, 0.25]))
    assert_close(info["brightness"], rewards)
    assert_close(brightness(_checkerboard()), torch.tensor([0.5]))


def test_total_variation_hand_values() -> None:
    assert_close(total_variation(torch.full((1, 3, 5, 5), 0.7)), torch.tensor([0.0]))
    assert_close(total_variation(_checkerboard()), torch.tensor([2.0]))  # every pair differs by 1
    assert_close(total_variation(_checkerboard(6, 0.25, 0.75)), torch.tensor([1.0]))
    # [[0, .5, 1], [0, 0, 0]]: vertical |0|,|.5|,|1| -> .5; horizontal .5,.5,0,0 -> .25
    image = torch.tensor([[[[0.0, 0.5, 1.0], [0.0, 0.0, 0.0]]]])
    assert_close(total_variation(image), torch.tensor([0.75]))
    rewards, info = compressibility_reward(torch.cat([_checkerboard(), torch.zeros(1, 3, 4, 4)]))
    assert_close(rewards, torch.tensor([-2.0, 0.0]))
    assert_close(info["total_variation"], torch.tensor([2.0, 0.0]))


def test_colour_reward_hand_values() -> None:
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    assert_close(colour_reward((1.0, 0.0, 0.0))(red)[0], torch.tensor([0.0]))
    assert_close(ColourReward((0.0, 0.0, 0.0))(red)[0], torch.tensor([-1.0]))
    # half the pixels red, half black, target (0.5, 0.5, 0): every pixel at ‖·‖² = .25 + .25
    half = red.clone()
    half[:, 0, :, :2] = 0.0
    rewards, info = colour_reward((0.5, 0.5, 0.0))(half)
    assert_close(rewards, torch.tensor([-0.5]))
    assert_close(info["colour_mse"], torch.tensor([0.5]))


def test_jpeg_size_measured_is_larger_for_noise() -> None:
    flat = torch.full((1, 3, 32, 32), 0.5)
    noisy = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    sizes = jpeg_size_kb(torch.cat([flat, noisy]))
    assert sizes.shape == (2,) and sizes[1] > sizes[0] > 0
    assert jpeg_size_kb(flat[:, :1]).shape == (1,)  # greyscale works


# --- gradients (spec §6 item 5) ----------------------------------------------------------------


def _surrogate() -> JpegSizeSurrogate:
    torch.manual_seed(0)
    return JpegSizeSurrogate(width=8)


@pytest.mark.parametrize(
    "make_reward",
    [
        lambda: brightness_reward,
        lambda: colour_reward((1.0, 0.0, 0.0)),
        lambda: compressibility_reward,
        lambda: _surrogate().reward,
        lambda: AestheticReward(AestheticHead().eval(), _fake_clip(), size=32),
    ],
    ids=["brightness", "colour", "tv", "jpeg_surrogate", "aesthetic"],
)
def test_reward_gradient_finite_and_nonzero(make_reward: Callable[[], RewardFn]) -> None:
    reward_fn = make_reward()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 16, 16, generator=g).requires_grad_(True)
    rewards, _ = reward_fn(images, ["p", "q"], [{}, {}])
    assert rewards.shape == (2,) and rewards.grad_fn is not None
    (grad,) = torch.autograd.grad(rewards.sum(), images)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_brightness_gradient_is_uniform() -> None:
    images = torch.rand(1, 3, 4, 4).requires_grad_(True)
    brightness_reward(images)[0].sum().backward()  # type: ignore[no-untyped-call]
    assert images.grad is not None
    assert_close(images.grad, torch.full_like(images, 1 / 48))


# --- the grad_fn guard -------------------------------------------------------------------------


def test_guard_raises_on_detached_reward() -> None:
    images = torch.rand(2, 3, 4, 4).requires_grad_(True)
    with pytest.raises(NonDifferentiableRewardError, match="no grad_fn"):
        check_differentiable(brightness(images).detach(), images)
    with torch.no_grad():
        scored = brightness(images)
    with pytest.raises(NonDifferentiableRewardError, match="no grad_fn"):
        check_differentiable(scored, images)
    with pytest.raises(NonDifferentiableRewardError):  # the DDPO uint8 round trip
        check_differentiable((images * 255).round().to(torch.uint8).float().mean((1, 2, 3)), images)
    # fine when nothing needs a gradient, or when the graph is intact
    check_differentiable(scored, images.detach())
    assert check_differentiable(brightness(images), images).grad_fn is not None


def test_guard_checks_batch_size_and_finiteness() -> None:
    images = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"rewards: expected a tensor of shape \[2\]"):
        check_differentiable(torch.zeros(3), images)
    with pytest.raises(ValueError, match="rewards"):
        check_differentiable(torch.zeros(2, 1), images)
    with pytest.raises(ValueError, match="NaN"):
        check_differentiable(torch.tensor([0.0, float("nan")]), images)


# --- the learned JPEG-size surrogate -----------------------------------------------------------


def test_surrogate_fit_lowers_loss_and_ranks_noise_above_flat() -> None:
    surrogate = _surrogate()
    losses = surrogate.fit(_training_images(), steps=100, lr=1e-2, batch_size=16, seed=0)
    assert len(losses) == 100
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    assert not any(p.requires_grad for p in surrogate.parameters())  # frozen after fit
    flat = torch.full((1, 3, 32, 32), 0.5)
    noisy = 0.5 + 0.4 * (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5)) - 0.5)
    pred = surrogate(torch.cat([flat, noisy]))
    assert pred[1] > pred[0]
    rewards, info = surrogate.reward(torch.cat([flat, noisy]).requires_grad_(True))
    assert rewards[0] > rewards[1] and rewards.grad_fn is not None
    assert_close(info["predicted_jpeg_kb"], -rewards.detach())


def test_surrogate_bad_input() -> None:
    with pytest.raises(ValueError, match="in_channels"):
        JpegSizeSurrogate(in_channels=4)
    with pytest.raises(ValueError, match="quality"):
        JpegSizeSurrogate(quality=100)
    surrogate = _surrogate()
    with pytest.raises(ValueError, match="images: expected H, W >= 8"):
        surrogate(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="steps"):
        surrogate.fit(torch.rand(2, 3, 8, 8), steps=0)
    with pytest.raises(ValueError, match="lr"):
        surrogate.fit(torch.rand(2, 3, 8, 8), steps=1, lr=float("nan"))


# --- the aesthetic head ------------------------------------------------------------------------


def test_aesthetic_head_architecture_and_shape() -> None:
    head = AestheticHead().eval()
    assert set(head.state_dict()) == {
        f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias")
    }  # the LAION predictor's keys
    widths = [m.out_features for m in head.layers if isinstance(m, torch.nn.Linear)]
    assert widths == [1024, 128, 64, 16, 1]
    emb = torch.randn(5, 768)
    scores = head(emb)
    assert scores.shape == (5,)
    assert_close(head(3.0 * emb), scores)  # embeddings are L2-normalised first


def test_aesthetic_head_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = AestheticHead().eval()
    path = tmp_path / "aesthetic.pth"
    head.save(path)
    loaded = AestheticHead.load(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    emb = torch.randn(3, 768)
    assert_close(loaded(emb), head(emb))
    torch.save(AestheticHead(embed_dim=8).state_dict(), tmp_path / "small.pth")
    with pytest.raises(RuntimeError):
        AestheticHead.load(tmp_path / "small.pth")
    assert AestheticHead.load(tmp_path / "small.pth", embed_dim=8)(torch.randn(2, 8)).shape == (2,)


def test_aesthetic_head_bad_embeddings() -> None:
    head = AestheticHead(embed_dim=8)
    with pytest.raises(ValueError, match="embeddings"):
        head(torch.randn(2, 9))
    with pytest.raises(ValueError, match="embeddings"):
        head(torch.full((2, 8), float("nan")))
    with pytest.raises(ValueError, match="embed_dim"):
        AestheticHead(embed_dim=0)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reward_fn",
    [brightness_reward, colour_reward((0.0, 1.0, 0.0)), compressibility_reward],
    ids=["brightness", "colour", "tv"],
)
@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(3, 4, 4), "images: expected shape"),
        (torch.rand(1, 4, 4, 4), "images: expected C"),
        (torch.full((1, 3, 4, 4), 1.1), r"images: expected values in \[0, 1\]"),
        (torch.full((1, 3, 4, 4), -0.01), r"images: expected values in \[0, 1\]"),
        (torch.full((1, 3, 4, 4), float("nan")), "images: contains NaN"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.int64), "images: expected a float tensor"),
    ],
    ids=["rank", "channels", "above", "below", "nan", "int"],
)
def test_bad_images_raise(reward_fn: RewardFn, images: Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        reward_fn(images, None, None)


def test_small_overshoot_is_tolerated_and_other_bad_input() -> None:
    images = torch.full((1, 3, 4, 4), 1.0 + 1e-4)
    assert brightness_reward(images)[0].shape == (1,)
    with pytest.raises(ValueError, match="images: expected C in"):
        colour_reward((1.0, 0.0, 0.0))(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="target_rgb"):
        colour_reward((1.0, 0.0))
    with pytest.raises(ValueError, match="target_rgb"):
        colour_reward((2.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="prompts"):
        brightness_reward(torch.rand(2, 3, 4, 4), ["only one"], None)
    with pytest.raises(ValueError, match="quality"):
        jpeg_size_kb(torch.rand(1, 3, 8, 8), quality=0)
