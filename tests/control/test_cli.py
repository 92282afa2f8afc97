"""``varl control train --resume``: the saved run's settings win; conflicting flags are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("gymnasium")

from varl.control.cli import train

CFG = "hidden: [16, 16]\nbatch_size: 32\nbuffer_size: 1000\nlearning_starts: 50\neval_every: 0\n"


def _first_run(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CFG)
    run = tmp_path / "run"
    code = train(
        env_id="Pendulum-v1",
        steps=60,
        seed=0,
        config_path=str(cfg),
        preset="small",
        out=str(run),
        progress=False,
    )
    assert code == 0
    return cfg, run


def test_resume_rejects_a_different_config_or_out(tmp_path: Path) -> None:
    cfg, run = _first_run(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text(CFG.replace("batch_size: 32", "batch_size: 16"))
    with pytest.raises(ValueError, match=r"differs from the run saved in .* in \['batch_size'\]"):
        train(
            env_id="Pendulum-v1",
            steps=80,
            config_path=str(other),
            preset="small",
            resume=str(run),
            progress=False,
        )
    with pytest.raises(ValueError, match=r"^--out .*elsewhere differs from the resumed run folder"):
        train(
            env_id="Pendulum-v1",
            steps=80,
            out=str(tmp_path / "elsewhere"),
            resume=str(run),
            progress=False,
        )
    # The same config file and the run folder itself are accepted.
    code = train(
        env_id="Pendulum-v1",
        steps=70,
        config_path=str(cfg),
        preset="small",
        out=str(run),
        resume=str(run),
        progress=False,
    )
    assert code == 0


def test_resume_reports_ignored_env_seed_and_preset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = _first_run(tmp_path)
    capsys.readouterr()
    code = train(
        env_id="MountainCarContinuous-v0",
        steps=70,
        seed=3,
        preset="paper",
        resume=str(run),
        progress=False,
    )
    assert code == 0
    out, err = capsys.readouterr()
    assert err == (
        f"resume: the run saved in {run} keeps its settings; ignoring "
        "--env MountainCarContinuous-v0 (saved Pendulum-v1), --seed 3 (saved 0), "
        "--preset paper (the saved config is kept)\n"
    )
    assert out.startswith("trained 70 steps")
