"""AlignPropTrainer: loss transforms, validation, learning, LoRA save/load, resume (spec §6)."""

from __future__ import annotations

import csv
import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor

from varl.diffusion import alignprop, lora, tiny
from varl.diffusion.alignprop import AlignPropConfig, AlignPropTrainer, reward_loss
from varl.diffusion.rewards import NonDifferentiableRewardError, brightness_reward
from varl.diffusion.truncation import TruncationSchedule

torch.set_num_threads(1)

TEST_CFG = tiny.TinyDiffusionConfig(pretrain_steps=20, batch_size=8)
"""A briefly pretrained tiny model; the file name is shared with the other test modules."""

PipeFactory = Callable[[], tiny.TinyTextToImagePipeline]

FAST = AlignPropConfig(
    logdir=None,
    num_epochs=3,
    sample_num_steps=4,
    sample_guidance_scale=1.0,
    train_batch_size=4,
    train_learning_rate=1e-2,
    truncation=TruncationSchedule.fixed(2),
)


@pytest.fixture(scope="module")
def make_pipe(tmp_path_factory: pytest.TempPathFactory) -> PipeFactory:
    cache = tmp_path_factory.getbasetemp() / "varl-tiny"
    return lambda: tiny.tiny_pipeline(TEST_CFG, cache_dir=cache)


def prompt_fn() -> tuple[str, dict[str, Any]]:
    return random.choice(tiny.PROMPTS), {"source": "test"}


def _brightness(pipe: tiny.TinyTextToImagePipeline) -> float:
    images = pipe(list(tiny.PROMPTS) * 2, num_inference_steps=4, guidance_scale=1.0,
                  generator=torch.Generator().manual_seed(123))  # fmt: skip
    return float(images.mean())


def _lora(trainer: AlignPropTrainer) -> dict[str, Tensor]:
    return lora.lora_state_dict(trainer.pipeline.unet)


def test_reward_loss_transforms_hand_values() -> None:
    r = torch.tensor([8.0, 12.0])
    assert reward_loss(r, "neg").tolist() == [-8.0, -12.0]
    assert reward_loss(r, "abs_target", 10.0).tolist() == [2.0, 2.0]
    assert reward_loss(r, "ten_minus").tolist() == [2.0, -2.0]
    with pytest.raises(ValueError, match="loss"):
        reward_loss(r, "mse")


def test_config_validation() -> None:
    with pytest.raises(ValueError, match=r"truncation.*sample_num_steps"):
        AlignPropConfig(sample_num_steps=10, truncation=TruncationSchedule.fixed(11))
    with pytest.raises(ValueError, match=r"truncation.*sample_num_steps"):
        AlignPropConfig(sample_num_steps=10)  # the default K ~ U{0..50} needs 50 steps
    with pytest.raises(ValueError, match="loss"):
        AlignPropConfig(loss="mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="train_learning_rate"):
        AlignPropConfig(train_learning_rate=0.0)
    with pytest.raises(ValueError, match="train_batch_size"):
        AlignPropConfig(train_batch_size=0)
    with pytest.raises(ValueError, match="train_adam_beta1"):
        AlignPropConfig(train_adam_beta1=1.0)
    assert AlignPropConfig().truncation == TruncationSchedule.uniform(0, 50)


def test_pipeline_without_components_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="unet"):
        AlignPropTrainer(FAST, brightness_reward, prompt_fn, SimpleNamespace(scheduler=object()))


def test_bad_rewards_raise(make_pipe: PipeFactory) -> None:
    def wrong_batch(images: Tensor, prompts: Any, meta: Any) -> tuple[Tensor, dict[str, Any]]:
        return images.mean().reshape(1), {}

    def detached(images: Tensor, prompts: Any, meta: Any) -> tuple[Tensor, dict[str, Any]]:
        return images.detach().mean(dim=(1, 2, 3)), {}

    with pytest.raises(ValueError, match=r"reward_function.*shape \[4\]"):
        AlignPropTrainer(FAST, wrong_batch, prompt_fn, make_pipe()).step()
    with pytest.raises(NonDifferentiableRewardError, match="grad_fn"):
        AlignPropTrainer(FAST, detached, prompt_fn, make_pipe()).step()
    with pytest.raises(ValueError, match="prompt_function"):
        AlignPropTrainer(FAST, brightness_reward, lambda: "a red square", make_pipe()).step()  # type: ignore[arg-type,return-value]


class StubVAE(torch.nn.Module):
    """A "VAE" whose decoder is an arbitrary function (to feed the trainer bad images)."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn
        self.config = SimpleNamespace(scaling_factor=1.0)

    def decode(self, z: Tensor) -> SimpleNamespace:
        return SimpleNamespace(sample=self.fn(z))


def test_bad_images_raise(make_pipe: PipeFactory) -> None:
    pipe = make_pipe()
    pipe.vae = StubVAE(lambda z: torch.full_like(z, float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        AlignPropTrainer(FAST, brightness_reward, prompt_fn, pipe).step()
    pipe = make_pipe()
    pipe.vae = StubVAE(lambda z: torch.cat([z, z[:, :1]], dim=1))  # 4 channels
    with pytest.raises(ValueError, match=r"expected C in \(1, 3\)"):
        AlignPropTrainer(FAST, brightness_reward, prompt_fn, pipe).step()
    pipe = make_pipe()
    pipe.vae = StubVAE(lambda z: z[:, :, 0])  # [B, C, W]: not an image batch
    with pytest.raises(ValueError, match=r"shape \[B, C, H, W\]"):
        AlignPropTrainer(FAST, brightness_reward, prompt_fn, pipe).step()


def test_brightness_rises_after_a_few_steps(make_pipe: PipeFactory) -> None:
    pipe = make_pipe()
    before = _brightness(pipe)
    trainer = AlignPropTrainer(dataclasses.replace(FAST, num_epochs=4), brightness_reward,
                               prompt_fn, pipe)  # fmt: skip
    history = trainer.train(progress=False)
    assert len(history) == 4 and all(h["k_mean"] == 2 for h in history)
    assert history[-1]["reward_mean"] > history[0]["reward_mean"]
    after = _brightness(pipe)
    assert after > before + 0.02, (before, after)
    only_lora = [n for n, p in pipe.unet.named_parameters() if p.grad is not None]
    assert only_lora and all("lora_" in n for n in only_lora)
    assert all(p.grad is None for p in pipe.text_encoder.parameters())


def test_save_lora_loads_back_into_a_fresh_pipeline(make_pipe: PipeFactory, tmp_path: Path) -> None:
    pipe = make_pipe()
    trainer = AlignPropTrainer(FAST, brightness_reward, prompt_fn, pipe)
    trainer.train(2, progress=False)
    trainer.save_lora(tmp_path)
    fresh = make_pipe()
    untrained = _brightness(fresh)
    fresh.load_lora_weights(tmp_path)
    gen = torch.Generator
    a = pipe(list(tiny.PROMPTS), num_inference_steps=4, generator=gen().manual_seed(5))
    b = fresh(list(tiny.PROMPTS), num_inference_steps=4, generator=gen().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert _brightness(fresh) != untrained


def test_resume_after_a_kill_matches_an_uninterrupted_run(
    make_pipe: PipeFactory, tmp_path: Path
) -> None:
    cfg = dataclasses.replace(
        FAST, num_epochs=3, truncation=TruncationSchedule.uniform(0, 4), sample_eta=1.0
    )
    full = AlignPropTrainer(dataclasses.replace(cfg, logdir=str(tmp_path / "a")),
                            brightness_reward, prompt_fn, make_pipe())  # fmt: skip
    full.train(progress=False)
    logdir = str(tmp_path / "b")
    first = AlignPropTrainer(dataclasses.replace(cfg, logdir=logdir), brightness_reward,
                             prompt_fn, make_pipe())  # fmt: skip
    first.train(2, progress=False)  # "killed" after step 2 (its checkpoint is on disk)
    random.seed(999)  # the interruption disturbs the global RNGs; resume must restore them
    torch.manual_seed(999)
    resumed = AlignPropTrainer(dataclasses.replace(cfg, logdir=logdir, resume_from="latest"),
                               brightness_reward, prompt_fn, make_pipe())  # fmt: skip
    assert resumed.epoch == 2
    resumed.train(progress=False)
    assert [h["reward_mean"] for h in resumed.history] == [h["reward_mean"] for h in full.history]
    for key, value in _lora(full).items():
        torch.testing.assert_close(_lora(resumed)[key], value, rtol=0, atol=1e-6)
    assert any(float(v.abs().max()) > 0 for k, v in _lora(full).items() if "lora_B" in k)


def test_logging_checkpoints_images_and_hook(make_pipe: PipeFactory, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []

    def hook(pairs: dict[str, Any], step: int, writer: Any) -> None:
        assert set(pairs) == {"images", "prompts", "prompt_metadata", "rewards"}
        calls.append((step, pairs["images"].shape[0]))

    cfg = dataclasses.replace(
        FAST, logdir=str(tmp_path), num_epochs=3, num_checkpoint_limit=2, log_image_freq=2
    )
    AlignPropTrainer(cfg, brightness_reward, prompt_fn, make_pipe(), hook).train(progress=False)
    with (tmp_path / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["epoch"]) for r in rows] == [1.0, 2.0, 3.0]
    assert {"loss", "reward_mean", "reward_std", "k_mean", "grad_norm"} <= set(rows[0])
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["epoch_2.png"]
    assert calls == [(2, 4)]
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["checkpoint_2", "checkpoint_3"]
    assert (tmp_path / "checkpoints" / "checkpoint_3" / "pytorch_lora_weights.safetensors").exists()
    with pytest.raises(ValueError, match="resume_from"):
        AlignPropTrainer(dataclasses.replace(cfg, resume_from=str(tmp_path / "nothing")),
                         brightness_reward, prompt_fn, make_pipe())  # fmt: skip


def test_parse_truncation() -> None:
    assert alignprop.parse_truncation("fixed:1") == TruncationSchedule.fixed(1)
    assert alignprop.parse_truncation("uniform:0:10") == TruncationSchedule.uniform(0, 10)
    assert alignprop.parse_truncation({"kind": "legacy_per_step", "tmin": 0, "tmax": 5}) == (
        TruncationSchedule.legacy_per_step(0, 5)
    )
    with pytest.raises(ValueError, match="truncation"):
        alignprop.parse_truncation("cosine:1")


def test_train_from_config_writes_a_loadable_lora(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VARL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="unknown key"):
        alignprop.train_from_config({"learning_rate": 1.0})
    out = alignprop.train_from_config(
        {
            "pretrain_steps": 2,
            "reward": "redness",
            "num_epochs": 1,
            "train_batch_size": 2,
            "sample_num_steps": 3,
            "truncation": "fixed:1",
            "logdir": str(tmp_path / "run"),
        }
    )
    assert out == tmp_path / "run" / "lora"
    assert (out / "pytorch_lora_weights.safetensors").exists()
    with pytest.raises(ValueError, match="reward"):
        alignprop.reward_by_name("aesthetic")


def test_trains_a_real_stable_diffusion_pipeline_and_its_lora_loads_back(tmp_path: Path) -> None:
    pipe = tiny.random_stable_diffusion_pipeline(seed=0)
    cfg = dataclasses.replace(FAST, num_epochs=1, sample_num_steps=3, train_batch_size=2,
                              sample_guidance_scale=2.0, truncation=TruncationSchedule.fixed(3),
                              train_learning_rate=0.1)  # fmt: skip
    trainer = AlignPropTrainer(cfg, brightness_reward, prompt_fn, pipe)
    trainer.train(progress=False)
    assert trainer.history[0]["grad_norm"] > 0
    assert all(p.grad is None for p in pipe.vae.parameters())  # the VAE stays frozen
    trainer.save_lora(tmp_path)
    fresh = tiny.random_stable_diffusion_pipeline(seed=0)
    fresh.load_lora_weights(tmp_path)

    def images(p: Any) -> Tensor:
        out = p("a red square", num_inference_steps=3, height=16, width=16, output_type="pt",
                generator=torch.Generator().manual_seed(0))  # fmt: skip
        result: Tensor = out.images
        return result

    assert images(pipe).shape == (1, 3, 16, 16)
    torch.testing.assert_close(images(fresh), images(pipe), rtol=0, atol=1e-6)
    base = images(tiny.random_stable_diffusion_pipeline(seed=0))
    assert float((base - images(pipe)).abs().max()) > 1e-4  # the LoRA changed the model


def test_tensorboard_scalars_and_progress_bar(
    make_pipe: PipeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    scalars: list[tuple[str, float, int]] = []

    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            assert log_dir == str(tmp_path / "tensorboard")

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            scalars.append((tag, value, step))

        def flush(self) -> None:
            pass

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    cfg = dataclasses.replace(FAST, logdir=str(tmp_path), num_epochs=2, save_freq=0)
    AlignPropTrainer(cfg, brightness_reward, prompt_fn, make_pipe()).train(progress=True)
    tags = {tag for tag, _, _ in scalars}
    assert tags == {f"alignprop/{k}" for k in ("loss", "reward_mean", "reward_std", "k_mean",
                                                "grad_norm")}  # fmt: skip
    assert sorted({step for _, _, step in scalars}) == [1, 2]
    assert not (tmp_path / "checkpoints").exists()


def test_train_from_config_on_a_local_diffusers_folder(tmp_path: Path) -> None:
    tiny.random_stable_diffusion_pipeline(seed=0).save_pretrained(tmp_path / "model")
    out = alignprop.train_from_config(
        {
            "model": str(tmp_path / "model"),
            "num_epochs": 1,
            "train_batch_size": 1,
            "sample_num_steps": 2,
            "sample_guidance_scale": 1.0,
            "truncation": "fixed:1",
            "prompts": ["a red square"],
            "logdir": None,
            "output_dir": str(tmp_path / "lora"),
        }
    )
    assert (out / "pytorch_lora_weights.safetensors").exists()
    with pytest.raises(ValueError, match="model"):
        alignprop.train_from_config({"model": str(tmp_path / "missing")})


def test_checkpoint_state_is_plain_data_loadable_with_weights_only(
    make_pipe: PipeFactory, tmp_path: Path
) -> None:
    cfg = dataclasses.replace(FAST, logdir=str(tmp_path), num_epochs=1, log_image_freq=0)
    trainer = AlignPropTrainer(cfg, brightness_reward, prompt_fn, make_pipe())
    trainer.train(progress=False)
    path = tmp_path / "checkpoints" / "checkpoint_1" / alignprop.STATE_FILE
    state = torch.load(path, map_location="cpu", weights_only=True)  # no pickled objects
    assert state["epoch"] == 1
    assert isinstance(state["numpy_rng"][1], list)
    assert state["mask_rng"] == trainer.mask_rng.bit_generator.state
    assert state["config"]["truncation"]["kind"] == "fixed"
    resumed = AlignPropTrainer(
        dataclasses.replace(cfg, resume_from=str(tmp_path)), brightness_reward, prompt_fn,
        make_pipe(),
    )  # fmt: skip
    assert resumed.epoch == 1 and resumed.history == trainer.history


def test_train_from_config_logs_beside_the_lora_when_output_dir_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VARL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # TRL's default logdir "logs" would land here
    out = alignprop.train_from_config(
        {
            "pretrain_steps": 2,
            "num_epochs": 1,
            "train_batch_size": 2,
            "sample_num_steps": 2,
            "truncation": "fixed:1",
            "output_dir": str(tmp_path / "out"),
        }
    )
    assert out == tmp_path / "out"
    assert (out / "pytorch_lora_weights.safetensors").exists()
    assert (out / "logs" / "metrics.csv").exists()
    assert (out / "logs" / "checkpoints" / "checkpoint_1" / alignprop.STATE_FILE).exists()
    assert not (tmp_path / "logs").exists()
