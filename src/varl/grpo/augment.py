"""TW-GRPO's question-answer inversion (QAI): single-choice items become multi-choice ones.

Paper: "Reinforcing Video Reasoning with Focused Thinking" (TW-GRPO), arXiv 2505.24718; the rules
follow the reference conversion scripts (spec tw_grpo_temporal_r1.md §1.5). An item with options
o_1..o_n and correct option c becomes "which option does NOT ...?": the question is negated, k ~
U{1..n-1} wrong options are kept beside c, the kept options are shuffled and relabelled A, B, ...,
and the new gold set is every kept option except c. Drawing k at random keeps the model from
learning "always pick n-1 options". Unlike the reference, the randomness comes from an injected
``rng`` and a question no negation rule matches is reported (and skipped) instead of being
inverted with its question left positive.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Rules = Literal["star", "nextgqa"]

# STAR: the question's opening words (checked first), then a key of the first two words, then
# the second word.
_STAR_OPENINGS = (
    ("what happened", "what didn't happen"),
    ("what will", "what won't"),
    ("did", "didn't"),
    ("was", "wasn't"),
    ("able", "unable"),
    ("would", "wouldn't"),
)
_STAR_WORDS = {"did": "didn't", "was": "wasn't", "able": "unable", "would": "wouldn't"}
_STAR_PAIRS = {"what will": "what won't", "what happened": "what didn't happen"}
# NExT-GQA: only the second word is checked.
_NEXTGQA_WORDS = {
    "did": "didn't",
    "does": "doesn't",
    "do": "don't",
    "is": "isn't",
    "are": "aren't",
    "was": "wasn't",
    "were": "weren't",
}


def negate_question(question: str, *, rules: Rules = "star") -> str | None:
    """The lower-cased question with its auxiliary negated, or None when no rule applies.

    Example:
        >>> negate_question("What did the person do with the clothes?")
        "what didn't the person do with the clothes?"
        >>> negate_question("Which object is red?") is None
        True
    """
    if rules not in ("star", "nextgqa"):
        raise ValueError(f"rules: expected 'star' or 'nextgqa', got {rules!r}")
    q = question.strip().lower()
    words = q.split(" ")
    if rules == "star":
        for opening, negated in _STAR_OPENINGS:
            if q == opening or q.startswith(opening + " "):
                return negated + q[len(opening) :]
        pair = " ".join(words[:2])
        if pair in _STAR_PAIRS:
            return " ".join([_STAR_PAIRS[pair], *words[2:]])
        table = _STAR_WORDS
    else:
        table = _NEXTGQA_WORDS
    if len(words) >= 2 and words[1] in table:
        return " ".join([words[0], table[words[1]], *words[2:]])
    return None


@dataclass(frozen=True)
class InvertedItem:
    """A multi-choice item made by :func:`invert_question`.

    Attributes:
        question: The negated question.
        options: The kept options in their new order (labelled A, B, ... in that order).
        gold: The labels of the right answers (every option but the originally correct one).
    """

    question: str
    options: tuple[str, ...]
    gold: tuple[str, ...]

    def prompt(self) -> str:
        """The question followed by one ``"A <option>"`` line per option."""
        lines = [f"{string.ascii_uppercase[i]} {text}" for i, text in enumerate(self.options)]
        return "\n".join([self.question, *lines])


def invert_question(
    question: str,
    options: Sequence[str],
    answer_index: int,
    *,
    rng: random.Random,
    rules: Rules = "star",
) -> InvertedItem | None:
    """Inverts one single-choice item, or returns None when its question cannot be negated.

    Args:
        question: The question.
        options: The n >= 2 options.
        answer_index: Index of the correct option.
        rng: Source of randomness (``randint``, ``sample``, ``shuffle``), for reproducibility.
        rules: ``"star"`` or ``"nextgqa"`` negation rules.

    Returns:
        The :class:`InvertedItem`, or None if no negation rule applies.

    Raises:
        ValueError: If there are fewer than 2 options (or more than 26) or the index is out of
            range.
    """
    n = len(options)
    if not 2 <= n <= 26:
        raise ValueError(f"options: expected 2 to 26 options, got {n}")
    if isinstance(answer_index, bool) or not 0 <= answer_index < n:
        raise ValueError(f"answer_index: expected an int in [0, {n - 1}], got {answer_index!r}")
    negated = negate_question(question, rules=rules)
    if negated is None:
        return None
    wrong = [i for i in range(n) if i != answer_index]
    k = rng.randint(1, n - 1)
    kept = [*rng.sample(wrong, k), answer_index]  # option indices
    rng.shuffle(kept)
    gold = tuple(string.ascii_uppercase[pos] for pos, i in enumerate(kept) if i != answer_index)
    return InvertedItem(question=negated, options=tuple(options[i] for i in kept), gold=gold)


@dataclass(frozen=True)
class InversionReport:
    """Counts from :func:`invert_dataset`.

    Attributes:
        inverted: Items turned into multi-choice items.
        kept: Items left single-choice (not drawn for inversion).
        skipped_negation: Items drawn for inversion whose question no rule could negate; they are
            kept single-choice.
    """

    inverted: int
    kept: int
    skipped_negation: int


def invert_dataset(
    items: Sequence[dict[str, Any]],
    *,
    rng: random.Random,
    probability: float = 0.5,
    rules: Rules = "star",
) -> tuple[list[dict[str, Any]], InversionReport]:
    """Applies QAI to each item with probability ``probability`` (0.5 in TW-GRPO).

    Args:
        items: Dicts with ``question`` (str), ``options`` (list of str) and ``answer`` (index).
        rng: Source of randomness.
        probability: Chance that an item is inverted.
        rules: Negation rules.

    Returns:
        The items as ``{"prompt", "solution", "inverted"}`` dicts (``solution`` like ``"B,C"``),
        and the :class:`InversionReport`.

    Raises:
        ValueError: If ``probability`` is outside [0, 1] or an item lacks a field.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability: expected a number in [0, 1], got {probability!r}")
    out: list[dict[str, Any]] = []
    inverted = skipped = 0
    for row, item in enumerate(items):
        missing = {"question", "options", "answer"} - set(item)
        if missing:
            raise ValueError(f"items[{row}]: missing fields {sorted(missing)}")
        result = None
        if rng.random() < probability:
            result = invert_question(
                item["question"], item["options"], item["answer"], rng=rng, rules=rules
            )
            skipped += result is None
        was_inverted = result is not None
        if result is None:
            result = InvertedItem(
                question=item["question"],
                options=tuple(item["options"]),
                gold=(string.ascii_uppercase[item["answer"]],),
            )
        inverted += was_inverted
        out.append(
            {"prompt": result.prompt(), "solution": ",".join(result.gold), "inverted": was_inverted}
        )
    report = InversionReport(
        inverted=inverted, kept=len(items) - inverted, skipped_negation=skipped
    )
    return out, report
