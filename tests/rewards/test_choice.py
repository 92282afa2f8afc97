"""Tests for varl.rewards.choice: TW-GRPO's soft multi-choice reward and the binary baseline."""

from __future__ import annotations

import doctest
import importlib
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from varl.rewards.choice import choice_reward, gold_option_set, option_set

# Spec tw_grpo_temporal_r1 §6.1 T3: pred, gold, soft, binary.
T3 = [
    ("A", "A,B,D", 1 / 3, 0.0),
    ("A,B", "A,B,D", 2 / 3, 0.0),
    ("A,B,D", "A,B,D", 1.0, 1.0),
    ("B, A", "A,B", 1.0, 1.0),
    ("A,C", "A,B,D", 0.0, 0.0),
    ("A,A", "A,B", 0.5, 0.0),
    ("", "A", 0.0, 0.0),
]


@pytest.mark.parametrize(("pred", "gold", "soft", "binary"), T3)
def test_spec_table(pred: str, gold: str, soft: float, binary: float) -> None:
    assert choice_reward(pred, gold) == pytest.approx(soft, abs=1e-12)
    assert choice_reward(pred, gold, mode="binary") == binary


def test_iterables_of_labels() -> None:
    assert choice_reward({"A", "C"}, {"A", "B", "C", "D"}) == 0.5  # subset
    assert choice_reward(["A", "B", "C"], ("A", "B")) == 0.0  # superset: a wrong option
    assert choice_reward([], ["A"]) == 0.0  # empty prediction
    assert choice_reward(["A", "A"], ["A", "B"]) == 0.5  # duplicates collapse
    assert choice_reward(["C", "A"], ["A", "C"], mode="binary") == 1.0  # order is irrelevant
    assert choice_reward(iter(["B"]), (x for x in "AB")) == 0.5  # one-shot iterables


def test_normalisation() -> None:
    assert choice_reward([" a ", "b\n"], ["A", "B"], mode="binary") == 1.0
    assert choice_reward(" b ,  a", "A,B") == 1.0
    assert choice_reward("A,", "A,B") == 0.5  # an empty label is dropped, not a wrong option
    assert choice_reward([" ", ""], ["A"]) == 0.0


def test_returns_python_float() -> None:
    assert type(choice_reward("A", "A,B")) is float
    assert type(choice_reward("A", "A,B", mode="binary")) is float


@pytest.mark.parametrize("gold", ["", " , ", [], [" "]])
def test_empty_gold_raises(gold: str | list[str]) -> None:
    with pytest.raises(ValueError, match="gold"):
        choice_reward("A", gold)


def test_unknown_mode_lists_modes() -> None:
    with pytest.raises(ValueError, match="'soft', 'binary'"):
        choice_reward("A", "A", mode="hard")  # type: ignore[arg-type]


def test_non_string_labels_raise() -> None:
    with pytest.raises(TypeError, match="pred"):
        choice_reward([1, 2], "A")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="gold"):
        choice_reward("A", 5)  # type: ignore[arg-type]


def test_doctests() -> None:
    assert (
        doctest.testmod(importlib.import_module("varl.rewards.choice"), raise_on_error=True).failed
        == 0
    )


labels = st.sets(st.sampled_from("ABCDEF"))


@given(labels, labels.filter(bool))
def test_soft_properties(pred: set[str], gold: set[str]) -> None:
    soft = choice_reward(pred, gold)
    binary = choice_reward(pred, gold, mode="binary")
    assert 0.0 <= soft <= 1.0
    assert binary in (0.0, 1.0)
    assert binary <= soft  # the soft reward never gives less than the binary one
    assert (soft == 1.0) == (pred == gold) == (binary == 1.0)
    if pred and pred <= gold:  # equals set IoU when there is no false positive
        assert soft == pytest.approx(len(pred & gold) / len(pred | gold))
    else:
        assert soft == 0.0


@given(labels, labels.filter(bool))
def test_string_and_set_forms_agree(pred: set[str], gold: set[str]) -> None:
    def joined(xs: Iterable[str]) -> str:
        return ", ".join(sorted(xs))

    assert choice_reward(joined(pred), joined(gold)) == choice_reward(pred, gold)


def test_whitespace_inside_a_label_is_removed_as_in_the_reference() -> None:
    # TW-GRPO removes all spaces before splitting, so "A B" is the label "AB" (as in parse_choices).
    assert choice_reward("A B", "AB") == 1.0
    assert choice_reward(["a b"], ["AB"], mode="binary") == 1.0
    assert option_set("a b, c\td") == frozenset({"AB", "CD"})
    assert option_set([" a ", "b\n", ""]) == frozenset({"A", "B"})


@pytest.mark.parametrize(
    ("gold", "label"),
    [("The answer is A", "The answer is A"), ("A, B C", "B C"), (["A", "x:"], "x:"), ([" "], "")],
)
def test_gold_labels_must_be_single_tokens(gold: str | list[str], label: str) -> None:
    message = (
        f"gold: expected option labels that are single tokens of letters/digits, got {label!r}"
    )
    with pytest.raises(ValueError) as info:
        choice_reward("A", gold)
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        gold_option_set(gold)
    assert str(info.value) == message


def test_gold_option_set_values() -> None:
    assert gold_option_set(" a , B,") == frozenset({"A", "B"})
    assert gold_option_set(("10", "c")) == frozenset({"10", "C"})
    with pytest.raises(ValueError) as info:
        gold_option_set(" , ", "solution")
    assert str(info.value) == "solution: expected at least one non-empty option label"
