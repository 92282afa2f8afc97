"""alignprop_memory: saved-for-backward bytes with and without checkpointing (spec §4.2, §6.4)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from varl.experiments import alignprop_memory as mem

torch.set_num_threads(1)

SMALL = dataclasses.replace(mem.QUICK, num_steps=4, ks=(1, 2, 4), batch_size=1)


def test_counter_counts_distinct_storages_and_skips_parameters() -> None:
    x = torch.ones(3, 4, requires_grad=True)
    w = torch.nn.Parameter(torch.ones(4, 5))
    counter = mem.SavedBytesCounter([w])
    with counter.hooks():
        y = (x * x).sum() + (x @ w).sum()  # x saved three times, w once (excluded)
    assert counter.bytes == 3 * 4 * 4
    y.backward()  # the hooks pass tensors through unchanged
    assert x.grad is not None and float(x.grad[0, 0]) == 2.0 + 5.0


def test_checkpointing_saves_at_least_5x_and_bytes_grow_linearly_in_k() -> None:
    model = mem.probe_model(SMALL)
    off = [
        mem.saved_bytes(SMALL, num_steps=4, k=k, checkpointing=False, model=model)
        for k in (0, 1, 2, 4)
    ]
    on = [
        mem.saved_bytes(SMALL, num_steps=4, k=k, checkpointing=True, model=model)
        for k in (0, 1, 2, 4)
    ]
    print(f"bytes per K (0, 1, 2, 4) without checkpointing {off}, with {on}")
    assert off[0] == on[0] == 0  # K = 0: nothing requires grad
    assert on[3] <= 0.2 * off[3]
    for values in (off, on):
        assert values[1] < values[2] < values[3]
        assert values[2] - values[1] == pytest.approx((values[3] - values[2]) / 2, rel=0.05)
    # flat in the T - K detached steps: K = 2 of 8 costs what K = 2 of 4 does
    assert mem.saved_bytes(SMALL, num_steps=8, k=2, checkpointing=False, model=model) == off[2]


def test_bad_k_raises() -> None:
    with pytest.raises(ValueError, match="k"):
        mem.saved_bytes(SMALL, num_steps=4, k=5, checkpointing=False)


def test_run_reports_the_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mem, "QUICK", SMALL)
    result = mem.run()
    assert result.name == "alignprop_memory"
    assert result.verdict
    assert len(result.table) == 1 + len(SMALL.ks)
    assert result.metrics["ratio_no_ckpt_over_ckpt_at_K_eq_T"] >= 5
    assert result.metrics["K1_over_single_step"] == pytest.approx(1.0, abs=0.1)
