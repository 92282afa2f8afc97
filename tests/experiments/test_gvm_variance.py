"""gvm_variance: GVM's estimator error against uniform allocation, on a small simulation."""

from __future__ import annotations

import dataclasses

import numpy as np

from varl.experiments import gvm_variance

CFG = dataclasses.replace(gvm_variance.QUICK, draws=500, budgets=(8,), seeds=1)


def test_oracle_and_estimated_gvm_beat_uniform_at_the_paper_budget() -> None:
    out = gvm_variance.run_seed(CFG, seed=0)
    assert out["GVM (oracle)"][0] < out["uniform"][0]
    assert out["GVM (estimated)"][0] < out["uniform"][0]


def test_mse_matches_closed_form_when_every_sample_is_accepted() -> None:
    # p = 1: k = n, and E||mean error||^2 = (1/m^2) sum_i G_i^2 / n_i exactly.
    rng = np.random.default_rng(0)
    g = rng.standard_normal((4, 16))
    alloc = np.array([1, 2, 4, 8])
    mse = gvm_variance._mse(alloc, np.ones(4), g, draws=20000, rng=rng)
    expected = np.sum(np.linalg.norm(g, axis=1) ** 2 / alloc) / 16
    assert abs(mse - expected) / expected < 0.03


def test_run_reports_every_budget() -> None:
    result = gvm_variance.run(seeds=1)
    assert result.name == "gvm_variance"
    assert len(result.table) == 1 + len(gvm_variance.QUICK.budgets)
    assert "gvm_estimated_over_uniform_at_8" in result.metrics
