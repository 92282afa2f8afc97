"""Tests for varl.games.nash: nashpy-backed equilibria, risk-neutral SFP, NashConv."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from varl.games.nash import exploitability, nash_conv, nash_equilibria, solve_nash
from varl.games.normal_form import NormalFormGame
from varl.games.rae import rae_gap, solve_rae

pytest.importorskip("nashpy")

T2 = NormalFormGame.from_bimatrix([[1, 1], [2, -10]], [[1, 0], [0, 1]])
STAG = NormalFormGame.from_bimatrix([[4, 0], [3, 3]], [[4, 3], [0, 3]])
RPS = NormalFormGame.from_bimatrix([[0, -1, 1], [1, 0, -1], [-1, 1, 0]])


def test_doctests() -> None:
    assert (
        doctest.testmod(importlib.import_module("varl.games.nash"), raise_on_error=True).failed == 0
    )


def test_t2_unique_equilibrium_every_method() -> None:
    for method in ("lemke_howson", "support_enumeration", "vertex_enumeration"):
        x, y = solve_nash(T2, method=method)
        assert_allclose(x, [0.5, 0.5], atol=1e-12)
        assert_allclose(y, [11 / 12, 1 / 12], atol=1e-12)
    x, y = solve_nash(T2, method="sfp", iterations=2000)
    assert np.abs(x - 0.5).sum() < 0.05 and np.abs(y - [11 / 12, 1 / 12]).sum() < 0.05


def test_stag_hunt_has_three_equilibria() -> None:
    eqs = nash_equilibria(STAG, method="support_enumeration")
    got = sorted(tuple(np.round(x, 12)) for x, _ in eqs)
    assert got == [(0.0, 1.0), (0.75, 0.25), (1.0, 0.0)]
    assert len(nash_equilibria(STAG, method="vertex_enumeration")) == 3
    # Lemke–Howson from each label finds a pure one; duplicates are merged.
    assert len(nash_equilibria(STAG, method="lemke_howson_enumeration")) == 2


def test_rps_uniform_and_zero_exploitability() -> None:
    x, y = solve_nash(RPS)
    assert_allclose(x, [1 / 3] * 3, atol=1e-12)
    assert exploitability(RPS, (x, y)) == pytest.approx(0.0, abs=1e-12)
    # Pure rock is beaten by paper: each player can gain 1 -> NashConv 2, exploitability 1.
    rock = ([1, 0, 0], [1, 0, 0])
    assert nash_conv(RPS, rock) == pytest.approx(2.0)
    assert exploitability(RPS, rock) == pytest.approx(1.0)


def test_single_action_games_skip_nashpy() -> None:
    game = NormalFormGame.from_bimatrix([[1, 2, 2]], [[0, 5, 5]])
    eqs = nash_equilibria(game)
    assert [tuple(y) for _, y in eqs] == [(0, 1, 0), (0, 0, 1)]
    x, y = solve_nash(game)
    assert_allclose(x, [1])
    assert_allclose(y, [0, 1, 0])
    x, y = solve_nash(NormalFormGame.from_bimatrix([[1], [3]], [[0], [0]]))
    assert_allclose(x, [0, 1])


def test_sfp_three_players() -> None:
    a = np.indices((2, 2, 2)).sum(axis=0)
    common = np.where(a == 0, 2.0, np.where(a == 3, 1.0, 0.0))
    profile = solve_nash([common] * 3, method="sfp", iterations=500)
    assert all(p[0] > 0.98 for p in profile)
    assert nash_conv([common] * 3, profile) < 0.05


games_2p = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1)).map(
    lambda t: np.random.default_rng(t[2]).normal(size=(2, t[0], t[1]))  # generic: non-degenerate
)


@settings(max_examples=40, deadline=None)
@given(games_2p)
def test_enumerated_equilibria_have_zero_nashconv(payoffs: np.ndarray) -> None:
    game = NormalFormGame(payoffs)
    eqs = nash_equilibria(game)
    assert len(eqs) % 2 == 1  # a generic game has an odd number of equilibria
    for profile in eqs + nash_equilibria(game, method="support_enumeration"):
        assert nash_conv(game, profile) <= 1e-9
        assert rae_gap(game, profile, gamma=0.0) == pytest.approx(nash_conv(game, profile))
    lh = solve_nash(game)
    assert any(all(np.allclose(a, b) for a, b in zip(lh, q, strict=True)) for q in eqs)


@settings(max_examples=60, deadline=None)
@given(games_2p, st.integers(0, 2**32 - 1))
def test_nashconv_is_the_risk_neutral_rae_gap(payoffs: np.ndarray, seed: int) -> None:
    game = NormalFormGame(payoffs)
    rng = np.random.default_rng(seed)
    profile = [rng.dirichlet(np.ones(n)) for n in game.shape]
    assert nash_conv(game, profile) >= 0.0
    assert nash_conv(game, profile) == pytest.approx(rae_gap(game, profile, gamma=0.0), abs=1e-9)
    assert exploitability(game, profile) == pytest.approx(nash_conv(game, profile) / 2)


def test_sfp_is_solve_rae_with_gamma_zero() -> None:
    a = solve_nash(T2, method="sfp", iterations=300, tol=0.0)
    b = solve_rae(T2, gamma=0.0, iterations=300, tol=0.0).profile
    for x, y in zip(a, b, strict=True):
        assert_allclose(x, y, rtol=0, atol=0)


def test_lemke_howson_off_the_equilibrium_set_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import nashpy

    monkeypatch.setattr(
        nashpy.Game, "lemke_howson", lambda self, initial_dropped_label: ([1, 0], [1, 0])
    )
    with pytest.raises(RuntimeError, match="Lemke-Howson left the equilibrium set"):
        solve_nash(T2)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: solve_nash(T2, method="lp"), "method: expected one of"),
        (lambda: nash_equilibria(T2, method="sfp"), "method: expected one of"),
        (lambda: solve_nash([np.zeros((2, 2, 2))] * 3), "needs a 2-player game"),
        (lambda: nash_equilibria([np.zeros((2, 2, 2))] * 3), "needs a 2-player game"),
        (lambda: solve_nash(T2, initial_dropped_label=4), "initial_dropped_label"),
        (lambda: nash_conv(T2, ([1, 0], [0.2, 0.2])), r"profile\[1\]"),
    ],
)
def test_bad_input(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]
