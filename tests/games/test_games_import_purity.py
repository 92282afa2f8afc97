"""varl.games loads numpy/scipy only: no torch, OpenSpiel or nashpy until a caller asks."""

from __future__ import annotations

import doctest
import importlib
import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "pyspiel", "open_spiel", "nashpy", "trl", "transformers", "gymnasium")


def _heavy_after(statement: str) -> list[str]:
    code = (
        "import json, sys\n"
        f"{statement}\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "statement",
    [
        "import varl.games",
        "import varl.games.rae",
        "import varl.games.psro, varl.games.nash, varl.games.markov",
        "from varl.games import solve_rae; solve_rae([[[1, 0]], [[0, 1]]], gamma=1)",
    ],
)
def test_games_import_no_framework(statement: str) -> None:
    assert _heavy_after(statement) == []


def test_package_doctest() -> None:
    assert doctest.testmod(importlib.import_module("varl.games"), raise_on_error=True).failed == 0
