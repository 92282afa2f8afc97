"""The light entry points import no heavy framework (DESIGN.md: frameworks live at the edge)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "torch",
    "trl",
    "transformers",
    "gymnasium",
    "diffusers",
    "datasets",
    "pyspiel",
    "open_spiel",
    "nashpy",
)


def _heavy_modules_after(statement: str) -> list[str]:
    """Runs ``statement`` in a fresh interpreter and returns the heavy modules it loaded."""
    code = (
        "import json, sys\n"
        f"{statement}\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(json.dumps(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "statement",
    [
        "import varl.rewards",
        "from varl.rewards import gui_grounding, looking, tag_format",
        "import varl.rewards.text",
        "import varl",
        "import varl.cli",
        "import varl.games",
        "import varl.games.rae",
        "import varl.games.psro, varl.games.nash, varl.games.markov",
        "from varl.games import solve_rae; solve_rae([[[1, 0]], [[0, 1]]], gamma=1)",
    ],
)
def test_light_imports_load_no_framework(statement: str) -> None:
    assert _heavy_modules_after(statement) == []


def test_the_check_detects_a_heavy_import() -> None:
    # Guards the test itself: a statement that does load a heavy module must be reported.
    pytest.importorskip("datasets")
    assert "datasets" in _heavy_modules_after("import datasets")


def test_detection_name_is_the_module() -> None:
    import types

    import varl.rewards
    import varl.rewards.detection
    from varl.rewards.text import detection

    assert isinstance(varl.rewards.detection, types.ModuleType)
    assert callable(detection) and detection.__name__ == "detection"


def test_ctrl_u_needs_torch_only() -> None:
    loaded = _heavy_modules_after("import varl.diffusion, varl.diffusion.ctrl_u")
    assert {m.split(".")[0] for m in loaded} == {"torch"}


def test_grpo_math_needs_torch_only() -> None:
    loaded = _heavy_modules_after(
        "import varl.grpo.advantages, varl.grpo.token_weights, varl.grpo.losses"
    )
    assert {m.split(".")[0] for m in loaded} == {"torch"}
