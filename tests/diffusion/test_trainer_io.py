"""Shared trainer plumbing: checkpoints, safe state files, RNG states, logs, CLI config."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from varl.diffusion import trainer_io
from varl.diffusion.trainer_io import STATE_FILE

torch.set_num_threads(1)


def _make_checkpoint(folder: Path, name: str) -> Path:
    path = folder / name
    path.mkdir(parents=True)
    (path / STATE_FILE).write_bytes(b"")
    return path


def test_checkpoints_are_listed_by_number_resolved_and_pruned(tmp_path: Path) -> None:
    ckpts = tmp_path / "checkpoints"
    for n in (10, 2, 9):
        _make_checkpoint(ckpts, f"checkpoint_{n}")
    (ckpts / "checkpoint_11").mkdir()  # no state file: not a checkpoint
    (ckpts / "checkpoint_x").mkdir()
    assert [p.name for p in trainer_io.list_checkpoints(ckpts)] == [
        "checkpoint_2",
        "checkpoint_9",
        "checkpoint_10",
    ]
    assert trainer_io.latest_checkpoint(tmp_path) == ckpts / "checkpoint_10"
    assert trainer_io.resolve_checkpoint(tmp_path) == ckpts / "checkpoint_10"
    assert trainer_io.resolve_checkpoint(ckpts / "checkpoint_2") == ckpts / "checkpoint_2"
    with pytest.raises(ValueError, match="resume_from: no checkpoint"):
        trainer_io.resolve_checkpoint(tmp_path / "empty")
    trainer_io.prune_checkpoints(ckpts / "checkpoint_10", 2)
    assert [p.name for p in trainer_io.list_checkpoints(ckpts)] == ["checkpoint_9", "checkpoint_10"]
    trainer_io.prune_checkpoints(ckpts / "checkpoint_10", 0)  # 0 keeps all
    assert len(trainer_io.list_checkpoints(ckpts)) == 2
    outside = _make_checkpoint(tmp_path / "mine", "checkpoint_1")
    _make_checkpoint(tmp_path / "mine", "checkpoint_0")
    trainer_io.prune_checkpoints(outside, 1)  # not under checkpoints/: never deletes
    assert len(trainer_io.list_checkpoints(tmp_path / "mine")) == 2


def test_resume_target_and_default_folders(tmp_path: Path) -> None:
    assert trainer_io.resume_target("", tmp_path) is None
    assert trainer_io.resume_target("latest", tmp_path) is None  # nothing yet: fresh start
    assert trainer_io.resume_target("latest", None) is None
    made = _make_checkpoint(tmp_path / "checkpoints", "checkpoint_3")
    assert trainer_io.resume_target("latest", tmp_path) == made
    assert trainer_io.resume_target(str(tmp_path), None) == made
    with pytest.raises(ValueError, match="resume_from"):
        trainer_io.resume_target(str(tmp_path / "none"), tmp_path)
    assert trainer_io.checkpoint_dir(None, tmp_path, 4) == tmp_path / "checkpoints/checkpoint_4"
    assert trainer_io.checkpoint_dir("x", None, 4) == Path("x")
    with pytest.raises(ValueError, match="directory"):
        trainer_io.checkpoint_dir(None, None, 4)
    assert trainer_io.lora_output_dir("out", "logs") == Path("out")
    assert trainer_io.lora_output_dir(None, "logs") == Path("logs/lora")
    assert trainer_io.lora_output_dir(None, None) == Path("lora")


def test_state_and_global_rngs_round_trip_with_weights_only(tmp_path: Path) -> None:
    trainer_io.seed_global_rngs(3)
    state = {"w": torch.arange(3.0), "history": [{"loss": 0.5}], **trainer_io.global_rng_state()}
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    path = trainer_io.save_trainer_state(state, tmp_path / "ck")
    assert path == tmp_path / "ck" / STATE_FILE
    assert not (tmp_path / "ck" / (STATE_FILE + ".tmp")).exists()
    raw = torch.load(path, weights_only=True)  # the safe loader accepts the file
    assert isinstance(raw["numpy_rng"][1], list)
    trainer_io.seed_global_rngs(99)  # disturb, then restore
    loaded = trainer_io.load_trainer_state(tmp_path / "ck")
    trainer_io.set_global_rng_state(loaded)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected
    assert torch.equal(loaded["w"], torch.arange(3.0)) and loaded["history"] == [{"loss": 0.5}]


def test_save_trainer_state_rejects_what_weights_only_cannot_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"state\['rng'\].*ndarray"):
        trainer_io.save_trainer_state({"rng": np.zeros(2)}, tmp_path)
    with pytest.raises(ValueError, match="float64"):
        trainer_io.save_trainer_state({"h": [{"r": np.float64(1.0)}]}, tmp_path)
    assert not (tmp_path / STATE_FILE).exists()


def test_log_metrics_appends_csv_rows_and_scalars(tmp_path: Path) -> None:
    scalars: list[tuple[str, float, int]] = []

    class Writer:
        def add_scalar(self, tag: str, value: float, step: int) -> None:
            scalars.append((tag, value, step))

    logdir = tmp_path / "run"
    trainer_io.log_metrics(logdir, {"epoch": 1.0, "loss": 0.5}, writer=Writer(), tag="t", step=1)
    trainer_io.log_metrics(logdir, {"epoch": 2.0, "loss": 0.25}, writer=None, tag="t", step=2)
    with (logdir / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"epoch": "1.0", "loss": "0.5"}, {"epoch": "2.0", "loss": "0.25"}]
    assert scalars == [("t/loss", 0.5, 1)]


def test_save_image_grid_tiles_row_major_and_pads_black(tmp_path: Path) -> None:
    images = torch.stack([torch.full((3, 1, 2), v) for v in (1.0, 0.5, 2.0)])  # 2.0 is clamped
    path = trainer_io.save_image_grid(images, tmp_path / "sub" / "g.png", columns=2)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (2, 4, 3)
    assert grid[0, :2].tolist() == [[255] * 3] * 2
    assert grid[0, 2:].tolist() == [[128] * 3] * 2  # round(0.5 * 255)
    assert grid[1, :2].tolist() == [[255] * 3] * 2
    assert grid[1, 2:].tolist() == [[0] * 3] * 2
    gray = trainer_io.save_image_grid(torch.zeros(1, 1, 2, 2), tmp_path / "gray.png")
    assert Image.open(gray).mode == "L"


def test_progress_bar_modes() -> None:
    assert trainer_io.progress_bar(False, 5, desc="x", unit="step") == (None, False)

    class Bar:
        total = 0

        def reset(self, total: int | None = None) -> None:
            self.total = total or 0

        def update(self, n: int = 1) -> None:
            pass

    bar = Bar()
    got, owned = trainer_io.progress_bar(bar, 7, desc="x", unit="step")
    assert got is bar and not owned and bar.total == 7


@dataclass(frozen=True)
class _Cfg:
    logdir: str | None = "logs"
    steps: int = 1
    lr: float = 0.1


def test_split_trainer_config_defaults_unknown_keys_and_logdir() -> None:
    tiny = {"steps": 5}
    values, extra = trainer_io.split_trainer_config({"lr": 0.5}, _Cfg, tiny)
    assert values == {"steps": 5, "lr": 0.5}  # logdir: the config's own default ("logs")
    assert extra == trainer_io.CLI_KEYS
    values, _ = trainer_io.split_trainer_config({"model": "/some/folder"}, _Cfg, tiny)
    assert values == {}  # tiny defaults only for the tiny model
    values, extra = trainer_io.split_trainer_config({"output_dir": "out"}, _Cfg, tiny)
    assert values["logdir"] == str(Path("out") / "logs") and extra["output_dir"] == "out"
    for logdir in ("mine", None):  # an explicit logdir wins over output_dir
        values, _ = trainer_io.split_trainer_config(
            {"output_dir": "out", "logdir": logdir}, _Cfg, tiny
        )
        assert values["logdir"] == logdir
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['bogus'\]"):
        trainer_io.split_trainer_config({"bogus": 1}, _Cfg, tiny)


def test_uniform_prompt_function_draws_from_the_list() -> None:
    fn = trainer_io.uniform_prompt_function(["a", "b"])
    random.seed(0)
    assert {fn()[0] for _ in range(50)} == {"a", "b"}
    assert fn()[1] == {}
    from varl.diffusion.tiny import PROMPTS

    assert {trainer_io.uniform_prompt_function(None)()[0] for _ in range(50)} == set(PROMPTS)
    with pytest.raises(ValueError, match="prompts"):
        trainer_io.uniform_prompt_function([1, 2])  # type: ignore[list-item]


def test_load_pipeline_and_reward_by_name_reject_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model"):
        trainer_io.load_pipeline(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="aesthetic"):
        trainer_io.reward_by_name("aesthetic")
    with pytest.raises(ValueError, match="reward"):
        trainer_io.reward_by_name("nope")
    with pytest.raises(ValueError, match="jpeg"):
        trainer_io.reward_by_name("jpeg")  # needs a pipeline
    from varl.diffusion.rewards import brightness_reward

    assert trainer_io.reward_by_name("brightness") is brightness_reward
    assert trainer_io.reward_by_name("varl.diffusion.rewards:brightness_reward") is (
        brightness_reward
    )


def test_write_checkpoint_saves_state_and_lora_then_prunes(tmp_path: Path) -> None:
    def save_lora(folder: Path) -> Path:
        path = folder / "pytorch_lora_weights.safetensors"
        path.write_bytes(b"lora")
        return path

    for epoch in (1, 2, 3):
        out = trainer_io.write_checkpoint(
            None, logdir=tmp_path, epoch=epoch, state={"epoch": epoch}, save_lora=save_lora,
            limit=2,
        )  # fmt: skip
        assert out == tmp_path / "checkpoints" / f"checkpoint_{epoch}"
    names = [p.name for p in trainer_io.list_checkpoints(tmp_path / "checkpoints")]
    assert names == ["checkpoint_2", "checkpoint_3"]
    assert trainer_io.load_trainer_state(out) == {"epoch": 3}
    assert (out / "pytorch_lora_weights.safetensors").read_bytes() == b"lora"
    with pytest.raises(ValueError, match="directory"):
        trainer_io.write_checkpoint(
            None, logdir=None, epoch=1, state={}, save_lora=save_lora, limit=0
        )


def test_draw_prompts_splits_pairs_and_rejects_bad_returns() -> None:
    it = iter([("a", 1), ("b", {"k": 2})])
    assert trainer_io.draw_prompts(lambda: next(it), 2) == (("a", "b"), (1, {"k": 2}))
    with pytest.raises(ValueError, match="prompt_function"):
        trainer_io.draw_prompts(lambda: "a", 1)
    with pytest.raises(ValueError, match="prompt_function"):
        trainer_io.draw_prompts(lambda: (3, {}), 1)
