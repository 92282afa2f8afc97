"""Smoke tests of the ``varl`` console script, run as subprocesses the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from varl import __version__


def _varl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "varl", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
        check=False,
    )


def test_help_lists_commands() -> None:
    proc = _varl("--help")
    assert proc.returncode == 0
    assert "reproduce" in proc.stdout and "env" in proc.stdout


def test_version() -> None:
    proc = _varl("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"varl {__version__}"


def test_env_prints_versions() -> None:
    proc = _varl("env")
    assert proc.returncode == 0
    assert f"varl: {__version__}" in proc.stdout
    assert "numpy: " in proc.stdout


def test_reproduce_list() -> None:
    proc = _varl("reproduce", "--list")
    assert proc.returncode == 0
    assert proc.stdout.split()[0] == "gui_g2"


def test_reproduce_unknown_name_exits_2_with_message() -> None:
    proc = _varl("reproduce", "no_such_experiment")
    assert proc.returncode == 2
    assert "unknown experiment(s) ['no_such_experiment']" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_reproduce_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = _varl("reproduce", "gui_g2", "--seeds", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "claims held" in proc.stdout
    assert {p.name for p in out.iterdir()} == {
        "report.md",
        "report.html",
        "results.json",
        "gui_g2.png",
        "runs",
    }
    assert json.loads((out / "results.json").read_text())["experiments"][0]["name"] == "gui_g2"
    resumed = _varl("reproduce", "gui_g2", "--seeds", "1", "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "1/1 claims held" in resumed.stdout


def test_control_train_resume_eval(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "hidden: [16, 16]\nbatch_size: 32\nbuffer_size: 1000\nlearning_starts: 50\n"
        "eval_every: 100\neval_episodes: 1\n"
    )
    run = tmp_path / "run"
    args = ["control", "train", "--env", "Pendulum-v1", "--seed", "0", "--preset", "small"]
    proc = _varl(*args, "--steps", "100", "--config", str(cfg), "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    assert "trained 100 steps (51 updates)" in proc.stdout
    assert {p.name for p in run.iterdir()} >= {"checkpoint.pt", "config.yaml", "evaluations.csv"}
    resumed = _varl(*args, "--steps", "200", "--resume", str(run), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "trained 200 steps (151 updates)" in resumed.stdout
    assert len((run / "evaluations.csv").read_text().splitlines()) == 3
    evaluated = _varl("control", "eval", str(run), "--episodes", "1")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("Pendulum-v1: return -")


def test_control_bad_config_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("batch_size: 64\nbuffer_size: 10\n")
    proc = _varl("control", "train", "--steps", "10", "--config", str(cfg))
    assert proc.returncode == 2
    assert "batch_size: 64 is larger than buffer_size 10" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = _varl("control", "eval", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no checkpoint.pt" in missing.stderr


# --- varl game (issue 5) ------------------------------------------------------------------------

_T2_JSON = (
    '{"players": ["Row", "Column"], "actions": [["Safe", "Risky"], ["L", "R"]], '
    '"payoffs": [[[1, 1], [2, -10]], [[1, 0], [0, 1]]]}'
)


def test_game_solve_rae_and_nash_json(tmp_path: Path) -> None:
    game = tmp_path / "t2.json"
    game.write_text(_T2_JSON)
    proc = _varl("game", "solve", str(game), "--concept", "rae", "--gamma", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "Row" in proc.stdout and "RAE gap" in proc.stdout and "Safe:0.7" in proc.stdout
    nash = _varl("game", "solve", str(game), "--concept", "nash", "--json")
    assert nash.returncode == 0, nash.stderr
    out = json.loads(nash.stdout)
    assert out["gap_name"] == "NashConv" and out["gap"] == 0.0
    assert abs(out["players"][0]["variance"] - 2.75) < 1e-9  # spec T1/T2: Nash row variance


def test_game_solve_nfg_and_bad_file(tmp_path: Path) -> None:
    nfg = tmp_path / "g.nfg"
    nfg.write_text('NFG 1 R "stag" { "A" "B" } { 2 2 }\n4 4 3 0 0 3 3 3\n')
    proc = _varl("game", "solve", str(nfg), "--concept", "rae", "--gamma", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["players"]) == 2
    bad = tmp_path / "bad.nfg"
    bad.write_text('NFG 1 R "t" { "A" "B" } { 2 2 }\n4 4 3 0\n0 x 3 3\n')
    proc = _varl("game", "solve", str(bad))
    assert proc.returncode == 2
    assert "bad.nfg line 3" in proc.stderr and "Traceback" not in proc.stderr


def test_game_psro_two_way_table_and_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    args = ("game", "psro", "--env", "two_way", "--symmetric", "--gamma", "1", "--iterations", "3")
    proc = _varl(*args, "--checkpoint", str(ckpt))
    assert proc.returncode == 0, proc.stderr
    assert "PSRO-rae on two_way" in proc.stdout and "P(crash)=" in proc.stdout
    assert (ckpt / "psro_state.json").is_file()
    resumed = _varl(*args, "--checkpoint", str(ckpt), "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["players"][0]["population"] >= 2


def test_game_psro_bad_env_exits_2() -> None:
    proc = _varl("game", "psro", "--env", "chess")
    assert proc.returncode == 2
    assert "env: expected one of" in proc.stderr and "Traceback" not in proc.stderr


def test_game_psro_policy_gradient_oracle() -> None:
    proc = _varl(
        "game", "psro", "--env", "two_way", "--symmetric", "--oracle", "pg", "--iterations", "1"
    )
    assert proc.returncode == 0, proc.stderr
    assert "PSRO-rae on two_way" in proc.stdout
    matrix = _varl("game", "psro", "--env", "matrix:nowhere.json", "--oracle", "pg")
    assert matrix.returncode == 2 and "Traceback" not in matrix.stderr
