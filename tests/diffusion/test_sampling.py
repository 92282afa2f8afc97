"""The explicit DDIM loop: updates, truncation, checkpointing, log-probs (spec §6 items 1, 3)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler
from torch import Tensor, nn

from varl.diffusion import lora, sampling, tiny
from varl.diffusion.truncation import TruncationSchedule

torch.set_num_threads(1)


def _scheduler() -> DDIMScheduler:
    return tiny.build_models(tiny.TinyDiffusionConfig(pretrain_steps=0))[3]


class StepScaledModel(nn.Module):
    """ε(x, t) = θ_t · x with one probe scalar θ per timestep: d loss / d θ_t says whether
    the call at timestep t kept its gradient."""

    def __init__(self, timesteps: Tensor) -> None:
        super().__init__()
        self.index = {int(t): i for i, t in enumerate(timesteps)}
        self.theta = nn.Parameter(torch.full((len(timesteps),), 0.1))
        self.config = SimpleNamespace(in_channels=1, sample_size=2)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> SimpleNamespace:
        return SimpleNamespace(sample=self.theta[self.index[int(t[0])]] * x)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_matches_diffusers_scheduler_step(eta: float) -> None:
    scheduler = _scheduler()
    timesteps, alpha_t, alpha_prev = sampling.ddim_schedule(scheduler, 10)
    gen = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(2, 3, 4, 4, generator=gen) for _ in range(3))
    for i in (0, 5, 9):
        ours = sampling.ddim_step(
            eps, x, float(alpha_t[i]), float(alpha_prev[i]), eta=eta, noise=z
        ).prev_sample
        ref = scheduler.step(eps, timesteps[i], x, eta=eta, variance_noise=z).prev_sample
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_schedule_previous_alpha_is_one_step_down_and_final_at_the_end() -> None:
    scheduler = _scheduler()
    timesteps, alpha_t, alpha_prev = sampling.ddim_schedule(scheduler, 10)
    assert timesteps.tolist() == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
    assert float(alpha_prev[0]) == pytest.approx(float(scheduler.alphas_cumprod[801]))
    assert float(alpha_prev[-1]) == pytest.approx(float(scheduler.final_alpha_cumprod))
    assert float(alpha_t[3]) == pytest.approx(float(scheduler.alphas_cumprod[601]))


def _probe_grads(mask: np.ndarray, checkpointing: bool = False) -> Tensor:
    scheduler = _scheduler()
    timesteps, _, _ = sampling.ddim_schedule(scheduler, 10)
    model = StepScaledModel(timesteps)
    out = sampling.ddim_sample(
        model,
        scheduler,
        None,
        num_steps=10,
        grad_mask=mask,
        gradient_checkpointing=checkpointing,
        latents=torch.ones(1, 1, 2, 2),
    )
    if not out.sample.requires_grad:
        return torch.zeros(10)
    out.sample.sum().backward()
    assert model.theta.grad is not None
    return model.theta.grad


@pytest.mark.parametrize("checkpointing", [False, True])
def test_truncation_mask_fixed_gives_grads_to_exactly_the_last_k_steps(checkpointing: bool) -> None:
    mask = TruncationSchedule.fixed(3).grad_mask(10, np.random.default_rng(0))
    grads = _probe_grads(mask, checkpointing)
    assert torch.nonzero(grads).flatten().tolist() == [7, 8, 9]


def test_truncation_k0_gives_no_gradient_and_an_arbitrary_mask_is_followed() -> None:
    assert not _probe_grads(np.zeros(10, dtype=np.bool_)).any()
    mask = np.array([True, False, True, False, False, False, True, False, False, True])
    assert torch.nonzero(_probe_grads(mask)).flatten().tolist() == [0, 2, 6, 9]


SMALL = tiny.TinyDiffusionConfig(
    image_size=8, block_out_channels=(8, 16), cross_attention_dim=16, pretrain_steps=0
)


def _float64_lora_unet() -> tuple[nn.Module, nn.Parameter, DDIMScheduler]:
    unet, _, _, scheduler = tiny.build_models(SMALL)
    unet = unet.double()
    params = lora.add_lora(unet, seed=0)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2, generator=torch.Generator().manual_seed(len(name)))
    probe = next(p for n, p in unet.named_parameters() if "lora_B" in n and "to_v" in n)
    assert any(probe is p for p in params)
    return unet, probe, scheduler


def _reward(unet: nn.Module, scheduler: DDIMScheduler, checkpointing: bool) -> Tensor:
    gen = torch.Generator().manual_seed(3)
    cond = torch.randn(1, 4, 16, generator=gen, dtype=torch.float64)
    uncond = torch.zeros(1, 4, 16, dtype=torch.float64)
    noise = torch.randn(1, 3, 8, 8, generator=gen, dtype=torch.float64)
    out = sampling.ddim_sample(
        unet,
        scheduler,
        cond,
        uncond=uncond,
        guidance_scale=2.0,
        num_steps=3,
        gradient_checkpointing=checkpointing,
        latents=noise,
    )
    return (out.sample * torch.linspace(-1, 1, 8, dtype=torch.float64)).mean()


def test_grad_matches_finite_difference_with_and_without_checkpointing() -> None:
    unet, probe, scheduler = _float64_lora_unet()
    grads = []
    for checkpointing in (False, True):
        probe.grad = None
        _reward(unet, scheduler, checkpointing).backward()
        assert probe.grad is not None
        grads.append(probe.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-10)
    h = 1e-5
    for idx in [(0, 0), (3, 1), (7, 2)]:
        with torch.no_grad():
            probe[idx] += h
            plus = float(_reward(unet, scheduler, False))
            probe[idx] -= 2 * h
            minus = float(_reward(unet, scheduler, False))
            probe[idx] += h
        fd = (plus - minus) / (2 * h)
        assert float(grads[0][idx]) == pytest.approx(fd, rel=1e-4, abs=1e-12)
        assert abs(fd) > 1e-8  # the probe really moves the reward


def test_stored_log_probs_match_recomputed_transition_log_probs() -> None:
    unet, _, scheduler = _float64_lora_unet()
    gen = torch.Generator().manual_seed(0)
    cond = torch.randn(2, 4, 16, generator=gen, dtype=torch.float64)
    uncond = torch.zeros_like(cond)
    with torch.no_grad():
        out = sampling.ddim_sample(
            unet,
            scheduler,
            cond,
            uncond=uncond,
            guidance_scale=3.0,
            eta=1.0,
            num_steps=4,
            shape=(2, 3, 8, 8),
            generator=gen,
            with_log_probs=True,
        )
    assert out.log_probs is not None and out.log_probs.shape == (2, 4)
    assert out.latents.shape == (2, 5, 3, 8, 8)
    for i in range(4):
        new = sampling.ddim_transition_log_prob(
            unet,
            scheduler,
            out.latents[:, i],
            out.latents[:, i + 1],
            i,
            cond,
            num_steps=4,
            eta=1.0,
            uncond=uncond,
            guidance_scale=3.0,
        )
        assert new.requires_grad
        torch.testing.assert_close(new.detach(), out.log_probs[:, i], rtol=0, atol=1e-10)


def test_gaussian_log_prob_hand_value() -> None:
    x = torch.tensor([[1.0, 3.0]])
    mean = torch.tensor([[0.0, 1.0]])
    # mean_d of -(x-mu)^2/(2*4) - log 2 - log(2 pi)/2 with (x - mu)^2 = 1, 4
    expected = -(1 / 8 + 4 / 8) / 2 - math.log(2.0) - 0.5 * math.log(2 * math.pi)
    assert float(sampling.gaussian_log_prob(x, mean, 2.0)[0]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="std"):
        sampling.gaussian_log_prob(x, mean, 0.0)


def test_bad_sampling_arguments_raise() -> None:
    scheduler = _scheduler()
    timesteps, _, _ = sampling.ddim_schedule(scheduler, 10)
    model = StepScaledModel(timesteps)
    x = torch.ones(1, 1, 2, 2)
    with pytest.raises(ValueError, match="grad_mask"):
        sampling.ddim_sample(model, scheduler, None, num_steps=10, latents=x, grad_mask=[True])
    with pytest.raises(ValueError, match="with_log_probs"):
        sampling.ddim_sample(model, scheduler, None, num_steps=10, latents=x, with_log_probs=True)
    with pytest.raises(ValueError, match="eta"):
        sampling.ddim_sample(model, scheduler, None, num_steps=10, latents=x, eta=-1.0)
    with pytest.raises(ValueError, match="num_steps"):
        sampling.ddim_sample(model, scheduler, None, num_steps=0, latents=x)
    with pytest.raises(ValueError, match="uncond"):
        sampling.ddim_sample(model, scheduler, None, num_steps=10, latents=x, guidance_scale=2.0)
    with pytest.raises(ValueError, match="step_index"):
        sampling.ddim_transition_log_prob(model, scheduler, x, x, 10, None, num_steps=10, eta=1.0)


def test_pipeline_without_components_is_named() -> None:
    with pytest.raises(ValueError, match=r"unet.*scheduler"):
        sampling.check_pipeline(SimpleNamespace(unet=None, scheduler=None))
    unet, _, _, scheduler = tiny.build_models(tiny.TinyDiffusionConfig(pretrain_steps=0))
    with pytest.raises(ValueError, match=r"text_encoder.*tokenizer"):
        sampling.check_pipeline(SimpleNamespace(unet=unet, scheduler=scheduler))
