"""Format rewards: 1.0 when a completion has the required tag structure, else 0.0.

Pure functions of one string; they never raise on model text (a non-string scores 0.0). The TRL
wrappers live in :mod:`varl.rewards.text`; the answer formats themselves are documented in
:mod:`varl.rewards.parse`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from varl.rewards.parse import _check_tag_name, parse_box_list, parse_boxes

__all__ = [
    "check_tags",
    "tag_format_reward",
    "temporal_format_reward",
    "think_look_answer_format_reward",
]

_SPACE_RE = re.compile(r"\s*")
# A non-negative decimal written as a JSON string, as Temporal-R1's format check requires.
_QUOTED_TIME_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Validates a sequence of tag names and returns it as a tuple.

    Args:
        tags: Distinct tag names without brackets, e.g. ``("think", "answer")``.

    Returns:
        The names as a tuple.

    Raises:
        ValueError: If ``tags`` is empty, a bare string, holds a duplicate, or holds a name that
            is not letters/digits/``_``/``-`` starting with a letter (the tag-name rule of
            :mod:`varl.rewards.parse`).
    """
    if isinstance(tags, str):
        raise ValueError(f"tags: expected a sequence of tag names, got the string {tags!r}")
    result = tuple(tags)
    if not result:
        raise ValueError("tags: expected at least one tag name, got none")
    for tag in result:
        _check_tag_name(tag, "tags")
    if len(set(result)) != len(result):
        raise ValueError(f"tags: expected distinct names, got {result!r}")
    return result


def _skip_space(text: str, position: int) -> int:
    """The index of the first non-whitespace character at or after ``position``."""
    match = _SPACE_RE.match(text, position)
    return position if match is None else match.end()


def _tag_blocks(text: str, tags: tuple[str, ...]) -> tuple[str, ...] | None:
    """The contents of the tag blocks when ``text`` has exactly the required structure.

    One left-to-right scan, linear in ``len(text)`` (times the number of tags): since no block
    may hold a marker, block i must end at the first ``</t_i>`` after its ``<t_i>``.
    """
    if not isinstance(text, str):
        return None
    markers = [m for t in tags for m in (f"<{t}>", f"</{t}>")]
    blocks: list[str] = []
    position = _skip_space(text, 0)
    for tag in tags:
        opening, closing = f"<{tag}>", f"</{tag}>"
        if not text.startswith(opening, position):
            return None
        start = position + len(opening)
        end = text.find(closing, start)
        if end < 0:
            return None
        block = text[start:end]
        if not block.strip() or any(marker in block for marker in markers):
            return None
        blocks.append(block)
        position = _skip_space(text, end + len(closing))
    return tuple(blocks) if position == len(text) else None


def tag_format_reward(text: str, tags: Sequence[str] = ("think", "answer")) -> float:
    """Scores whether a completion is exactly a sequence of tag blocks.

    r = 1 iff the whole text (leading and trailing whitespace allowed) is
    ``<t1>…</t1> <t2>…</t2> …`` for ``tags = (t1, t2, …)`` in that order, with only whitespace
    between blocks, each block non-empty after stripping, and no opening or closing marker of any
    of the tags inside a block (which rules out nesting and duplicates); r = 0 otherwise. This is
    the R1-style format reward (e.g. TW-GRPO §1.4), made strict about duplicates and empty blocks.
    It is stricter than TW-GRPO's reference format reward, which *searches* for
    ``<think>.*?</think>\\s*<answer>.*?</answer>[\\s!]*$`` and so also accepts text before
    ``<think>`` and trailing ``"!"``; varl scores only the exact form. The check is a single
    scan, linear in the length of the text.

    Args:
        text: Model output.
        tags: Tag names in their required order.

    Returns:
        1.0 or 0.0.

    Raises:
        ValueError: If ``tags`` is invalid (see :func:`check_tags`).

    Example:
        >>> tag_format_reward("<think>a</think>\\n<answer>B</answer>")
        1.0
        >>> tag_format_reward("<answer>B</answer><think>a</think>")
        0.0
    """
    return 0.0 if _tag_blocks(text, check_tags(tags)) is None else 1.0


def think_look_answer_format_reward(text: str, *, strict: bool = False) -> float:
    """DIP-R1 Think–Look–Answer format reward (our reconstruction, spec §2.2(a) [R]).

    The DIP-R1 paper's exact rule could not be read; this is varl's reconstruction, not the
    authors' formula. r = 1 iff the text is ``<think>…</think><look>…</look><answer>…</answer>``
    in the sense of :func:`tag_format_reward`. With ``strict``, additionally the ``<look>`` block
    must hold at least one finite box ``[x1, y1, x2, y2]`` and the ``<answer>`` block must be a box
    list (:func:`varl.rewards.parse.parse_box_list`; ``[]`` counts as an empty list).

    Args:
        text: Model output.
        strict: Also require boxes in ``<look>`` and a box list in ``<answer>``.

    Returns:
        1.0 or 0.0.

    Example:
        >>> think_look_answer_format_reward(
        ...     "<think>a</think><look>[1,1,5,5]</look><answer>[[1,1,5,5]]</answer>", strict=True
        ... )
        1.0
        >>> think_look_answer_format_reward("<think>a</think><answer>[1,1,5,5]</answer>")
        0.0
    """
    blocks = _tag_blocks(text, ("think", "look", "answer"))
    if blocks is None:
        return 0.0
    if strict:
        _, look, answer = blocks
        look_boxes = parse_boxes(look)
        has_box = bool(np.any(np.all(np.isfinite(look_boxes), axis=1)))
        if not has_box or parse_box_list(answer) is None:
            return 0.0
    return 1.0


def temporal_format_reward(text: str) -> float:
    """Temporal-R1 temporal-video-grounding format reward (spec §2.2).

    r = 1 iff the text is ``<think>…</think><answer>…</answer>`` in the sense of
    :func:`tag_format_reward` and the answer block is exactly one JSON object with the two keys
    ``start_time`` and ``end_time`` (either order) whose values are *quoted* non-negative decimals,
    e.g. ``{"start_time": "12.5", "end_time": "20"}``. As in the reference code, unquoted JSON
    numbers fail the format (while :func:`varl.rewards.parse.parse_interval` still reads them).
    Unlike the reference regex, an empty ``<think>`` block also fails.

    Args:
        text: Model output.

    Returns:
        1.0 or 0.0.

    Example:
        >>> temporal_format_reward(
        ...     '<think>t</think> <answer>{"start_time": "75", "end_time": "127"}</answer>'
        ... )
        1.0
        >>> temporal_format_reward(
        ...     '<think>t</think> <answer>{"start_time": 75, "end_time": 127}</answer>'
        ... )
        0.0
    """
    blocks = _tag_blocks(text, ("think", "answer"))
    if blocks is None:
        return 0.0
    answer = blocks[1]
    try:
        obj = json.loads(answer)
    except (ValueError, RecursionError):
        return 0.0
    if not isinstance(obj, dict) or set(obj) != {"start_time", "end_time"}:
        return 0.0
    for value in obj.values():
        if not isinstance(value, str) or _QUOTED_TIME_RE.fullmatch(value) is None:
            return 0.0
    return 1.0
