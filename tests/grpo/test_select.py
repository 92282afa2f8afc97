"""varl grpo select: rollouts per item, selection by std, resumable output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from varl.grpo.select import select_with_model
from varl.grpo.tiny import build_char_tokenizer, build_tiny_model, multi_answer_task


def _scripted(completions: list[str], **kwargs: object) -> list[float]:
    """Scores a completion 1 when its length is even: rollouts disagree almost surely."""
    return [float(len(c) % 2 == 0) for c in completions]


def test_select_with_model_writes_kept_items_and_resumes(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=0)
    items = multi_answer_task()[:6]
    out = tmp_path / "sel.jsonl"
    summary = select_with_model(
        items, model, tok, [_scripted], out, rollouts=4, max_new_tokens=12, progress=False
    )
    log = (tmp_path / "sel.jsonl.rollouts.jsonl").read_text().splitlines()
    assert len(log) == 6
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == summary.kept
    assert summary.kept + summary.all_correct + summary.all_wrong + summary.low_variance == 6
    for row in rows:
        assert {"prompt", "solution", "reward_mean", "reward_std"} <= set(row)
        assert row["reward_std"] > 0
    # A second run scores nothing new: every item is in the rollout log already.
    again = select_with_model(items, model, tok, [_scripted], out, rollouts=4, progress=False)
    assert again == summary
    assert len((tmp_path / "sel.jsonl.rollouts.jsonl").read_text().splitlines()) == 6
    first = [json.loads(line)["rewards"] for line in log]
    assert np.array(first).shape == (6, 4)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rollouts: expected an int >= 2"):
        select_with_model([{"prompt": "x"}], None, None, [], tmp_path / "o.jsonl", rollouts=1)
    with pytest.raises(ValueError, match="dataset row 0: missing the 'prompt' column"):
        select_with_model([{"q": "x"}], None, None, [], tmp_path / "o.jsonl")


def test_cli_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "selected.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "varl", "grpo", "select", "--rollouts", "2",
         "--max_new_tokens", "40", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kept " in proc.stdout and out.is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "varl", "grpo", "select", "--rollouts", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "rollouts: expected an int >= 2" in bad.stderr
