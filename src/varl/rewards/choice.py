"""Multi-choice answer rewards: TW-GRPO's soft (partial-credit) reward and the binary baseline.

Paper: "Reinforcing Video Reasoning with Focused Thinking" (TW-GRPO), arXiv 2505.24718. For
questions with several correct options, the paper replaces the all-or-nothing accuracy reward by
a soft one that gives partial credit for a correct but incomplete selection, which gives GRPO
groups reward variance where a binary reward would often be constant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

__all__ = ["choice_reward", "gold_option_set", "option_set"]

ChoiceMode = Literal["soft", "binary"]
_MODES: tuple[str, ...] = ("soft", "binary")


def _label_items(labels: str | Iterable[str], name: str) -> list[str]:
    """The raw labels: a string split on commas, or the strings of an iterable."""
    if isinstance(labels, str):
        return labels.split(",")
    try:
        items = list(labels)
    except TypeError as exc:
        raise TypeError(f"{name}: expected a string or an iterable of strings") from exc
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name}: expected option labels as strings, got {type(item).__name__}")
    return items


def option_set(labels: str | Iterable[str], name: str = "labels") -> frozenset[str]:
    """Normalised set of chosen option labels, the one normaliser of predicted labels in varl.

    A single string is read the way TW-GRPO's reference reads an ``<answer>`` body: all
    whitespace removed, then split on ``","``. Every label has all whitespace removed and is
    upper-cased (the upper-casing is varl's choice); empty labels are dropped. So ``"a, B"`` and
    ``[" a ", "b"]`` both give ``{"A", "B"}``, and ``"A B"`` is the single label ``"AB"``.
    :func:`varl.rewards.parse.parse_choices` reads completions with this function.

    Args:
        labels: One comma-separated string, or an iterable of label strings.
        name: Argument name used in error messages.

    Returns:
        The labels as a frozenset (empty when nothing was chosen).

    Raises:
        TypeError: If ``labels`` is not a string or an iterable of strings.

    Example:
        >>> sorted(option_set(" b ,A,, a"))
        ['A', 'B']
    """
    normalised = ("".join(item.split()).upper() for item in _label_items(labels, name))
    return frozenset(label for label in normalised if label)


def gold_option_set(labels: str | Iterable[str], name: str = "gold") -> frozenset[str]:
    """Checked set of gold option labels: each a single token of letters and digits.

    A string is split on ``","`` and each piece stripped of surrounding whitespace; empty pieces
    (a trailing comma) are dropped. Items of an iterable are stripped and must not be empty.
    Every label must then be one token of letters/digits (``"A"``, ``"b"``, ``"10"``), so gold
    text such as ``"The answer is A"`` is an error rather than the label ``"THEANSWERISA"``.
    Labels are upper-cased as in :func:`option_set`.

    Args:
        labels: One comma-separated string, or an iterable of label strings.
        name: Argument name used in error messages.

    Returns:
        Non-empty frozenset of upper-cased labels.

    Raises:
        TypeError: If ``labels`` is not a string or an iterable of strings.
        ValueError: If there is no label, or a label is not a single token of letters/digits.

    Example:
        >>> sorted(gold_option_set("a, B"))
        ['A', 'B']
    """
    items = [item.strip() for item in _label_items(labels, name)]
    if isinstance(labels, str):
        items = [item for item in items if item]
    if not items:
        raise ValueError(f"{name}: expected at least one non-empty option label")
    for item in items:
        if not item.isalnum():
            raise ValueError(
                f"{name}: expected option labels that are single tokens of letters/digits, "
                f"got {item!r}"
            )
    return option_set(items, name)


def choice_reward(
    pred: str | Iterable[str], gold: str | Iterable[str], mode: ChoiceMode = "soft"
) -> float:
    """TW-GRPO multi-choice reward (soft partial credit, or the binary baseline).

    With P the predicted and S the gold option sets:

        soft:   R = |P| / |S|   if P ≠ ∅ and P ⊆ S,   else 0
        binary: R = 1           if P = S,              else 0

    Any wrong option zeroes the soft reward (no negative reward), so it is "recall gated on
    precision = 1"; when P ⊆ S it equals the set IoU |P ∩ S| / |P ∪ S|. Order and duplicates do
    not matter ("A,A" against {A, B} scores 0.5). Predicted labels are normalised by
    :func:`option_set` (all whitespace removed, as the reference does, then upper-cased); empty
    labels are dropped, so an empty answer scores 0 (the reference scores a stray trailing comma,
    "A,", as a wrong option; here it reads as "A"). Gold labels are checked by
    :func:`gold_option_set`: each must be a single token of letters/digits.

    The reference implementation first tries a ``math_verify`` equivalence check and gives 1.0 on
    success; that can fire on odd inputs and is not part of this pure set rule.

    Args:
        pred: Predicted labels: an iterable of strings (e.g. ``{"A", "C"}``) or one string of
            comma-separated labels (e.g. ``"A, C"``), typically the ``<answer>`` body.
        gold: Gold labels, in the same forms; at least one, each a single token of letters/digits
            once stripped of surrounding whitespace (``"A, B"`` is fine, ``"The answer is A"``
            is not).
        mode: ``"soft"`` (TW-GRPO, default) or ``"binary"`` (exact-set baseline).

    Returns:
        The reward, a float in [0, 1].

    Raises:
        TypeError: If ``pred`` or ``gold`` is not a string or an iterable of strings.
        ValueError: If ``gold`` has no labels or a label that is not a single token of
            letters/digits, or ``mode`` is not one of the modes.

    Example:
        >>> round(choice_reward({"A", "B"}, "A,B,D"), 6)
        0.666667
        >>> choice_reward("A,C", "A,B,D")
        0.0
        >>> choice_reward(["B", "A"], {"A", "B"}, mode="binary")
        1.0
    """
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    gold_set = gold_option_set(gold, "gold")
    pred_set = option_set(pred, "pred")
    if mode == "binary":
        return 1.0 if pred_set == gold_set else 0.0
    if pred_set and pred_set <= gold_set:
        return len(pred_set) / len(gold_set)
    return 0.0
