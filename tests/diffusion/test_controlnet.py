"""The Ctrl-U / ControlNet++ training step on a diffusers ControlNetModel (spec §2.2, §4.3)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from varl.diffusion.controlnet import (
    CtrlUConfig,
    LabelMapBatch,
    build_controlnet,
    build_scheduler,
    build_unet,
    ctrl_u_step,
    evaluate_controlnet,
    predict_noise,
    sample_ddim,
    train_ctrl_u,
    train_from_config,
)
from varl.diffusion.label_maps import (
    ConvSegmenter,
    random_label_maps,
    render_images,
    train_segmenter,
)

torch.set_num_threads(1)
K = 3
Parts = tuple[Any, Any, Any]  # UNet2DConditionModel, ControlNetModel, DDPMScheduler


class ConstantSegmenter(nn.Module):
    """Uniform logits whatever the input: CE = log K everywhere and U = 0."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(K), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.bias[None, :, None, None].expand(x.shape[0], K, *x.shape[2:]) + 0 * x[:, :1]


class LinearSegmenter(nn.Module):
    """Logits = a fixed 1×1 convolution of the image: input-dependent, so the twins differ."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.conv = nn.Conv2d(3, K, 1)
        with torch.no_grad():
            self.conv.weight.mul_(10.0)  # confident enough that the twins' KL is visible
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(x)
        return out


@pytest.fixture(scope="module")
def parts() -> Parts:
    unet = build_unet(seed=0)
    unet.requires_grad_(False)
    controlnet = build_controlnet(unet, K)
    return unet, controlnet, build_scheduler()


def _batch(t: list[int], seed: int = 0) -> LabelMapBatch:
    gen = torch.Generator().manual_seed(seed)
    labels = random_label_maps(len(t), num_classes=K, generator=gen)
    images = render_images(labels, num_classes=K, generator=gen)
    noise = torch.randn(images.shape, generator=gen)
    return LabelMapBatch(images, labels, torch.tensor(t), noise)


def _by_hand(unet: Any, scheduler: Any, batch: LabelMapBatch, delta: int) -> dict[str, Any]:
    """x̂0 of both twins computed without the ControlNet (its zero convolutions make its
    residuals exactly zero at initialisation) and without the library's helpers."""
    assert batch.timesteps is not None and batch.noise is not None
    t1 = batch.timesteps
    t2 = (t1 + delta).clamp(max=999)
    ab = scheduler.alphas_cumprod
    out = {}
    for name, t in (("a", t1), ("b", t2)):
        a = ab[t][:, None, None, None]
        z = a.sqrt() * batch.images + (1 - a).sqrt() * batch.noise
        eps = predict_noise(unet, None, z, t, None)
        out[name] = (z - (1 - a).sqrt() * eps) / a.sqrt()
        out["err_" + name] = (eps - batch.noise).pow(2).mean()
    return out


def test_controlnet_residuals_are_zero_at_initialisation(parts: Parts) -> None:
    unet, controlnet, _ = parts
    batch = _batch([10, 500])
    assert batch.timesteps is not None
    cond = torch.nn.functional.one_hot(batch.labels, K).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        with_cn = predict_noise(unet, controlnet, batch.images, batch.timesteps, cond)
        without = predict_noise(unet, None, batch.images, batch.timesteps, None)
    assert torch.equal(with_cn, without)


def test_only_the_controlnet_gets_gradients(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    seg = LinearSegmenter()
    controlnet.zero_grad(set_to_none=True)
    loss, _ = ctrl_u_step(unet, controlnet, scheduler, seg, _batch([50, 300]), CtrlUConfig())
    loss.backward()  # type: ignore[no-untyped-call]
    assert all(p.grad is None for p in unet.parameters())
    assert all(p.grad is None for p in seg.parameters())
    grads = [p.grad for p in controlnet.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    controlnet.zero_grad(set_to_none=True)


def test_unfrozen_unet_or_segmenter_is_rejected(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    with pytest.raises(ValueError, match="segmenter: expected frozen"):
        ctrl_u_step(unet, controlnet, scheduler, ConvSegmenter(K), _batch([1]), CtrlUConfig())
    unet.requires_grad_(True)
    try:
        with pytest.raises(ValueError, match="unet: expected frozen"):
            ctrl_u_step(unet, controlnet, scheduler, LinearSegmenter(), _batch([1]), CtrlUConfig())
    finally:
        unet.requires_grad_(False)


def test_three_arms_with_a_constant_segmenter(parts: Parts) -> None:
    # Uniform logits: CE = log K at every pixel and U = 0, so the reward term is exactly log K.
    unet, controlnet, scheduler = parts
    batch = _batch([100, 900, 200])
    seg = ConstantSegmenter()
    out = {
        arm: ctrl_u_step(unet, controlnet, scheduler, seg, batch, CtrlUConfig(arm=arm, mu=0.3))
        for arm in ("diffusion", "controlnet_pp", "ctrl_u")
    }
    diff = out["diffusion"][1]["loss_diff"]
    assert float(out["diffusion"][0].detach()) == pytest.approx(diff, rel=1e-6)
    for arm in ("controlnet_pp", "ctrl_u"):
        loss, info = out[arm]
        assert info["loss_diff"] == pytest.approx(diff, rel=1e-6)
        assert info["loss_reward"] == pytest.approx(math.log(K), rel=1e-6)
        assert info["loss_uncertainty"] == 0.0
        assert float(loss.detach()) == pytest.approx(diff + 0.3 * math.log(K), rel=1e-6)
        assert info["rewarded"] == pytest.approx(2 / 3)


def test_ctrl_u_loss_matches_a_hand_computation(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    seg = LinearSegmenter()
    batch = _batch([120, 700, 350], seed=1)  # t = 700 lies outside the rewarding window
    cfg = CtrlUConfig(arm="ctrl_u", t_max=400, delta=50, mu=0.5, lam=2.0, scale=0.4)
    loss, info = ctrl_u_step(unet, controlnet, scheduler, seg, batch, cfg)
    ref = _by_hand(unet, scheduler, batch, delta=50)
    with torch.no_grad():
        diff = (ref["err_a"] + ref["err_b"]) / 2  # both twins
        keep = torch.tensor([0, 2])
        la, lb = seg(ref["a"][keep]), seg(ref["b"][keep])
        pa, pb = torch.log_softmax(la, 1), torch.log_softmax(lb, 1)
        u = (pb.exp() * (pb - pa)).sum(1)  # KL(p_b || p_a) per pixel
        ce = -pa.gather(1, batch.labels[keep][:, None]).squeeze(1)
        rectified = (ce * torch.exp(-0.4 * u)).mean()
        penalty = 2.0 * 0.4 * u.mean()
    assert float(u.mean()) > 1e-4  # the twins do disagree
    assert info["loss_diff"] == pytest.approx(float(diff), rel=1e-5)
    assert info["loss_reward"] == pytest.approx(float(rectified), rel=1e-5)
    assert info["loss_uncertainty"] == pytest.approx(float(penalty), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(diff + 0.5 * rectified + penalty), rel=1e-5)
    # ControlNet++ on the same batch: the unweighted CE of the primary twin only
    _, pp = ctrl_u_step(
        unet, controlnet, scheduler, seg, batch, dataclasses.replace(cfg, arm="controlnet_pp")
    )
    assert pp["loss_reward"] == pytest.approx(float(ce.mean()), rel=1e-5)
    assert pp["loss_uncertainty"] == 0.0


def test_reward_only_for_t_at_most_t_max(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    seg = LinearSegmenter()
    cfg = CtrlUConfig(arm="ctrl_u", t_max=300, mu=1.0)
    both = _batch([300, 301], seed=2)
    _, info = ctrl_u_step(unet, controlnet, scheduler, seg, both, cfg)
    first = LabelMapBatch(both.images[:1], both.labels[:1], both.timesteps[:1], both.noise[:1])  # type: ignore[index]
    _, alone = ctrl_u_step(unet, controlnet, scheduler, seg, first, cfg)
    assert info["rewarded"] == 0.5
    assert info["loss_reward"] == pytest.approx(alone["loss_reward"], rel=1e-5)
    assert info["u_mean"] == pytest.approx(alone["u_mean"], rel=1e-3)  # tiny KL: float32
    # no sample in the window: the loss is the diffusion loss and so are the gradients
    late = _batch([301, 999], seed=3)
    grads = {}
    for arm in ("diffusion", "ctrl_u"):
        controlnet.zero_grad(set_to_none=True)
        loss, info = ctrl_u_step(
            unet, controlnet, scheduler, seg, late, dataclasses.replace(cfg, arm=arm)
        )
        assert info["loss_reward"] == 0.0 and info["rewarded"] == 0.0
        loss.backward()  # type: ignore[no-untyped-call]
        grads[arm] = [p.grad.clone() for p in controlnet.parameters() if p.grad is not None]
    controlnet.zero_grad(set_to_none=True)
    for a, b in zip(grads["diffusion"], grads["ctrl_u"], strict=True):
        assert_close(a, b)


def test_twins_share_data_and_noise_and_clamp_at_the_last_timestep(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    batch = _batch([998, 999], seed=4)
    ref = _by_hand(unet, scheduler, batch, delta=3)  # twins at 999 (clamped) for both
    _, info = ctrl_u_step(
        unet,
        controlnet,
        scheduler,
        ConstantSegmenter(),
        batch,
        CtrlUConfig(arm="diffusion", delta=3),
    )
    assert info["loss_diff"] == pytest.approx(float((ref["err_a"] + ref["err_b"]) / 2), rel=1e-5)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"labels": "shape"}, "batch.labels: expected shape"),
        ({"labels": "classes"}, r"batch.labels: expected classes in \[0, 2\]"),
        ({"timesteps": "range"}, "batch.timesteps"),
        ({"images": "nan"}, "batch.images"),
        ({"t_max": 1000}, "t_max"),
    ],
)
def test_bad_inputs_raise_clear_errors(parts: Parts, change: dict[str, Any], match: str) -> None:
    unet, controlnet, scheduler = parts
    b = _batch([5, 6])
    cfg = CtrlUConfig()
    if change.get("labels") == "shape":
        b = dataclasses.replace(b, labels=b.labels[:, :8])
    elif change.get("labels") == "classes":
        b = dataclasses.replace(b, labels=b.labels + 3)
    elif change.get("timesteps") == "range":
        b = dataclasses.replace(b, timesteps=torch.tensor([5, 1000]))
    elif change.get("images") == "nan":
        images = b.images.clone()
        images[0, 0, 0, 0] = float("nan")
        b = dataclasses.replace(b, images=images)
    else:
        cfg = CtrlUConfig(t_max=change["t_max"])
    with pytest.raises(ValueError, match=match):
        ctrl_u_step(unet, controlnet, scheduler, LinearSegmenter(), b, cfg)


def test_segmenter_with_the_wrong_class_count_is_rejected(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    seg = nn.Conv2d(3, K + 1, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="segmenter: expected logits"):
        ctrl_u_step(unet, controlnet, scheduler, seg, _batch([1]), CtrlUConfig())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"arm": "ppo"}, ValueError, "arm"),
        ({"kind": "l2"}, ValueError, "kind"),
        ({"t_max": -1}, ValueError, "t_max"),
        ({"delta": -1}, ValueError, "delta"),
        ({"mu": -0.1}, ValueError, "mu"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"steps": 0}, ValueError, "steps"),
        ({"t_max": 4.5}, TypeError, "t_max"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        CtrlUConfig(**kwargs)


def test_l1_uncertainty_is_the_probability_distance(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    seg = LinearSegmenter()
    batch = _batch([200], seed=5)
    _, info = ctrl_u_step(unet, controlnet, scheduler, seg, batch, CtrlUConfig(kind="l1", delta=20))
    ref = _by_hand(unet, scheduler, batch, delta=20)
    with torch.no_grad():
        u = (torch.softmax(seg(ref["a"]), 1) - torch.softmax(seg(ref["b"]), 1)).abs().sum(1)
    assert info["u_mean"] == pytest.approx(float(u.mean()), rel=1e-5)


def test_ddim_sampling_is_deterministic_and_bounded(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    labels = random_label_maps(2, num_classes=K, generator=torch.Generator().manual_seed(0))
    a = sample_ddim(unet, controlnet, scheduler, labels, steps=3, seed=1)
    b = sample_ddim(unet, controlnet, scheduler, labels, steps=3, seed=1)
    assert a.shape == (2, 3, 16, 16) and torch.equal(a, b)
    assert a.abs().max() <= 1.0 + 1e-5
    with pytest.raises(ValueError, match="labels"):
        sample_ddim(unet, controlnet, scheduler, None, steps=3)
    with pytest.raises(ValueError, match="steps"):
        sample_ddim(unet, controlnet, scheduler, labels, steps=0)
    scores = evaluate_controlnet(unet, controlnet, scheduler, LinearSegmenter(), labels, steps=2)
    assert 0.0 <= scores["miou"] <= 1.0 and 0.0 <= scores["pixel_accuracy"] <= 1.0


def test_ctrl_u_training_lowers_the_reward_loss() -> None:
    # A few steps with a strong reward weight: the reward model's CE on the single-step x̂0 of a
    # fixed held-out batch drops (fixed seeds; about 2 s on one thread).
    torch.manual_seed(0)
    unet = build_unet(seed=0).requires_grad_(False)
    controlnet = build_controlnet(unet, K)
    scheduler = build_scheduler()
    seg = train_segmenter(ConvSegmenter(K), num_classes=K, steps=40, batch_size=16, seed=0)
    probe = _batch([100, 200, 300, 400, 150, 250], seed=9)
    cfg = CtrlUConfig(arm="ctrl_u", mu=5.0, lr=3e-3, steps=25, batch_size=4, seed=0)

    def reward_ce() -> float:
        with torch.no_grad():
            return ctrl_u_step(unet, controlnet, scheduler, seg, probe, cfg)[1]["ce"]

    before = reward_ce()
    history = train_ctrl_u(
        cfg, unet=unet, controlnet=controlnet, scheduler=scheduler, segmenter=seg
    )
    after = reward_ce()
    assert len(history) == 25 and all(math.isfinite(h["loss"]) for h in history)
    assert after < 0.8 * before


def test_train_from_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        train_from_config({"arm": "ctrl_u", "learning_rate": 1e-3})
    with pytest.raises(ValueError, match="arm"):
        train_from_config({"arm": "nope"})


def test_detached_uncertainty_keeps_the_value_and_changes_the_gradient(parts: Parts) -> None:
    unet, controlnet, scheduler = parts
    seg = LinearSegmenter()
    batch = _batch([150, 250], seed=6)
    grads, values = {}, {}
    for detach in (False, True):
        cfg = CtrlUConfig(delta=50, lam=5.0, detach_uncertainty=detach)
        controlnet.zero_grad(set_to_none=True)
        loss, info = ctrl_u_step(unet, controlnet, scheduler, seg, batch, cfg)
        loss.backward()  # type: ignore[no-untyped-call]
        values[detach] = info["loss"]
        grads[detach] = torch.cat([p.grad.flatten() for p in controlnet.parameters()])
    controlnet.zero_grad(set_to_none=True)
    assert values[True] == pytest.approx(values[False], rel=1e-6)
    assert not torch.allclose(grads[True], grads[False])
