"""Smoke tests of the ``varl`` console script, run as subprocesses the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
