"""``varl grpo train``: the tiny default trains, checkpoints and resumes; bad input is clear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from varl.grpo import train


def _varl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "varl", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def test_tiny_default_trains_checkpoints_and_resumes(tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    common = ["--output_dir", out, "--save_steps", "2", "--disable_tqdm", "true"]
    common += ["--logging_steps", "1"]
    first = _varl("grpo", "train", *common, "--max_steps", "2", "--warm_start_steps", "10")
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoint-2").is_dir()
    assert (tmp_path / "run" / "model.safetensors").is_file()
    resumed = _varl("grpo", "train", *common, "--max_steps", "4", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoint-4").is_dir()
    # The resumed run continued at step 3: it logged steps 3 and 4 only, not four steps.
    assert resumed.stdout.count("'loss'") == 2


def test_errors_name_the_argument(tmp_path: Path) -> None:
    out = ["--output_dir", str(tmp_path / "x")]
    with pytest.raises(ValueError, match=r"cannot import 'varl\.rewards\.text\.nope'"):
        train.main([*out, "--reward_funcs", "varl.rewards.text.nope"])
    with pytest.raises(ValueError, match=r"model: no such local folder '\./missing'"):
        train.main([*out, "--model", "./missing"])
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "hi", "answer": "A"}\n')
    with pytest.raises(ValueError, match="reads the column 'solution', which the dataset lacks"):
        train.main([*out, "--dataset", str(data)])
    with pytest.raises(ValueError, match="--resume: no checkpoint"):
        train.main([*out, "--resume"])
    with pytest.raises(ValueError, match="--config: no such file"):
        train.main([f"--config={tmp_path / 'nope.yaml'}"])
    with pytest.raises(ValueError, match="--config: no such file"):
        train.main(["--config", str(tmp_path / "nope.yaml")])
    with pytest.raises(ValueError, match="tw_alpha: expected a finite number >= 1"):
        train.main([*out, "--tw_alpha", "0.5"])


def test_cli_reports_errors_with_exit_code_2(tmp_path: Path) -> None:
    proc = _varl("grpo", "train", "--output_dir", str(tmp_path), "--resume")
    assert proc.returncode == 2
    assert "--resume: no checkpoint" in proc.stderr and "Traceback" not in proc.stderr


def test_yaml_config_and_flag_override(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'y'}\ntoken_weighting: tw_grpo\ntw_alpha: 2.0\n")
    parser = train.TrlParser((train.GrpoScriptArguments, train.VarlGRPOConfig))
    parser.set_defaults(**train.TINY_DEFAULTS, use_cpu=True)
    script, args = parser.parse_args_and_config(["--config", str(cfg), "--tw_alpha", "1.5"])
    assert args.token_weighting == "tw_grpo" and args.tw_alpha == 1.5
    assert args.max_completion_length == 44 and script.model is None


def test_model_flag_forms_skip_tiny_defaults() -> None:
    assert train._names_a_model(["--model=Qwen/Qwen2.5-0.5B"])
    assert train._names_a_model(["--model", "org/name"])
    assert not train._names_a_model(["--max_steps", "3"])
