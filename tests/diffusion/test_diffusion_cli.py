"""``varl diffusion ...`` as a user runs it: subprocess smoke tests and the config loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from varl.diffusion.cli import load_config


def _varl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VARL_CACHE": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "varl", "diffusion", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,  # trainers write ./logs by default (TRL's logdir)
        check=False,
    )


def test_load_config_applies_overrides_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("reward: redness\nsample_num_steps: 10\n", encoding="utf-8")
    cfg = load_config(path, ["sample_num_steps=4", "truncation=fixed:1", "prompts=[red, blue]"])
    assert cfg == {
        "reward": "redness",
        "sample_num_steps": 4,
        "truncation": "fixed:1",
        "prompts": ["red", "blue"],
    }
    assert load_config(None) == {}


def test_load_config_rejects_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="flat YAML mapping"):
        load_config(path)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load_config(None, ["novalue"])
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_alignprop_trains_and_saves_a_loadable_lora(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _varl(
        tmp_path,
        "alignprop",
        "--set",
        "pretrain_steps=2",
        "--set",
        "num_epochs=1",
        "--set",
        "sample_num_steps=2",
        "--set",
        "train_batch_size=2",
        "--set",
        "truncation=fixed:1",
        "--set",
        f"output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "LoRA weights saved in" in proc.stdout
    assert list(out.rglob("pytorch_lora_weights.safetensors"))


def test_bad_key_exits_2_naming_it(tmp_path: Path) -> None:
    proc = _varl(tmp_path, "alignprop", "--set", "bogus=1")
    assert proc.returncode == 2
    assert "bogus" in proc.stderr


def test_ctrl_u_prints_its_metrics(tmp_path: Path) -> None:
    proc = _varl(
        tmp_path,
        "ctrl-u",
        "--set",
        "pretrain_steps=2",
        "--set",
        "segmenter_steps=2",
        "--set",
        "steps=2",
        "--set",
        "batch_size=2",
        "--set",
        "eval_samples=2",
        "--set",
        "sample_steps=2",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert {"miou", "pixel_accuracy"} <= set(metrics)
    assert 0.0 <= metrics["miou"] <= 1.0
