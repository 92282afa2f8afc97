"""OpenSpiel integration: rae_meta_strategy drives psro_v2 on kuhn_poker and a matrix game."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
from numpy.testing import assert_allclose

pytest.importorskip("pyspiel")
pytest.importorskip("cvxpy")  # open_spiel's psro_v2 imports its LP solver, which needs cvxpy

import pyspiel

from varl.games.openspiel import (
    joint_from_marginals,
    make_psro_v2,
    nash_conv_of,
    rae_meta_strategy,
)
from varl.games.rae import payoff_variance


class _FakeSolver:
    def __init__(self, meta: object) -> None:
        self.meta = meta

    def get_meta_game(self) -> object:
        return self.meta


def test_signature_and_joint_layout() -> None:
    meta = [np.array([[1.0, 1.0], [2.0, -10.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])]
    # τ = 1e-3 in payoff units (the spec's table); solve_rae's τ is relative to the scale 12.
    marginals, joint = rae_meta_strategy(
        _FakeSolver(meta), return_joint=True, gamma=0.5, tau=1e-3 / 12
    )
    assert_allclose(marginals[0], [0.70, 0.30], atol=0.02)
    assert_allclose(joint, np.outer(marginals[0], marginals[1]).ravel())
    assert_allclose(joint_from_marginals([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]]).sum(), 1.0)
    # A single matrix is read as a two-player zero-sum game (OpenSpiel's convention).
    zero_sum = rae_meta_strategy(_FakeSolver(np.array([[0.0, 1.0], [1.0, 0.0]])), gamma=0.0)
    assert_allclose(zero_sum[0], [0.5, 0.5], atol=0.02)


def test_psro_v2_kuhn_poker_with_rae_meta_solver() -> None:
    np.random.seed(0)  # OpenSpiel samples the meta-game entries with numpy's global generator
    random.seed(0)
    solver = make_psro_v2("kuhn_poker", meta_strategy_method="rae", gamma=0.0, sims_per_entry=50)
    start = nash_conv_of(solver)
    for _ in range(6):
        solver.iteration()
    sigma = solver.get_meta_strategies()
    assert [len(s) for s in sigma] == [len(p) for p in solver.get_policies()]
    assert all(abs(s.sum() - 1) < 1e-9 and s.min() >= 0 for s in sigma)
    assert start == pytest.approx(11 / 12)  # uniform play in Kuhn poker
    assert nash_conv_of(solver) < 0.4  # γ = 0: the loop heads to Nash (sampled entries)
    risky = make_psro_v2(
        "kuhn_poker", meta_strategy_method=functools.partial(rae_meta_strategy, gamma=0.5)
    )
    risky.iteration()
    assert len(risky.get_meta_strategies()[0]) == 2


def test_psro_v2_matrix_game_lowers_the_row_variance() -> None:
    a, b = [[1, 1], [2, -10]], [[1, 0], [0, 1]]
    np.random.seed(1)  # entries are sampled (the uniform initial policy randomises)
    random.seed(1)
    solver = make_psro_v2(pyspiel.create_matrix_game(a, b), gamma=0.5, sims_per_entry=20)
    for _ in range(4):
        solver.iteration()
    game = pyspiel.convert_to_turn_based(pyspiel.create_matrix_game(a, b))
    root = game.new_initial_state()
    profile = []
    for player, (policies, sigma) in enumerate(
        zip(solver.get_policies(), solver.get_meta_strategies(), strict=True)
    ):
        state = root if player == 0 else root.child(0)
        mixed = np.zeros(2)
        for pol, weight in zip(policies, sigma, strict=True):
            for action, prob in pol.action_probabilities(state).items():
                mixed[action] += weight * prob
        profile.append(mixed)
    # Nash: row (1/2, 1/2) with variance 2.75; the RAE (γ = 0.5) leans to Safe and cuts it.
    assert profile[0][0] > 0.55
    assert payoff_variance([np.asarray(a), np.asarray(b)], profile, 0) < 2.75
