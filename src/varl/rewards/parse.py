"""Answer parsing for every text reward in varl: the one place the accepted formats are defined.

Model output is untrusted text, so the ``parse_*`` functions for completions never raise: they
return ``None`` (or an empty result) when nothing usable is found, and the reward wrappers in
:mod:`varl.rewards.text` score such completions 0.0 and count them. Ground truth is trusted data,
so the ``parse_gt_*`` functions raise a ``ValueError`` that names the dataset column and row.

Accepted formats
----------------
Completion objects (:func:`completion_text`)
    * a plain ``str`` (TRL's standard format);
    * a TRL conversational completion: a list of message dicts such as
      ``[{"role": "assistant", "content": "..."}]``. The text of every assistant message (or
      message without a ``role``) is joined with newlines. ``content`` may be a string, ``None``
      (a tool-call-only message, read as ``""``) or a list of parts as VLM chat formats use,
      e.g. ``[{"type": "text", "text": "..."}, {"type": "image"}]``; text parts are concatenated
      and other parts ignored.

    Anything else (a number, a dict, a list holding a non-dict, a list with no assistant message,
    a content of another type) is a parse failure: ``None``.

Tags (:func:`extract_tag`, :func:`answer_region`)
    ``<tag>…</tag>``, case-sensitive, no attributes. When there are several blocks, the last
    complete one is used: the last ``<tag>`` that is followed by a ``</tag>``, up to the first
    ``</tag>`` after it (so for a nested ``<answer><answer>x</answer></answer>`` it is ``x``).
    A tag name is letters, digits, ``_`` or ``-``, starting with a letter. The *answer region*
    of a text is the content of its last ``<answer>`` block, or the whole text when it has none;
    every parser below that mentions ``<answer>`` searches this region.

Numbers
    Signed ASCII decimals with optional exponent: ``12``, ``-3.5``, ``+.5``, ``7.``, ``1e-3``,
    ``2.5E+2``. A value that overflows float64 (``1e400``) is non-finite and rejected.

Boxes (:func:`parse_box`, :func:`parse_boxes`, :func:`parse_box_list`)
    ``[x1, y1, x2, y2]``: four numbers in square brackets separated by commas, any whitespace
    allowed around them (GUI-G² §1.1). ``parse_box`` takes the *first* box inside the last
    ``<answer>`` block when the text has one, else the first box in the whole text; a first box
    with a non-finite coordinate gives ``None`` (no second box is tried). ``parse_boxes`` returns
    every box of the text it is given, keeping a coordinate that overflows as ``±inf`` so that
    the set rewards can count such a box as an invalid prediction (a false positive in
    :func:`varl.rewards.detection.detection_reward`; ignored by ``looking_reward``).
    ``parse_box_list`` is the strict form: the whole text must be a box list, either boxes
    separated by commas/whitespace (``[1,2,3,4], [5,6,7,8]``) or the same wrapped in one outer
    pair of brackets (``[[1,2,3,4],[5,6,7,8]]``, ``[]`` for no boxes).

Option letters (:func:`parse_choices`)
    The content of the last ``<answer>`` block (or the whole text when there is none) with all
    whitespace removed, split on ``","``, each label upper-cased; empty labels are dropped
    (TW-GRPO §1.4; :func:`varl.rewards.choice.option_set`). ``"<answer>b, A</answer>"`` →
    ``{"A", "B"}``.

Time intervals (:func:`parse_interval`)
    Inside the last ``<answer>`` block (or the whole text): the first JSON object that has both
    ``"start_time"`` and ``"end_time"``, whose values are JSON numbers or quoted numeric strings
    (``{"start_time": "12.5", "end_time": 20}``); failing that, the first pair ``[s, e]``
    (Temporal-R1 §2.2). Non-finite values give ``None``. The order of ``s`` and ``e`` is kept, so
    a reversed interval is returned as written (and scores 0 in the IoU).

Ground truth (``parse_gt_*``)
    Python lists/tuples/arrays, or strings in the completion formats above (optionally wrapped
    in ``<answer>…</answer>``), e.g. ``"[1, 2, 3, 4]"``, ``"<answer>A,B</answer>"``, ``"A,B"``,
    ``["A", "B"]``, ``'{"start_time": 1, "end_time": 2}'``, ``{"start_time": 1, "end_time": 2}``.
    Unlike completions, nothing is searched for inside a ground-truth string: once an optional
    ``<answer>`` wrapper and surrounding whitespace are removed, it must be exactly one box, one
    box list, one ``[start, end]`` pair or JSON object with ``start_time`` and ``end_time``, or
    comma-separated option labels that are each a single token of letters/digits
    (:func:`varl.rewards.choice.gold_option_set`; ``"The answer is A"`` is an error). Boxes must
    also be non-degenerate (x1 < x2, y1 < y2, with a finite width and height) and intervals have
    start <= end.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from varl._checks import FloatArray, as_float_array
from varl.rewards.choice import gold_option_set, option_set

__all__ = [
    "answer_region",
    "completion_text",
    "extract_tag",
    "parse_box",
    "parse_box_list",
    "parse_boxes",
    "parse_choices",
    "parse_gt_box",
    "parse_gt_boxes",
    "parse_gt_choices",
    "parse_gt_interval",
    "parse_interval",
]

_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_BOX = rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]"
_BOX_RE = re.compile(_BOX)
_PAIR_RE = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")
_NUMBER_RE = re.compile(_NUMBER)
_BOX_NC = rf"\[\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\]"
_BOXES_NC = rf"{_BOX_NC}(?:\s*,?\s*{_BOX_NC})*"
_BOX_LIST_RE = re.compile(rf"\s*(?:\[\s*(?:{_BOXES_NC}\s*,?\s*)?\]|{_BOXES_NC}\s*,?)\s*")
_TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")
_JSON = json.JSONDecoder()


# ----------------------------------------------------------------------------------------------
# Completions (model output): never raise.
# ----------------------------------------------------------------------------------------------


def _content_text(content: object) -> str | None:
    """Text of one message's ``content``: a string, ``None`` or a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        pieces: list[str] = []
        for part in content:
            if not isinstance(part, Mapping):
                return None
            if part.get("type", "text") != "text":
                continue
            text = part.get("text")
            if not isinstance(text, str):
                return None
            pieces.append(text)
        return "".join(pieces)
    return None


def completion_text(completion: object) -> str | None:
    """Returns the text of a completion in TRL's standard or conversational format.

    Args:
        completion: A ``str``, or a list of message dicts (``{"role": ..., "content": ...}``)
            whose ``content`` is a string, ``None`` or a list of ``{"type": "text", "text": ...}``
            parts.

    Returns:
        The string itself, or the assistant messages' text joined with newlines; ``None`` when
        the object is malformed or holds no assistant message.

    Example:
        >>> completion_text([{"role": "assistant", "content": "<answer>A</answer>"}])
        '<answer>A</answer>'
        >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}])
        'hi'
        >>> completion_text(42) is None
        True
    """
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, list | tuple):
        return None
    texts: list[str] = []
    for message in completion:
        if not isinstance(message, Mapping):
            return None
        role = message.get("role", "assistant")
        if role != "assistant":
            continue
        text = _content_text(message.get("content"))
        if text is None:
            return None
        texts.append(text)
    if not texts:
        return None
    return "\n".join(texts)


def _check_tag_name(tag: str, name: str = "tag") -> str:
    """Returns ``tag`` if it is a valid tag name, else raises ``ValueError`` naming ``name``.

    The one tag-name rule of varl (also used by :func:`varl.rewards.format.check_tags`).
    """
    if not isinstance(tag, str) or _TAG_NAME_RE.fullmatch(tag) is None:
        raise ValueError(
            f"{name}: expected a name such as 'answer' (letters, digits, _ or -), got {tag!r}"
        )
    return tag


def extract_tag(text: str, tag: str) -> str | None:
    """Returns the content of the last complete ``<tag>…</tag>`` block.

    Args:
        text: Model output.
        tag: Tag name without brackets, e.g. ``"answer"``.

    Returns:
        The text between the last ``<tag>`` that has a ``</tag>`` after it and the first such
        ``</tag>`` (not stripped), or ``None`` when there is no complete block or ``text`` is not
        a string.

    Raises:
        ValueError: If ``tag`` is not a valid tag name (a programming error, not model output).

    Example:
        >>> extract_tag("<think>x</think><answer> B </answer>", "answer")
        ' B '
        >>> extract_tag("<answer>unclosed", "answer") is None
        True
    """
    _check_tag_name(tag)
    if not isinstance(text, str):
        return None
    opening, closing = f"<{tag}>", f"</{tag}>"
    end = text.rfind(closing)
    if end < 0:
        return None
    start = text.rfind(opening, 0, end)
    if start < 0:
        return None
    start += len(opening)
    return text[start : text.find(closing, start)]


def answer_region(text: str) -> str:
    """Returns the content of the last ``<answer>`` block, or the whole text when there is none.

    Args:
        text: Model output (a string).

    Returns:
        The region the answer parsers search.

    Example:
        >>> answer_region("<think>[0, 0, 1, 1]</think><answer>[2, 2, 3, 3]</answer>")
        '[2, 2, 3, 3]'
        >>> answer_region("[2, 2, 3, 3]")
        '[2, 2, 3, 3]'
    """
    inner = extract_tag(text, "answer")
    return text if inner is None else inner


def _box_from_match(match: re.Match[str]) -> FloatArray | None:
    values = np.array([float(g) for g in match.groups()], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        return None
    return values


def parse_box(text: str) -> FloatArray | None:
    """Returns the first ``[x1, y1, x2, y2]`` box of a completion (GUI-G² §1.1).

    The search runs inside the last ``<answer>`` block when there is one, else over the whole
    text.

    Args:
        text: Model output.

    Returns:
        Float64 array of shape ``[4]``, or ``None`` when there is no box or the first box has a
        non-finite coordinate.

    Example:
        >>> parse_box("<think>..</think><answer>[1, 2, 3.5, -4e1]</answer>").tolist()
        [1.0, 2.0, 3.5, -40.0]
        >>> parse_box("no box here") is None
        True
    """
    if not isinstance(text, str):
        return None
    match = _BOX_RE.search(answer_region(text))
    if match is None:
        return None
    return _box_from_match(match)


def parse_boxes(text: str) -> FloatArray:
    """Returns every ``[x1, y1, x2, y2]`` box in ``text``, in order of appearance.

    Unlike :func:`parse_box` this does not look for an ``<answer>`` block: pass the region to
    search (e.g. ``extract_tag(text, "look")``). A coordinate too large for float64 (``1e400``)
    is kept as ``±inf``: the box was emitted, and the reward functions treat it as invalid.

    Args:
        text: Text to search.

    Returns:
        Float64 array of shape ``[N, 4]`` (never NaN); ``N`` is 0 when there is no box.

    Example:
        >>> parse_boxes("look at [0, 0, 10, 10] and [5,5,8,9]").tolist()
        [[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 8.0, 9.0]]
        >>> parse_boxes("none").shape
        (0, 4)
    """
    if not isinstance(text, str):
        return np.zeros((0, 4), dtype=np.float64)
    rows = [[float(g) for g in match.groups()] for match in _BOX_RE.finditer(text)]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 4)


def parse_box_list(text: str) -> FloatArray | None:
    """Parses text that is exactly a list of boxes (the strict DIP-R1 answer form).

    Args:
        text: The candidate list, e.g. the content of an ``<answer>`` block.

    Returns:
        Float64 array of shape ``[N, 4]`` (``N`` may be 0 for ``"[]"``), or ``None`` when the
        text holds anything besides boxes, commas, whitespace and one optional outer pair of
        brackets, or when a coordinate is non-finite.

    Example:
        >>> parse_box_list("[[0, 0, 2, 2], [1, 1, 3, 3]]").shape
        (2, 4)
        >>> parse_box_list("person at [0, 0, 2, 2]") is None
        True
    """
    if not isinstance(text, str) or _BOX_LIST_RE.fullmatch(text) is None:
        return None
    matches = list(_BOX_RE.finditer(text))
    boxes = [_box_from_match(m) for m in matches]
    finite = [b for b in boxes if b is not None]
    if len(finite) != len(boxes):
        return None
    if not finite:
        return np.zeros((0, 4), dtype=np.float64)
    return np.stack(finite)


def parse_choices(text: str) -> frozenset[str]:
    """Returns the set of option labels a completion chose (TW-GRPO §1.4).

    Args:
        text: Model output; the last ``<answer>`` block is used when present.

    Returns:
        Upper-cased labels with all whitespace removed, split on commas; empty labels dropped.
        An empty frozenset when nothing was chosen.

    Example:
        >>> sorted(parse_choices("<think>...</think><answer>b, A</answer>"))
        ['A', 'B']
        >>> parse_choices("<answer> </answer>")
        frozenset()
    """
    if not isinstance(text, str):
        return frozenset()
    return option_set(answer_region(text), "text")


def _number_value(value: object) -> float | None:
    """A finite float from a JSON number or a quoted numeric string, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if _NUMBER_RE.fullmatch(stripped) is None:
            return None
        number = float(stripped)
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # a huge JSON integer
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _interval_from_mapping(obj: Mapping[str, Any]) -> tuple[float, float] | None:
    start = _number_value(obj.get("start_time"))
    end = _number_value(obj.get("end_time"))
    if start is None or end is None:
        return None
    return start, end


def _json_interval(text: str) -> tuple[bool, tuple[float, float] | None]:
    """Finds the first JSON object in ``text`` that has ``start_time`` and ``end_time`` keys.

    Returns ``(found, interval)``: ``found`` is False when there is no such object; when there
    is, ``interval`` is its parsed value or ``None`` if a value is not a finite number.
    """
    position = text.find("{")
    while position >= 0:
        try:
            obj, _ = _JSON.raw_decode(text, position)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and "start_time" in obj and "end_time" in obj:
            return True, _interval_from_mapping(obj)
        position = text.find("{", position + 1)
    return False, None


def parse_interval(text: str) -> tuple[float, float] | None:
    """Returns the ``(start, end)`` interval of a temporal-grounding completion (Temporal-R1).

    Args:
        text: Model output; the last ``<answer>`` block is used when present.

    Returns:
        The two numbers as written (seconds, or normalised units, whatever the model emitted),
        or ``None`` when there is no JSON ``start_time``/``end_time`` object and no ``[s, e]``
        pair, or a value is non-finite.

    Example:
        >>> parse_interval('<answer>{"start_time": "75", "end_time": "127"}</answer>')
        (75.0, 127.0)
        >>> parse_interval("<answer>[0.2, 0.5]</answer>")
        (0.2, 0.5)
    """
    if not isinstance(text, str):
        return None
    region = answer_region(text)
    found, interval = _json_interval(region)
    if found:
        return interval
    match = _PAIR_RE.search(region)
    if match is None:
        return None
    start, end = float(match.group(1)), float(match.group(2))
    if not (math.isfinite(start) and math.isfinite(end)):
        return None
    return start, end


# ----------------------------------------------------------------------------------------------
# Ground truth (dataset columns): raise ValueError naming the column and row.
# ----------------------------------------------------------------------------------------------


def _show(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _gt_error(column: str, row: int, expected: str, value: object) -> ValueError:
    return ValueError(f"column {column!r}, row {row}: expected {expected}, got {_show(value)}")


def _gt_string_region(value: str) -> str:
    return answer_region(value).strip()


def _check_extents(boxes: FloatArray, column: str, row: int, value: object) -> FloatArray:
    """Checks finite GT boxes ``[..., 4]`` for x1 < x2 and y1 < y2 with a finite width/height."""
    with np.errstate(over="ignore"):
        sides = boxes[..., 2:] - boxes[..., :2]
    if not np.all(np.isfinite(sides) & (sides > 0.0)):
        raise _gt_error(
            column,
            row,
            "non-degenerate boxes (x1 < x2 and y1 < y2, with a finite width and height)",
            value,
        )
    return boxes


def _gt_numbers(value: object, column: str, row: int, expected: str) -> FloatArray:
    try:
        arr = as_float_array(value, column, finite=True)
    except (TypeError, ValueError) as exc:
        raise _gt_error(column, row, expected, value) from exc
    return arr


def parse_gt_box(value: object, column: str, row: int) -> FloatArray:
    """Parses one ground-truth box.

    Args:
        value: Four finite numbers as a list/tuple/array, or a string that is exactly one box
            (``"[1, 2, 3, 4]"``), optionally inside ``<answer>…</answer>``.
        column: Dataset column name, for the error message.
        row: Row index in the batch, for the error message.

    Returns:
        Float64 array of shape ``[4]``, with x1 < x2 and y1 < y2 and a finite width and height.

    Raises:
        ValueError: If ``value`` is not one finite box, or the box is degenerate (x1 >= x2 or
            y1 >= y2) or so wide or tall that its width or height overflows float64.

    Example:
        >>> parse_gt_box("[1122, 18, 1206, 48]", "solution", 0).tolist()
        [1122.0, 18.0, 1206.0, 48.0]
    """
    expected = "a box [x1, y1, x2, y2]"
    if isinstance(value, str):
        match = _BOX_RE.fullmatch(_gt_string_region(value))
        box = None if match is None else _box_from_match(match)
        if box is None:
            raise _gt_error(column, row, expected, value)
        return _check_extents(box, column, row, value)
    arr = _gt_numbers(value, column, row, expected)
    if arr.shape != (4,):
        raise _gt_error(column, row, expected, value)
    return _check_extents(arr, column, row, value)


def parse_gt_boxes(value: object, column: str, row: int) -> FloatArray:
    """Parses a ground-truth list of boxes.

    Args:
        value: A nested list/array of shape ``[M, 4]`` (``M`` may be 0), a single flat box of
            four numbers (read as ``M = 1``), or a string box list such as
            ``"[[1, 2, 3, 4], [5, 6, 7, 8]]"`` or ``"[1, 2, 3, 4], [5, 6, 7, 8]"``, optionally
            inside ``<answer>…</answer>``.
        column: Dataset column name, for the error message.
        row: Row index in the batch, for the error message.

    Returns:
        Float64 array of shape ``[M, 4]``, each box with x1 < x2 and y1 < y2 and a finite width
        and height.

    Raises:
        ValueError: If ``value`` is not a list of finite boxes, or a box is degenerate (x1 >= x2
            or y1 >= y2) or has a width or height that overflows float64.

    Example:
        >>> parse_gt_boxes("[[0, 0, 1, 1], [2, 2, 3, 3]]", "solution", 0).shape
        (2, 4)
    """
    expected = "a list of boxes [[x1, y1, x2, y2], ...]"
    if isinstance(value, str):
        boxes = parse_box_list(_gt_string_region(value))
        if boxes is None:
            raise _gt_error(column, row, expected, value)
        return _check_extents(boxes, column, row, value)
    if isinstance(value, Sequence | np.ndarray) and len(value) == 0:
        return np.zeros((0, 4), dtype=np.float64)
    arr = _gt_numbers(value, column, row, expected)
    if arr.shape == (4,):
        arr = arr.reshape(1, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise _gt_error(column, row, expected, value)
    return _check_extents(arr, column, row, value)


def parse_gt_choices(value: object, column: str, row: int) -> frozenset[str]:
    """Parses the gold option labels of a multiple-choice item.

    Args:
        value: A string such as ``"A,B"`` or ``"<answer>A,B</answer>"``, or a list/tuple/set of
            label strings such as ``["A", "B"]``. Each label, stripped of surrounding whitespace,
            must be a single token of letters/digits; in a string, empty pieces between commas
            are dropped (see :func:`varl.rewards.choice.gold_option_set`).
        column: Dataset column name, for the error message.
        row: Row index in the batch, for the error message.

    Returns:
        Non-empty frozenset of upper-cased labels.

    Raises:
        ValueError: If ``value`` has no label, holds something other than strings, or holds a
            label that is not a single token of letters/digits (e.g. ``"The answer is A"``).

    Example:
        >>> sorted(parse_gt_choices(["a", "B"], "solution", 0))
        ['A', 'B']
    """
    expected = "option labels such as 'A,B' or ['A', 'B'], each a single token of letters/digits"
    labels: str | list[Any]
    if isinstance(value, str):
        labels = _gt_string_region(value)
    elif isinstance(value, list | tuple | set | frozenset):
        labels = list(value)
    else:
        raise _gt_error(column, row, expected, value)
    try:
        return gold_option_set(labels, column)
    except (TypeError, ValueError) as exc:
        raise _gt_error(column, row, expected, value) from exc


def parse_gt_interval(value: object, column: str, row: int) -> tuple[float, float]:
    """Parses a ground-truth time interval.

    Args:
        value: Two finite numbers ``[start, end]`` as a list/tuple/array, a mapping with
            ``start_time`` and ``end_time``, or a string holding either (``"[0.2, 0.5]"``,
            ``'{"start_time": "1", "end_time": "2"}'``), optionally inside
            ``<answer>…</answer>``.
        column: Dataset column name, for the error message.
        row: Row index in the batch, for the error message.

    Returns:
        ``(start, end)`` with ``start <= end``.

    Raises:
        ValueError: If ``value`` is not an interval of two finite numbers with start <= end.

    Example:
        >>> parse_gt_interval("[0.425, 0.6975]", "solution", 0)
        (0.425, 0.6975)
    """
    expected = "an interval [start, end] with start <= end"
    interval: tuple[float, float] | None
    if isinstance(value, str):
        region = _gt_string_region(value)
        interval = None
        if region.startswith("{"):
            try:
                obj = json.loads(region)
            except (ValueError, RecursionError):
                obj = None
            if isinstance(obj, dict):
                interval = _interval_from_mapping(obj)
        else:
            match = _PAIR_RE.fullmatch(region)
            if match is not None:
                interval = (float(match.group(1)), float(match.group(2)))
    elif isinstance(value, Mapping):
        interval = _interval_from_mapping(value)
    else:
        arr = _gt_numbers(value, column, row, expected)
        interval = (float(arr[0]), float(arr[1])) if arr.shape == (2,) else None
    if (
        interval is None
        or not (math.isfinite(interval[0]) and math.isfinite(interval[1]))
        or interval[0] > interval[1]
    ):
        raise _gt_error(column, row, expected, value)
    return interval
