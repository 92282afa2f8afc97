"""Tests for varl.games.normal_form: construction, validation, JSON and Gambit .nfg files."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal

from varl.games.normal_form import NormalFormGame, as_game, parse_nfg

# Gambit's documentation example (Selten 1975, Figure 2), in both versions of the format.
SELTEN_PAYOFF = """NFG 1 R "Selten (IJGT, 75), Figure 2, normal form"
{ "Player 1" "Player 2" } { 3 2 }

1 1 0 2 0 2 1 1 0 3 2 0
"""
SELTEN_OUTCOME = """NFG 1 R "Selten (IJGT, 75), Figure 2, normal form"
{ "Player 1" "Player 2" } { { "1" "2" "3" } { "1" "2" } }
""

{
{ "" 1, 1 }
{ "" 0, 2 }
{ "" 0, 2 }
{ "" 1, 1 }
{ "" 0, 3 }
{ "" 2, 0 }
}
1 2 3 4 5 6
"""
SELTEN_A = [[1, 1], [0, 0], [0, 2]]  # profiles listed with player 1's strategy changing fastest
SELTEN_B = [[1, 1], [2, 3], [2, 0]]


def test_doctests() -> None:
    module = importlib.import_module("varl.games.normal_form")
    assert doctest.testmod(module, raise_on_error=True).failed == 0


def test_constructor_defaults_and_read_only_payoffs() -> None:
    game = NormalFormGame([[[1, 2, 3], [4, 5, 6]], np.zeros((2, 3))])
    assert game.shape == (2, 3) and game.num_players == 2
    assert game.players == ("Player 1", "Player 2")
    assert game.actions == (("1", "2"), ("1", "2", "3"))
    assert game.payoffs[0].dtype == np.float64
    with pytest.raises(ValueError):
        game.payoffs[0][0, 0] = 9.0


def test_from_bimatrix_zero_sum_and_stacked_array() -> None:
    game = NormalFormGame.from_bimatrix([[1, -1], [-1, 1]])
    assert_array_equal(game.payoffs[1], [[-1, 1], [1, -1]])
    stacked = NormalFormGame(np.stack([game.payoffs[0], game.payoffs[1]]))
    assert stacked == game
    assert as_game([game.payoffs[0], game.payoffs[1]]) == game
    assert as_game(game) is game


@pytest.mark.parametrize(
    ("payoffs", "error", "match"),
    [
        ([[[1, 2], [3]], [[1, 2], [3, 4]]], ValueError, r"payoffs\[0\]: expected a rectangular"),
        ([[[1, np.nan], [3, 4]], [[1, 2], [3, 4]]], ValueError, r"payoffs\[0\]: contains NaN"),
        ([[[1, 2], [3, 4]], [[1, np.inf], [3, 4]]], ValueError, r"payoffs\[1\]: contains NaN"),
        ([[[1, 2], [3, 4]], [[1, 2, 3], [3, 4, 5]]], ValueError, r"payoffs\[1\]: shape \(2, 3\)"),
        ([[1, 2], [3, 4]], ValueError, r"payoffs\[0\]: expected one axis per player"),
        ([[[1, 2]]], ValueError, "payoffs: expected one tensor per player for >= 2"),
        ([[["a", "b"]], [["c", "d"]]], TypeError, r"payoffs\[0\]: expected real numbers"),
        ([np.zeros((0, 2)), np.zeros((0, 2))], ValueError, ">= 1 action"),
        ("payoffs", TypeError, "payoffs: expected a sequence"),
    ],
)
def test_bad_payoffs_raise_naming_the_tensor(payoffs: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        NormalFormGame(payoffs)  # type: ignore[arg-type]


def test_bad_names_raise() -> None:
    with pytest.raises(ValueError, match="players: expected 2 names"):
        NormalFormGame(np.zeros((2, 2, 2)), players=["only one"])
    with pytest.raises(ValueError, match=r"actions\[1\]: expected 2 names"):
        NormalFormGame(np.zeros((2, 2, 2)), actions=[["a", "b"], ["c"]])


def test_json_round_trip(tmp_path: Path) -> None:
    game = NormalFormGame.from_bimatrix(
        [[4, 0], [3, 3]], [[4, 3], [0, 3]], players=["R", "C"], title="stag hunt"
    )
    path = tmp_path / "g.json"
    path.write_text(json.dumps(game.to_dict()))
    assert NormalFormGame.load(path) == game
    minimal = tmp_path / "min.json"
    minimal.write_text('{"players": ["a", "b"], "payoffs": [[[1, 2]], [[3, 4]]]}')
    loaded = NormalFormGame.from_json(minimal)
    assert loaded.shape == (1, 2) and loaded.players == ("a", "b")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"players": ["a", "b"]}', "missing key 'payoffs'"),
        ('{"players": ["a", "b"], "payoffs": [[[1]]]}', "one tensor per player"),
        ('{"players": ["a", "b"], "payoffs": [[[1]], [[1]]], "foo": 1}', r"unknown key\(s\)"),
        ('{"players": ["a", "b"], "payoffs": [[[1, 2]], [[1]]]}', r"payoffs\[1\]"),
        ('{"players": ["a", "b"],\n "payoffs": [[[1]], [[1]],]}', "line 2: invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_json_names_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        NormalFormGame.from_json(path)
    assert str(path) in str(info.value)


def test_load_rejects_unknown_suffix() -> None:
    with pytest.raises(ValueError, match=r"path: expected a \.json or \.nfg file"):
        NormalFormGame.load("game.txt")


@pytest.mark.parametrize("text", [SELTEN_PAYOFF, SELTEN_OUTCOME])
def test_nfg_gambit_example_both_versions(text: str) -> None:
    game = parse_nfg(text)
    assert_array_equal(game.payoffs[0], SELTEN_A)
    assert_array_equal(game.payoffs[1], SELTEN_B)
    assert game.players == ("Player 1", "Player 2")
    assert game.title == "Selten (IJGT, 75), Figure 2, normal form"


def test_nfg_three_players_order_rationals_and_null_outcome() -> None:
    text = (
        'NFG 1 D "three" { "x" "y" "z" } { { "a" "b" } 1 { "c" "d" } } "a comment"\n'
        '{ { "o1" 1/2 -3 1e1 } { "o\\"2" .5 2.5 -0 } }\n'
        "1 0 2 1\n"
    )
    game = parse_nfg(text)
    assert game.shape == (2, 1, 2)
    assert game.actions == (("a", "b"), ("1",), ("c", "d"))
    # Profile order (player 1 fastest): (a,1,c)=o1, (b,1,c)=null, (a,1,d)=o2, (b,1,d)=o1.
    assert_array_equal(game.payoffs[0][:, 0, :], [[0.5, 0.5], [0.0, 0.5]])
    assert_array_equal(game.payoffs[1][:, 0, :], [[-3, 2.5], [0, -3]])
    assert_array_equal(game.payoffs[2][:, 0, :], [[10, 0], [0, 10]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("GAME 1 R", "line 1: expected 'NFG'"),
        ('NFG 2 R "t"', "line 1: expected format version 1"),
        (
            'NFG 1 R "t" { "a" "b" }\n{ 2 2 }\n\n1 1 1 1\n1 1 x1 1\n',
            "line 5: expected payoff 1 of profile 4 of 4, got 'x1'",
        ),
        ('NFG 1 R "t" { "a" "b" }\n{ 2 2 }\n\n1 1 1 1\n1 1 1 1 1\n', r"line 5: expected end"),
        ('NFG 1 R "t" { "a" "b" }\n{ 2 2 }\n1 1 1 1\n1 1 1\n', "line 4: expected payoff 2 of"),
        ('NFG 1 R "t" { "a" "b" }\n{ 2 2 }\n1 1 1 1 1 1 1.2.3 1', "line 3: malformed token"),
        ('NFG 1 R "t" { "a" "b" }\n{ 2 2.5 }', "line 2: expected the strategy count of"),
        ('NFG 1 R "t" { "a" "b" } { 1 1 }\n{ { "" 1 2 } }\n3\n', "line 3: outcome 3 does not"),
        ('NFG 1 R "t" { "a" "b" } { 1 1 }\n{ { "" 1 2 3 } }\n1\n', "line 2: expected '}' after"),
        ('NFG 1 R "t"\n "a" "b" }', "line 2: expected '{' opening the player list, got 'a'"),
        ('NFG 1 R "t" { "a" "b" } { 1 1 }\n"open', "line 2: unterminated string"),
        ('NFG 1 R "t" { "a" } { 1 }\n1\n', "line 1: expected >= 2 players"),
    ],
)
def test_malformed_nfg_reports_the_line(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_nfg(text)


def test_nfg_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.nfg"
    path.write_text('NFG 1 R "t" { "a" "b" } { 2 2 }\n1 2 3\n')
    with pytest.raises(
        ValueError,
        match=rf"{path.name} line 2: expected payoff 2 of profile 2 of 4, got end of file",
    ):
        NormalFormGame.load(path)


payoff_tensors = st.integers(2, 3).flatmap(
    lambda n: st.tuples(*[st.integers(1, 3)] * n).flatmap(
        lambda shape: st.lists(
            arrays(np.float64, shape, elements=st.floats(-1e6, 1e6, allow_nan=False, width=32)),
            min_size=len(shape),
            max_size=len(shape),
        )
    )
)


@settings(max_examples=40, deadline=None)
@given(payoff_tensors)
def test_nfg_and_json_round_trips_are_exact(payoffs: list[np.ndarray]) -> None:
    game = NormalFormGame(payoffs, title='quote " and \\ backslash')
    assert parse_nfg(game.to_nfg()) == game
    assert NormalFormGame.from_dict(json.loads(json.dumps(game.to_dict()))) == game
