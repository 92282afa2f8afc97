"""Multi-choice answer rewards: TW-GRPO's soft (partial-credit) reward and the binary baseline.

Paper: "Reinforcing Video Reasoning with Focused Thinking" (TW-GRPO), arXiv 2505.24718. For
questions with several correct options, the paper replaces the all-or-nothing accuracy reward by
a soft one that gives partial credit for a correct but incomplete selection, which gives GRPO
groups reward variance where a binary reward would often be constant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

__all__ = ["choice_reward"]

ChoiceMode = Literal["soft", "binary"]
_MODES: tuple[str, ...] = ("soft", "binary")


def _option_set(labels: str | Iterable[str], name: str) -> frozenset[str]:
    """Normalised set of option labels: whitespace stripped, upper-cased, empty labels dropped.

    A single string is read the way the reference reads an ``<answer>`` body: split on commas.
    """
    if isinstance(labels, str):
        items: Iterable[object] = labels.split(",")
    else:
        try:
            items = list(labels)
        except TypeError as exc:
            raise TypeError(f"{name}: expected a string or an iterable of strings") from exc
    result = set()
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name}: expected option labels as strings, got {type(item).__name__}")
        label = item.strip().upper()
        if label:
            result.add(label)
    return frozenset(result)


def choice_reward(
    pred: str | Iterable[str], gold: str | Iterable[str], mode: ChoiceMode = "soft"
) -> float:
    """TW-GRPO multi-choice reward (soft partial credit, or the binary baseline).

    With P the predicted and S the gold option sets:

        soft:   R = |P| / |S|   if P ≠ ∅ and P ⊆ S,   else 0
        binary: R = 1           if P = S,              else 0

    Any wrong option zeroes the soft reward (no negative reward), so it is "recall gated on
    precision = 1"; when P ⊆ S it equals the set IoU |P ∩ S| / |P ∪ S|. Order and duplicates do
    not matter ("A,A" against {A, B} scores 0.5). Labels are compared after stripping whitespace
    and upper-casing; empty labels are dropped, so an empty answer scores 0 (the reference scores
    a stray trailing comma, "A,", as a wrong option; here it reads as "A").

    The reference implementation first tries a ``math_verify`` equivalence check and gives 1.0 on
    success; that can fire on odd inputs and is not part of this pure set rule.

    Args:
        pred: Predicted labels: an iterable of strings (e.g. ``{"A", "C"}``) or one string of
            comma-separated labels (e.g. ``"A, C"``), typically the ``<answer>`` body.
        gold: Gold labels, in the same forms; must hold at least one non-empty label.
        mode: ``"soft"`` (TW-GRPO, default) or ``"binary"`` (exact-set baseline).

    Returns:
        The reward, a float in [0, 1].

    Raises:
        TypeError: If ``pred`` or ``gold`` is not a string or an iterable of strings.
        ValueError: If ``gold`` has no labels, or ``mode`` is not one of the modes.

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
    gold_set = _option_set(gold, "gold")
    if not gold_set:
        raise ValueError("gold: expected at least one non-empty option label")
    pred_set = _option_set(pred, "pred")
    if mode == "binary":
        return 1.0 if pred_set == gold_set else 0.0
    if pred_set and pred_set <= gold_set:
        return len(pred_set) / len(gold_set)
    return 0.0
