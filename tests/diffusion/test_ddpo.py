"""DDPO: PPO-clip math, advantage normalisation, stat tracker, trainer invariants and resume."""

from __future__ import annotations

import csv
import dataclasses
import math
import random
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from varl.diffusion import ddpo, lora, tiny
from varl.diffusion.ddpo import DDPOConfig, DDPOTrainer
from varl.diffusion.ddpo_math import (
    PerPromptStatTracker,
    approx_kl,
    batch_advantages,
    clip_advantages,
    clip_fraction,
    clipped_surrogate,
    train_step_indices,
)
from varl.diffusion.rewards import brightness_reward
from varl.diffusion.sampling import ddim_sample, ddim_transition_log_prob

torch.set_num_threads(1)

TEST_CFG = tiny.TinyDiffusionConfig(pretrain_steps=20, batch_size=8)
"""A briefly pretrained tiny model (the same file as test_alignprop's, cached per session)."""

PipeFactory = Callable[[], tiny.TinyTextToImagePipeline]

FAST = DDPOConfig(
    logdir=None,
    num_epochs=2,
    sample_num_steps=3,
    sample_guidance_scale=1.0,
    sample_batch_size=4,
    sample_num_batches_per_epoch=1,
    train_batch_size=4,
    train_learning_rate=1e-2,
    train_clip_range=0.2,
)


@pytest.fixture(scope="module")
def make_pipe(tmp_path_factory: pytest.TempPathFactory) -> PipeFactory:
    cache = tmp_path_factory.getbasetemp() / "varl-tiny"
    return lambda: tiny.tiny_pipeline(TEST_CFG, cache_dir=cache)


def prompt_fn() -> tuple[str, dict[str, Any]]:
    return random.choice(tiny.PROMPTS), {"source": "test"}


# ---- pure math ----------------------------------------------------------------------------------


class _BiasNoiseModel(torch.nn.Module):
    """ε̂(x, t) = x / 2 + b with one bias b_i per chain, so that a backward pass gives every
    chain's own derivative d/db_i (a stand-in UNet for estimator checks)."""

    def __init__(self, chains: int) -> None:
        super().__init__()
        self.b = torch.nn.Parameter(torch.full((chains, 1, 1, 1), 0.3, dtype=torch.float64))

    def forward(self, x: Tensor, t: Tensor) -> types.SimpleNamespace:
        return types.SimpleNamespace(sample=0.5 * x + self.b)


def test_score_function_gradient_is_unbiased_and_its_noise_sits_in_the_low_sigma_step() -> None:
    """DDPO's estimator E[A Σ_i ∇log p(x_{i+1} | x_i)] equals the pathwise ∇E[r] (AlignProp's
    gradient at K = T) for a 5-step η = 1 chain; the near-deterministic 201 → 1 step (σ ≈ 0.009)
    has a term whose standard error is > 10× any other step's (the mechanism behind DDPO's slow
    learning in the tiny experiment)."""
    import diffusers

    scheduler = diffusers.DDIMScheduler(
        beta_schedule="squaredcos_cap_v2", set_alpha_to_one=False, steps_offset=1
    )
    n, steps, size = 20_000, 5, 4
    model = _BiasNoiseModel(n)
    gen = torch.Generator().manual_seed(0)

    def reward(x: Tensor) -> Tensor:
        return torch.tanh(x).mean(dim=(1, 2, 3))

    def chain(**kw: Any) -> Any:
        noise = torch.randn(n, 1, 2, 2, generator=gen, dtype=torch.float64)
        return ddim_sample(model, scheduler, None, num_steps=steps, eta=1.0, latents=noise,
                           generator=gen, **kw)  # fmt: skip

    reward(chain().sample).sum().backward()
    assert model.b.grad is not None
    pathwise = model.b.grad.flatten().clone()
    with torch.no_grad():
        sampled = chain(with_log_probs=True)
        r = reward(sampled.sample)
    advantage = r - r.mean()
    terms: list[Tensor] = []
    for j in range(steps):
        model.b.grad = None
        log_p = ddim_transition_log_prob(model, scheduler, sampled.latents[:, j],
                                         sampled.latents[:, j + 1], j, None, num_steps=steps,
                                         eta=1.0)  # fmt: skip
        (log_p.sum() * size).backward()  # log_p is a mean over the 4 pixels
        assert model.b.grad is not None
        terms.append(advantage * model.b.grad.flatten())
    estimate = torch.stack(terms).sum(dim=0)

    def se(v: Tensor) -> float:
        return float(v.std()) / math.sqrt(n)

    gap = abs(float(estimate.mean()) - float(pathwise.mean()))
    assert gap < 4 * math.hypot(se(estimate), se(pathwise))
    assert se(estimate) < 0.2 * abs(float(pathwise.mean()))  # the check has power
    errors = [se(t) for t in terms]
    assert errors[3] > 10 * max(errors[:3] + errors[4:])


def test_trainable_steps_drop_the_low_sigma_steps(make_pipe: PipeFactory) -> None:
    scheduler = make_pipe().scheduler  # 5 steps: σ = 0.728, 0.505, 0.286, 0.0093, 0.0047
    assert ddpo.trainable_steps(scheduler, 5, 1.0, 0.0) == [0, 1, 2, 3, 4]
    assert ddpo.trainable_steps(scheduler, 5, 1.0, 0.05) == [0, 1, 2]
    assert ddpo.trainable_steps(scheduler, 5, 0.5, 0.2) == [0, 1]  # σ scales with η
    with pytest.raises(ValueError, match=r"train_min_step_std: 1\.0 drops every step"):
        ddpo.trainable_steps(scheduler, 5, 1.0, 1.0)


def test_clipped_surrogate_hand_values_and_gradients() -> None:
    ratio = torch.tensor([1.5, 0.5, 1.05, 0.7], dtype=torch.float64)
    log_probs = ratio.log().requires_grad_(True)
    old = torch.zeros(4, dtype=torch.float64)
    adv = torch.tensor([2.0, 2.0, -1.0, -1.0], dtype=torch.float64)
    loss = clipped_surrogate(log_probs, old, adv, 0.2)
    # max(-A r, -A clip(r, 0.8, 1.2)): (-3, -2.4) -> -2.4; (-1, -1.6) -> -1; 1.05; (0.7, 0.8) -> 0.8
    torch.testing.assert_close(loss.detach(), torch.tensor([-2.4, -1.0, 1.05, 0.8]).double())
    loss.sum().backward()  # type: ignore[no-untyped-call]
    assert log_probs.grad is not None
    # the clipped terms have no gradient; the others d(-A r)/d log p = -A r
    torch.testing.assert_close(log_probs.grad, torch.tensor([0.0, -1.0, 1.05, 0.0]).double())
    with pytest.raises(ValueError, match="clip_range"):
        clipped_surrogate(log_probs, old, adv, 0.0)
    with pytest.raises(ValueError, match="equal shapes"):
        clipped_surrogate(log_probs, old[:3], adv, 0.2)


def test_kl_clip_fraction_and_advantage_clipping_hand_values() -> None:
    new, old = torch.tensor([0.1, -0.3, 0.0]), torch.zeros(3)
    assert float(approx_kl(new, old)) == pytest.approx(0.5 * (0.01 + 0.09) / 3)
    assert float(clip_fraction(new, old, 0.2)) == pytest.approx(1 / 3)  # only e^-0.3 = 0.74
    assert clip_advantages(torch.tensor([-7.0, 0.5, 9.0]), 5.0).tolist() == [-5.0, 0.5, 5.0]
    with pytest.raises(ValueError, match="max_abs"):
        clip_advantages(torch.zeros(1), -1.0)


def test_batch_and_per_prompt_normalisation_on_a_hand_example() -> None:
    prompts, rewards = ["a", "a", "b", "b"], [1.0, 3.0, 5.0, 7.0]
    # over the batch: mean 4, population std sqrt(5)
    expected = np.array([-3.0, -1.0, 1.0, 3.0]) / (math.sqrt(5.0) + 1e-8)
    np.testing.assert_allclose(batch_advantages(rewards), expected)
    # per prompt: a has mean 2, b mean 6, both std 1 -> the prompt offset is removed
    per_prompt = PerPromptStatTracker(buffer_size=4, min_count=2).update(prompts, rewards)
    np.testing.assert_allclose(per_prompt, np.array([-1.0, 1.0, -1.0, 1.0]) / (1 + 1e-6))
    np.testing.assert_array_equal(batch_advantages([2.0, 2.0]), [0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        batch_advantages([1.0, float("nan")])
    with pytest.raises(ValueError, match="prompts"):
        PerPromptStatTracker(4, 2).update(["a"], rewards)


def test_stat_tracker_buffer_min_count_and_state_dict() -> None:
    tracker = PerPromptStatTracker(buffer_size=3, min_count=2)
    # buffer [1, 2]: mean 1.5, std 0.5
    np.testing.assert_allclose(
        tracker.update(["a", "a"], [1.0, 2.0]), [-0.5 / 0.500001, 0.5 / 0.500001]
    )
    # the buffer keeps the last 3 rewards [2, 3, 4]: mean 3, std sqrt(2/3)
    adv = tracker.update(["a", "a"], [3.0, 4.0])
    np.testing.assert_allclose(adv, [0.0, 1 / (math.sqrt(2 / 3) + 1e-6)])
    assert list(tracker.buffers["a"]) == [2.0, 3.0, 4.0]
    # below min_count the batch statistics stand in: batch [0, 2, 4], mean 2, std sqrt(8/3)
    fresh = PerPromptStatTracker(buffer_size=4, min_count=3)
    adv = fresh.update(["x", "y", "y"], [0.0, 2.0, 4.0])
    np.testing.assert_allclose(adv, np.array([-2.0, 0.0, 2.0]) / (math.sqrt(8 / 3) + 1e-6))
    # once y's buffer holds 3 rewards [2, 4, 6] its own mean 4 is used
    adv = fresh.update(["y"], [6.0])
    np.testing.assert_allclose(adv, [2.0 / (math.sqrt(8 / 3) + 1e-6)])
    copy = PerPromptStatTracker(buffer_size=4, min_count=3)
    copy.load_state_dict(fresh.state_dict())
    assert copy.stats() == fresh.stats()
    np.testing.assert_array_equal(copy.update(["y"], [1.0]), fresh.update(["y"], [1.0]))
    with pytest.raises(ValueError, match="buffer_size"):
        PerPromptStatTracker(buffer_size=5, min_count=3).load_state_dict(fresh.state_dict())
    with pytest.raises(ValueError, match="min_count"):
        PerPromptStatTracker(buffer_size=2, min_count=3)
    with pytest.raises(TypeError, match="prompts"):
        fresh.update([1], [0.0])  # type: ignore[list-item]


def test_train_step_indices() -> None:
    gen = torch.Generator().manual_seed(0)
    steps = train_step_indices(10, 0.5, gen)
    assert len(steps) == 5 and len(set(steps)) == 5 and all(0 <= s < 10 for s in steps)
    assert sorted(train_step_indices(4, 1.0, gen)) == [0, 1, 2, 3]
    assert len(train_step_indices(10, 0.01, gen)) == 1
    with pytest.raises(ValueError, match="fraction"):
        train_step_indices(10, 0.0)


# ---- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sample_eta": 0.0}, "sample_eta"),
        ({"train_batch_size": 3}, "train_batch_size"),
        ({"train_gradient_accumulation_steps": 3}, "train_gradient_accumulation_steps"),
        ({"train_timestep_fraction": 0.0}, "train_timestep_fraction"),
        ({"train_clip_range": -1.0}, "train_clip_range"),
        ({"num_epochs": 0}, "num_epochs"),
        ({"train_adam_beta1": 1.0}, "train_adam_beta1"),
        ({"train_learning_rate": float("nan")}, "train_learning_rate"),
        ({"per_prompt_stat_tracking_min_count": 32}, "min_count"),
        ({"train_min_step_std": -0.1}, "train_min_step_std"),
    ],
)
def test_bad_config_raises_naming_the_field(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(FAST, **change)


def test_bad_trainer_arguments_raise(make_pipe: PipeFactory) -> None:
    with pytest.raises(TypeError, match="config"):
        DDPOTrainer({}, brightness_reward, prompt_fn, make_pipe())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reward_function"):
        DDPOTrainer(FAST, None, prompt_fn, make_pipe())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unet"):
        DDPOTrainer(FAST, brightness_reward, prompt_fn, types.SimpleNamespace(scheduler=None))

    def nan_reward(images: Tensor, prompts: Any, metadata: Any) -> tuple[Tensor, dict[str, Any]]:
        return torch.full((images.shape[0],), float("nan")), {}

    with pytest.raises(ValueError, match="NaN"):
        DDPOTrainer(FAST, nan_reward, prompt_fn, make_pipe()).train(progress=False)
    with pytest.raises(ValueError, match="reward_function"):
        bare: Any = lambda i, p, m: i.mean((1, 2, 3))  # noqa: E731 (no (rewards, info) tuple)
        DDPOTrainer(FAST, bare, prompt_fn, make_pipe()).sample()
    with pytest.raises(ValueError, match="prompt_function"):
        no_pair: Any = lambda: "a red square"  # noqa: E731
        DDPOTrainer(FAST, brightness_reward, no_pair, make_pipe()).sample()


# ---- the trainer --------------------------------------------------------------------------------


def test_recomputed_log_probs_equal_the_stored_ones_before_any_update(
    make_pipe: PipeFactory,
) -> None:
    cfg = dataclasses.replace(FAST, sample_guidance_scale=2.0, sample_num_batches_per_epoch=2,
                              train_batch_size=8)  # fmt: skip
    trainer = DDPOTrainer(cfg, brightness_reward, prompt_fn, make_pipe())
    samples = trainer.sample()
    assert samples.latents.shape == (8, 4, 3, 16, 16) and samples.log_probs.shape == (8, 3)
    rows = torch.randperm(8, generator=torch.Generator().manual_seed(0))[:4]  # shuffled batch
    for j in range(3):
        new = trainer.log_prob(samples, rows, j)
        assert new.requires_grad
        torch.testing.assert_close(new.detach(), samples.log_probs[rows, j], rtol=0, atol=1e-6)
    # so the first inner step's PPO ratio is 1: nothing is clipped and the KL estimate is 0
    info = trainer.train_on(samples, trainer.advantages(samples))
    assert info["clipfrac"] == 0.0 and info["approx_kl"] < 1e-12
    assert info["ratio"] == pytest.approx(1.0, abs=1e-6)
    assert info["updates"] == 1.0 and trainer.queries == 8
    # a second pass over the same samples sees the updated policy: ratios move off 1
    assert trainer.train_on(samples, trainer.advantages(samples))["approx_kl"] > 0


def test_only_lora_parameters_get_gradients(make_pipe: PipeFactory) -> None:
    pipe = make_pipe()
    trainer = DDPOTrainer(dataclasses.replace(FAST, num_epochs=1), brightness_reward, prompt_fn,
                          pipe)  # fmt: skip
    samples = trainer.sample()
    adv = trainer.advantages(samples)
    loss = clipped_surrogate(trainer.log_prob(samples, torch.arange(4), 1),
                             samples.log_probs[:, 1], adv, 0.2).mean()  # fmt: skip
    loss.backward()  # type: ignore[no-untyped-call]
    with_grad = [n for n, p in pipe.unet.named_parameters() if p.grad is not None]
    assert with_grad and all("lora_" in n for n in with_grad)
    assert len(with_grad) == len(trainer.trainable_parameters)
    assert all(p.grad is None for p in pipe.text_encoder.parameters())


def test_one_update_raises_the_likelihood_of_above_average_images(make_pipe: PipeFactory) -> None:
    # The policy-gradient direction with a fixed seed: after one DDPO step on a batch, the
    # advantage-weighted change of the chains' log-probabilities is positive.
    cfg = dataclasses.replace(FAST, sample_batch_size=8, train_batch_size=8,
                              train_learning_rate=3e-3, train_clip_range=10.0)  # fmt: skip
    trainer = DDPOTrainer(cfg, brightness_reward, prompt_fn, make_pipe())
    samples = trainer.sample()
    adv = trainer.advantages(samples)
    trainer.train_on(samples, adv)
    rows = torch.arange(8)
    with torch.no_grad():
        new = torch.stack([trainer.log_prob(samples, rows, j) for j in range(3)], dim=1)
    change = (new - samples.log_probs).sum(dim=1)
    assert float((adv * change).sum()) > 0
    hi, lo = adv > 0, adv < 0
    assert float(change[hi].mean()) > float(change[lo].mean())


def test_resume_matches_an_uninterrupted_run(make_pipe: PipeFactory, tmp_path: Path) -> None:
    cfg = dataclasses.replace(FAST, num_epochs=3, per_prompt_stat_tracking=True,
                              per_prompt_stat_tracking_buffer_size=4,
                              per_prompt_stat_tracking_min_count=2,
                              train_timestep_fraction=0.5)  # fmt: skip
    full = DDPOTrainer(dataclasses.replace(cfg, logdir=str(tmp_path / "a")), brightness_reward,
                       prompt_fn, make_pipe())  # fmt: skip
    full.train(progress=False)
    logdir = str(tmp_path / "b")
    first = DDPOTrainer(dataclasses.replace(cfg, logdir=logdir), brightness_reward, prompt_fn,
                        make_pipe())  # fmt: skip
    first.train(2, progress=False)
    random.seed(999)  # disturb the global RNGs: the resume must restore them
    torch.manual_seed(999)
    resumed = DDPOTrainer(dataclasses.replace(cfg, logdir=logdir, resume_from="latest"),
                          brightness_reward, prompt_fn, make_pipe())  # fmt: skip
    assert resumed.epoch == 2 and resumed.queries == 8
    assert resumed.stat_tracker is not None and resumed.stat_tracker.buffers
    resumed.train(progress=False)
    assert [h["reward_mean"] for h in resumed.history] == [h["reward_mean"] for h in full.history]
    a, b = lora.lora_state_dict(full.unet), lora.lora_state_dict(resumed.unet)
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-6)
    assert any(float(v.abs().max()) > 0 for k, v in a.items() if "lora_B" in k)


def test_logging_checkpoints_hook_and_lora_file(
    make_pipe: PipeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scalars: list[tuple[str, int]] = []

    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            assert log_dir == str(tmp_path / "tensorboard")

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            scalars.append((tag, step))

        def close(self) -> None:
            pass

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    calls: list[tuple[int, int]] = []

    def hook(pairs: dict[str, Any], step: int, writer: Any) -> None:
        assert set(pairs) == {"images", "prompts", "prompt_metadata", "rewards"}
        assert isinstance(writer, FakeWriter)
        calls.append((step, pairs["images"].shape[0]))

    cfg = dataclasses.replace(FAST, logdir=str(tmp_path), num_epochs=3, num_checkpoint_limit=2,
                              log_image_freq=2)  # fmt: skip
    trainer = DDPOTrainer(cfg, brightness_reward, prompt_fn, make_pipe(), hook)
    trainer.train(progress=True)
    with (tmp_path / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["queries"]) for r in rows] == [4.0, 8.0, 12.0]
    assert {"loss", "reward_mean", "approx_kl", "clipfrac", "grad_norm"} <= set(rows[0])
    assert ("ddpo/reward_mean", 3) in scalars
    assert calls == [(0, 4), (1, 4), (2, 4)]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["epoch_2.png"]
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["checkpoint_2", "checkpoint_3"]
    out = trainer.save_lora(tmp_path / "lora")
    fresh = make_pipe()
    fresh.load_lora_weights(tmp_path / "lora")
    gen = torch.Generator
    a = trainer.pipeline(list(tiny.PROMPTS), num_inference_steps=3, generator=gen().manual_seed(1))
    b = fresh(list(tiny.PROMPTS), num_inference_steps=3, generator=gen().manual_seed(1))
    assert out.exists()
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="resume_from"):
        DDPOTrainer(dataclasses.replace(cfg, resume_from=str(tmp_path / "nothing")),
                    brightness_reward, prompt_fn, make_pipe())  # fmt: skip


def test_train_from_config_with_a_black_box_reward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VARL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="unknown key"):
        ddpo.train_from_config({"learning_rate": 1.0})
    out = ddpo.train_from_config(
        {
            "pretrain_steps": 2,
            "reward": "jpeg_size",  # measured JPEG size: not differentiable, fine for DDPO
            "num_epochs": 1,
            "sample_batch_size": 2,
            "train_batch_size": 2,
            "sample_num_steps": 2,
            "logdir": str(tmp_path / "run"),
        }
    )
    assert out == tmp_path / "run" / "lora"
    assert (out / "pytorch_lora_weights.safetensors").exists()


def test_train_from_config_log_folder_default_and_beside_output_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VARL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    base = {
        "pretrain_steps": 2,
        "num_epochs": 1,
        "sample_batch_size": 2,
        "train_batch_size": 2,
        "sample_num_steps": 2,
    }
    out = ddpo.train_from_config({**base, "output_dir": str(tmp_path / "out")})
    assert out == tmp_path / "out"
    assert (out / "pytorch_lora_weights.safetensors").exists()
    assert (out / "logs" / "metrics.csv").exists()
    state = torch.load(
        out / "logs" / "checkpoints" / "checkpoint_1" / ddpo.STATE_FILE, weights_only=True
    )
    assert state["epoch"] == 1 and state["queries"] == 2
    assert not (tmp_path / "logs").exists()
    out = ddpo.train_from_config(base)  # neither: TRL's default ./logs
    assert out == Path("logs") / "lora"
    assert (tmp_path / "logs" / "metrics.csv").exists()
    assert (tmp_path / "logs" / "lora" / "pytorch_lora_weights.safetensors").exists()
