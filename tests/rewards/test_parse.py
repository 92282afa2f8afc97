"""Tests for varl.rewards.parse: accepted formats, failures, ground-truth errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from varl.rewards.choice import option_set
from varl.rewards.parse import (
    answer_region,
    completion_text,
    extract_tag,
    parse_box,
    parse_box_list,
    parse_boxes,
    parse_choices,
    parse_gt_box,
    parse_gt_boxes,
    parse_gt_choices,
    parse_gt_interval,
    parse_interval,
)

# ---------------------------------------------------------------------------------------------
# completion_text
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ([{"role": "assistant", "content": "hello"}], "hello"),
        ([{"content": "no role"}], "no role"),
        (
            [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"text": "b"}]}],
            "ab",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "image"}, {"type": "text", "text": "[1,2,3,4]"}],
                }
            ],
            "[1,2,3,4]",
        ),
        (
            [
                {"role": "assistant", "content": "first"},
                {"role": "tool", "content": "ignored"},
                {"role": "assistant", "content": "second"},
            ],
            "first\nsecond",
        ),
        ([{"role": "assistant", "content": None}], ""),
        (({"role": "assistant", "content": "tuple"},), "tuple"),
    ],
)
def test_completion_text_accepts_trl_formats(completion: object, expected: str) -> None:
    assert completion_text(completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        None,
        42,
        3.5,
        {"role": "assistant", "content": "a dict, not a list"},
        [],
        ["a list of strings"],
        [{"role": "user", "content": "no assistant message"}],
        [{"role": "assistant", "content": 7}],
        [{"role": "assistant", "content": [{"type": "text", "text": 3}]}],
        [{"role": "assistant", "content": ["not a part dict"]}],
        b"bytes",
    ],
)
def test_completion_text_malformed_is_none(completion: object) -> None:
    assert completion_text(completion) is None


# ---------------------------------------------------------------------------------------------
# extract_tag
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tag", "expected"),
    [
        ("<answer>A</answer>", "answer", "A"),
        ("<think>x</think><answer> B </answer>", "answer", " B "),
        ("<answer>1</answer> then <answer>2</answer>", "answer", "2"),
        ("<answer>1</answer> then <answer>2", "answer", "1"),
        ("<answer><answer>inner</answer></answer>", "answer", "inner"),
        ("<answer></answer>", "answer", ""),
        ("<answer>unclosed", "answer", None),
        ("closed only</answer>", "answer", None),
        ("</answer><answer>", "answer", None),
        ("<Answer>case</Answer>", "answer", None),
        ("<look>[1,2,3,4]</look>", "look", "[1,2,3,4]"),
        ("<answer>ünïcødé ✓</answer>", "answer", "ünïcødé ✓"),
        ("", "answer", None),
    ],
)
def test_extract_tag(text: str, tag: str, expected: str | None) -> None:
    assert extract_tag(text, tag) == expected


@pytest.mark.parametrize("tag", ["", "<answer>", "a b", "1x", "a.b"])
def test_extract_tag_rejects_bad_tag_names(tag: str) -> None:
    with pytest.raises(ValueError, match="tag"):
        extract_tag("<answer>x</answer>", tag)


# ---------------------------------------------------------------------------------------------
# parse_box / parse_boxes / parse_box_list
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1122, 18, 1206, 48]", [1122, 18, 1206, 48]),
        ("<think>..</think><answer>[1,2,3,4]</answer>", [1, 2, 3, 4]),
        ("[1.5,-2,+3.25,.5]", [1.5, -2, 3.25, 0.5]),
        ("[1e2, 2.5E-1, -3e+1, 7.]", [100, 0.25, -30, 7]),
        ("[ 1 ,\n2 ,\t3 , 4 ]", [1, 2, 3, 4]),
        ("first [1,2,3,4] then [5,6,7,8]", [1, 2, 3, 4]),
        ("[9,9,9,9] <answer>[1,2,3,4]</answer>", [1, 2, 3, 4]),
        ("<answer>the box is [10, 20, 30, 40].</answer>", [10, 20, 30, 40]),
        ("[[0, 0, 5, 5]]", [0, 0, 5, 5]),
        ("[1,2,3,4,5] then [5,6,7,8]", [5, 6, 7, 8]),
        ("点击 [3, 4, 5, 6] ✓", [3, 4, 5, 6]),
    ],
)
def test_parse_box_finds_first_box(text: str, expected: list[float]) -> None:
    box = parse_box(text)
    assert box is not None
    assert box.dtype == np.float64
    assert_array_equal(box, np.asarray(expected, dtype=np.float64))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no box here",
        "[1, 2, 3]",
        "[1, 2, 3, 4, 5]",
        "(1, 2, 3, 4)",
        "[a, b, c, d]",
        "[1e400, 0, 1, 1]",
        "[nan, 0, 1, 1]",
        "[inf, 0, 1, 1]",
        "[١, ٢, ٣, ٤]",  # non-ASCII digits are not numbers here
        "<answer>no box</answer> [1, 2, 3, 4]",  # an answer block restricts the search
        "[1e400, 0, 1, 1] [1, 2, 3, 4]",  # the first box decides
    ],
)
def test_parse_box_failures_are_none(text: str) -> None:
    assert parse_box(text) is None


def test_parse_box_huge_but_finite() -> None:
    box = parse_box("[1e300, 0, 1, 1]")
    assert box is not None
    assert box[0] == 1e300


def test_parse_boxes_all_boxes() -> None:
    boxes = parse_boxes("a [0,0,10,10] b [5, 5, 8, 9] c [1,2,3] d [-1e400,0,0,0]")
    assert_array_equal(boxes, [[0, 0, 10, 10], [5, 5, 8, 9], [-np.inf, 0, 0, 0]])
    assert parse_boxes("<answer>[1,2,3,4]</answer>").shape == (1, 4)
    assert parse_boxes("").shape == (0, 4)
    assert parse_boxes("nothing").dtype == np.float64


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("[]", 0),
        ("  [ ]  ", 0),
        ("[1,2,3,4]", 1),
        ("[[1,2,3,4]]", 1),
        ("[1,2,3,4], [5,6,7,8]", 2),
        ("[1,2,3,4] [5,6,7,8]", 2),
        ("[[1,2,3,4], [5,6,7,8],]", 2),
        ("\n[[1, 2, 3, 4],\n [5, 6, 7, 8]]\n", 2),
    ],
)
def test_parse_box_list_accepts_box_lists(text: str, n: int) -> None:
    boxes = parse_box_list(text)
    assert boxes is not None
    assert boxes.shape == (n, 4)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "person [1,2,3,4]",
        "[1,2,3,4] and [5,6,7,8]",
        "[[1,2,3,4]",
        "[[1,2,3]]",
        "[1e400,2,3,4]",
        "[[1,2,3,4]] [[5,6,7,8]]",
        '[{"bbox_2d": [1,2,3,4]}]',
    ],
)
def test_parse_box_list_rejects_other_text(text: str) -> None:
    assert parse_box_list(text) is None


# ---------------------------------------------------------------------------------------------
# parse_choices
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>A</answer>", {"A"}),
        ("<think>...</think><answer>b, A</answer>", {"A", "B"}),
        ("<answer>A,A</answer>", {"A"}),
        ("<answer> A ,\nB,D </answer>", {"A", "B", "D"}),
        ("A,C", {"A", "C"}),
        ("<answer>A,,B,</answer>", {"A", "B"}),
        ("<answer></answer>", set()),
        ("<answer>  </answer>", set()),
        ("", set()),
        ("<answer>Ä</answer>", {"Ä"}),
    ],
)
def test_parse_choices(text: str, expected: set[str]) -> None:
    assert parse_choices(text) == frozenset(expected)


# ---------------------------------------------------------------------------------------------
# parse_interval
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('<answer>{"start_time": "75", "end_time": "127"}</answer>', (75.0, 127.0)),
        ('<answer>{"start_time": 75, "end_time": 127.5}</answer>', (75.0, 127.5)),
        ('<answer>{"end_time": "2", "start_time": "1"}</answer>', (1.0, 2.0)),
        ('<answer> {"start_time": " 1.5 ", "end_time": "2e1"} </answer>', (1.5, 20.0)),
        ('<think>{"start_time": 9, "end_time": 9}</think><answer>[0.2, 0.5]</answer>', (0.2, 0.5)),
        ('text {"other": 1} then {"start_time": "3", "end_time": "4"}', (3.0, 4.0)),
        ("<answer>[0.5, 0.3]</answer>", (0.5, 0.3)),
        ('The answer: {"start_time": "1", "end_time": "2"} done', (1.0, 2.0)),
    ],
)
def test_parse_interval(text: str, expected: tuple[float, float]) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<answer>no interval</answer>",
        '<answer>{"start_time": "abc", "end_time": "2"}</answer>',
        '<answer>{"start_time": true, "end_time": 2}</answer>',
        '<answer>{"start_time": null, "end_time": 2}</answer>',
        '<answer>{"start_time": "1_000", "end_time": "2000"}</answer>',
        '<answer>{"start_time": "nan", "end_time": "2"}</answer>',
        '<answer>{"start_time": 1e400, "end_time": 2}</answer>',
        '<answer>{"start_time": NaN, "end_time": 2}</answer>',
        '<answer>{"start_time": Infinity, "end_time": 2}</answer>',
        '<answer>{"start_time": "1"}</answer>',
        "<answer>[1e400, 2]</answer>",
        "<answer>[1, 2, 3]</answer>",
        f'<answer>{{"start_time": {10**400}, "end_time": 2}}</answer>',
        "<answer>" + "{" * 5000 + "</answer>",
    ],
)
def test_parse_interval_failures_are_none(text: str) -> None:
    assert parse_interval(text) is None


def test_parse_interval_bad_json_object_is_final() -> None:
    # A JSON object with the keys but unusable values is a failure, not a cue to look further.
    assert parse_interval('{"start_time": "x", "end_time": "y"} [1, 2]') is None


# ---------------------------------------------------------------------------------------------
# Never raise on model text
# ---------------------------------------------------------------------------------------------

_model_text = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "<answer>",
                "</answer>",
                "<think>",
                "</think>",
                "<look>",
                "</look>",
                "[",
                "]",
                ",",
                "{",
                "}",
                '"start_time":',
                '"end_time":',
                "1",
                "-2.5",
                "1e400",
                "A",
                " ",
                '"3"',
            ]
        ),
        max_size=40,
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(_model_text)
def test_parsers_never_raise_on_text(text: str) -> None:
    assert completion_text(text) == text
    for tag in ("answer", "think", "look"):
        block = extract_tag(text, tag)
        assert block is None or block in text
    box = parse_box(text)
    assert box is None or (box.shape == (4,) and np.all(np.isfinite(box)))
    boxes = parse_boxes(text)
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and not np.any(np.isnan(boxes))
    listed = parse_box_list(text)
    assert listed is None or (listed.shape[1] == 4 and np.all(np.isfinite(listed)))
    assert all(label and label == label.upper() for label in parse_choices(text))
    interval = parse_interval(text)
    assert interval is None or all(np.isfinite(interval))


@pytest.mark.parametrize("value", [None, 1, 2.5, [1, 2], {"a": 1}])
def test_parsers_tolerate_non_strings(value: object) -> None:
    assert extract_tag(value, "answer") is None  # type: ignore[arg-type]
    assert parse_box(value) is None  # type: ignore[arg-type]
    assert parse_boxes(value).shape == (0, 4)  # type: ignore[arg-type]
    assert parse_box_list(value) is None  # type: ignore[arg-type]
    assert parse_choices(value) == frozenset()  # type: ignore[arg-type]
    assert parse_interval(value) is None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1122, 18, 1206, 48], [1122, 18, 1206, 48]),
        ((0.1, 0.2, 0.3, 0.4), [0.1, 0.2, 0.3, 0.4]),
        (np.array([1, 2, 3, 4]), [1, 2, 3, 4]),
        ("[1122, 18, 1206, 48]", [1122, 18, 1206, 48]),
        (" <answer> [1, 2, 3, 4] </answer> ", [1, 2, 3, 4]),
    ],
)
def test_parse_gt_box(value: object, expected: list[float]) -> None:
    assert_array_equal(parse_gt_box(value, "solution", 0), expected)


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "[1, 2, 3]",
        "box [1, 2, 3, 4]",
        "[1, 2, 3, 4] [5, 6, 7, 8]",
        "[1e400, 2, 3, 4]",
        [1, 2, 3],
        [[1, 2, 3, 4]],
        [1, 2, 3, float("nan")],
        [1, 2, 3, float("inf")],
        ["a", "b", "c", "d"],
        [True, False, True, False],
        None,
        {"box": [1, 2, 3, 4]},
        [[1, 2], [3]],
    ],
)
def test_parse_gt_box_errors_name_column_and_row(value: object) -> None:
    with pytest.raises(ValueError, match=r"column 'solution', row 3: expected a box"):
        parse_gt_box(value, "solution", 3)


def test_parse_gt_box_message_shows_value() -> None:
    with pytest.raises(ValueError) as info:
        parse_gt_box("abc", "solution", 3)
    assert str(info.value) == "column 'solution', row 3: expected a box [x1, y1, x2, y2], got 'abc'"


def test_parse_gt_box_long_value_is_truncated() -> None:
    with pytest.raises(ValueError) as info:
        parse_gt_box("x" * 1000, "gt", 0)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("value", "n"),
    [
        ([[0, 0, 1, 1], [2, 2, 3, 3]], 2),
        ([], 0),
        ((), 0),
        (np.zeros((0, 4)), 0),
        ([0, 0, 1, 1], 1),
        ("[[0, 0, 1, 1], [2, 2, 3, 3]]", 2),
        ("[0, 0, 1, 1], [2, 2, 3, 3]", 2),
        ("<answer>[]</answer>", 0),
        ("[0, 0, 1, 1]", 1),
    ],
)
def test_parse_gt_boxes(value: object, n: int) -> None:
    boxes = parse_gt_boxes(value, "solution", 0)
    assert boxes.shape == (n, 4)
    assert boxes.dtype == np.float64


@pytest.mark.parametrize(
    "value", ["abc", "[1, 2, 3]", [[1, 2, 3]], [[1, 2, 3, float("nan")]], None, [[[1, 2, 3, 4]]]]
)
def test_parse_gt_boxes_errors(value: object) -> None:
    with pytest.raises(ValueError, match=r"column 'boxes', row 1: expected a list of boxes"):
        parse_gt_boxes(value, "boxes", 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("A,B", {"A", "B"}),
        ("<answer>A,B</answer>", {"A", "B"}),
        ("b", {"B"}),
        (["A", "B"], {"A", "B"}),
        (("a ", " c"), {"A", "C"}),
        ({"D"}, {"D"}),
    ],
)
def test_parse_gt_choices(value: object, expected: set[str]) -> None:
    assert parse_gt_choices(value, "solution", 0) == frozenset(expected)


@pytest.mark.parametrize("value", ["", "<answer> </answer>", [], ["A", 1], [""], None, 3])
def test_parse_gt_choices_errors(value: object) -> None:
    with pytest.raises(ValueError, match=r"column 'solution', row 2: expected option labels"):
        parse_gt_choices(value, "solution", 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([0.2, 0.5], (0.2, 0.5)),
        ((1, 1), (1.0, 1.0)),
        (np.array([0.0, 1.0]), (0.0, 1.0)),
        ("[0.425, 0.6975]", (0.425, 0.6975)),
        ("<answer>[0.1, 0.2]</answer>", (0.1, 0.2)),
        ('{"start_time": "1", "end_time": "2"}', (1.0, 2.0)),
        ('{"start_time": 1, "end_time": 2.5}', (1.0, 2.5)),
        ({"start_time": 3, "end_time": "4"}, (3.0, 4.0)),
    ],
)
def test_parse_gt_interval(value: object, expected: tuple[float, float]) -> None:
    assert parse_gt_interval(value, "solution", 0) == expected


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "[0.5, 0.2]",
        [0.5, 0.2],
        [0.1, 0.2, 0.3],
        [float("nan"), 1],
        "[1e400, 1e401]",
        '{"start_time": "x", "end_time": "2"}',
        "{broken json",
        {"start_time": 1},
        None,
    ],
)
def test_parse_gt_interval_errors(value: object) -> None:
    with pytest.raises(ValueError, match=r"column 'solution', row 5: expected an interval"):
        parse_gt_interval(value, "solution", 5)


# ---------------------------------------------------------------------------------------------
# Ground truth: degenerate boxes, gold labels, the answer region
# ---------------------------------------------------------------------------------------------

_DEGENERATE = "expected non-degenerate boxes (x1 < x2 and y1 < y2, with a finite width and height)"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ([0, 0, 0, 50], "[0, 0, 0, 50]"),  # zero width
        ([0, 9, 5, 3], "[0, 9, 5, 3]"),  # y1 > y2
        ("[5, 5, 5, 9]", "'[5, 5, 5, 9]'"),
        ("<answer>[2, 0, 1, 1]</answer>", "'<answer>[2, 0, 1, 1]</answer>'"),
        ([-1e308, 0, 1e308, 1], "[-1e+308, 0, 1e+308, 1]"),  # width overflows float64
    ],
)
def test_parse_gt_box_rejects_degenerate_boxes(value: object, shown: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_gt_box(value, "solution", 3)
    assert str(info.value) == f"column 'solution', row 3: {_DEGENERATE}, got {shown}"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ([[0, 0, 10, 10], [5, 5, 5, 9]], "[[0, 0, 10, 10], [5, 5, 5, 9]]"),
        ([0, 0, 0, 1], "[0, 0, 0, 1]"),  # a single flat box
        ("[[0, 0, 1, 1], [3, 3, 2, 4]]", "'[[0, 0, 1, 1], [3, 3, 2, 4]]'"),
        ([[0, -1e308, 1, 1e308]], "[[0, -1e+308, 1, 1e+308]]"),  # height overflows float64
    ],
)
def test_parse_gt_boxes_rejects_degenerate_boxes(value: object, shown: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_gt_boxes(value, "boxes", 1)
    assert str(info.value) == f"column 'boxes', row 1: {_DEGENERATE}, got {shown}"


def test_parse_gt_box_accepts_huge_but_finite_extents() -> None:
    assert_array_equal(parse_gt_box([-5e307, 0, 5e307, 1], "solution", 0), [-5e307, 0, 5e307, 1])
    assert_array_equal(parse_gt_box([0, 0, 5e-324, 5e-324], "solution", 0), [0, 0, 5e-324, 5e-324])


_LABELS = (
    "expected option labels such as 'A,B' or ['A', 'B'], each a single token of letters/digits"
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("The answer is A", "'The answer is A'"),
        ("<answer>A B</answer>", "'<answer>A B</answer>'"),
        ("A, B C", "'A, B C'"),
        ("answer: A", "'answer: A'"),
        (["A", "B C"], "['A', 'B C']"),
        (["A", " "], "['A', ' ']"),
    ],
)
def test_parse_gt_choices_rejects_labels_that_are_not_single_tokens(
    value: object, shown: str
) -> None:
    with pytest.raises(ValueError) as info:
        parse_gt_choices(value, "solution", 4)
    assert str(info.value) == f"column 'solution', row 4: {_LABELS}, got {shown}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" <answer> a , b </answer> ", {"A", "B"}),
        ("A,B,", {"A", "B"}),  # a trailing comma is dropped, as in completions
        (["10", " c "], {"10", "C"}),
        ("Ä", {"Ä"}),
    ],
)
def test_parse_gt_choices_single_tokens(value: object, expected: set[str]) -> None:
    assert parse_gt_choices(value, "solution", 0) == frozenset(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>A B, c</answer>", {"AB", "C"}),  # all whitespace removed, as in TW-GRPO
        ("<answer>\ta\n,\u2003b</answer>", {"A", "B"}),
    ],
)
def test_parse_choices_uses_the_choice_normaliser(text: str, expected: set[str]) -> None:
    assert parse_choices(text) == frozenset(expected)
    assert option_set(answer_region(text)) == frozenset(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>[0, 0, 1, 1]</think><answer>[2, 2, 3, 3]</answer>", "[2, 2, 3, 3]"),
        ("<answer>a</answer> then <answer> b </answer>", " b "),
        ("no answer block [2, 2, 3, 3]", "no answer block [2, 2, 3, 3]"),
        ("<answer>unclosed", "<answer>unclosed"),
    ],
)
def test_answer_region(text: str, expected: str) -> None:
    assert answer_region(text) == expected
