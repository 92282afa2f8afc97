"""Question-answer inversion: the spec's T8 example, its invariants and the skip report."""

from __future__ import annotations

import doctest
import random
from collections.abc import Sequence
from typing import Any

import pytest

from varl.grpo import augment as augment_module
from varl.grpo.augment import invert_dataset, invert_question, negate_question

OPTIONS = ["Lied on", "Took", "Put down", "Washed"]


class ScriptedRng:
    """Returns fixed draws so the T8 example is reproduced exactly."""

    def __init__(self, k: int, sample: list[int], order: list[int]) -> None:
        self.k, self._sample, self._order = k, sample, order

    def randint(self, a: int, b: int) -> int:
        assert (a, b) == (1, 3)
        return self.k

    def sample(self, population: Sequence[int], k: int) -> list[int]:
        assert k == self.k and set(self._sample) <= set(population)
        return list(self._sample)

    def shuffle(self, items: list[Any]) -> None:
        items[:] = [items[i] for i in self._order]


def test_doctests() -> None:
    assert doctest.testmod(augment_module).failed == 0


def test_spec_t8_example() -> None:
    # kept wrong options [Lied on, Washed] (indices 0, 3) plus the correct "Put down" (index 2),
    # shuffled to [Put down, Lied on, Washed]
    rng = ScriptedRng(k=2, sample=[0, 3], order=[2, 0, 1])
    item = invert_question("What did the person do with the clothes?", OPTIONS, 2, rng=rng)  # type: ignore[arg-type]
    assert item is not None
    assert item.question == "what didn't the person do with the clothes?"
    assert item.options == ("Put down", "Lied on", "Washed")
    assert item.gold == ("B", "C")
    assert item.prompt().splitlines()[1] == "A Put down"


@pytest.mark.parametrize(
    ("question", "rules", "expected"),
    [
        ("Did the man open the door?", "star", "didn't the man open the door?"),
        ("What happened after the boy sat?", "star", "what didn't happen after the boy sat?"),
        ("What will the person do next?", "star", "what won't the person do next?"),
        ("What was thrown?", "star", "what wasn't thrown?"),
        ("Why did the dog bark?", "nextgqa", "why didn't the dog bark?"),
        ("How are they dancing?", "nextgqa", "how aren't they dancing?"),
        ("Which object is red?", "star", None),
        ("Did the man open the door?", "nextgqa", None),
    ],
)
def test_negation_rules(question: str, rules: str, expected: str | None) -> None:
    assert negate_question(question, rules=rules) == expected  # type: ignore[arg-type]


def test_invariants_over_many_draws() -> None:
    rng = random.Random(0)
    counts = []
    for _ in range(2000):
        item = invert_question("What did he take?", OPTIONS, 1, rng=rng)
        assert item is not None
        assert "Took" in item.options  # the originally correct option is always kept ...
        took = "ABCD"[item.options.index("Took")]
        assert took not in item.gold  # ... and never gold
        assert 1 <= len(item.gold) <= 3 and len(item.options) == len(item.gold) + 1
        counts.append(len(item.gold))
    assert set(counts) == {1, 2, 3}


def test_dataset_rate_and_skip_report() -> None:
    items = [{"question": "What did he take?", "options": OPTIONS, "answer": 1}] * 10_000
    out, report = invert_dataset(items, rng=random.Random(1))
    assert report.inverted + report.kept == 10_000 and report.skipped_negation == 0
    assert abs(report.inverted / 10_000 - 0.5) < 0.02
    kept = next(e for e in out if not e["inverted"])
    assert kept["solution"] == "B"
    bad = [{"question": "Which is red?", "options": OPTIONS, "answer": 0}] * 100
    out, report = invert_dataset(bad, rng=random.Random(2))
    assert report.inverted == 0 and report.skipped_negation > 30
    assert all(e["solution"] == "A" for e in out)
    again, _ = invert_dataset(items[:50], rng=random.Random(1))
    assert again == invert_dataset(items[:50], rng=random.Random(1))[0]  # seeded: deterministic


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="options: expected 2 to 26"):
        invert_question("What did he take?", ["only"], 0, rng=random.Random(0))
    with pytest.raises(ValueError, match="answer_index"):
        invert_question("What did he take?", OPTIONS, 4, rng=random.Random(0))
    with pytest.raises(ValueError, match="probability"):
        invert_dataset([], rng=random.Random(0), probability=1.5)
    with pytest.raises(ValueError, match=r"items\[0\]: missing fields \['answer'\]"):
        invert_dataset([{"question": "q", "options": OPTIONS}], rng=random.Random(0))
    with pytest.raises(ValueError, match="rules"):
        negate_question("What did he take?", rules="other")  # type: ignore[arg-type]
