"""Tests for varl.rewards.format: structure rules, strictness, never raising on model text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varl.rewards.format import (
    check_tags,
    tag_format_reward,
    temporal_format_reward,
    think_look_answer_format_reward,
)

# ---------------------------------------------------------------------------------------------
# tag_format_reward
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>x</think><answer>A</answer>", 1.0),
        ("<think>x</think> <answer>A</answer>", 1.0),  # TW-GRPO T4
        ("  \n<think>\nreason\n</think>\n\n<answer>\nA\n</answer>\n ", 1.0),
        ("<think>ünïcødé ✓ 思考</think><answer>答</answer>", 1.0),
        ("<think>a < b and c > d</think><answer>A</answer>", 1.0),
        ("<think>x</think><answer>A</answer> !", 0.0),  # trailing text
        ("<think>x</think><answer>A</answer> extra", 0.0),  # TW-GRPO T4: text after </answer>
        ("prefix <think>x</think><answer>A</answer>", 0.0),
        ("<think>x</think>between<answer>A</answer>", 0.0),
        ("<answer>A</answer><think>x</think>", 0.0),  # wrong order
        ("<think>x</think>", 0.0),  # missing answer
        ("<answer>A</answer>", 0.0),  # missing think
        ("<think>x</think><answer>A</answer><answer>B</answer>", 0.0),  # duplicate (T4)
        ("<think>x</think><think>y</think><answer>A</answer>", 0.0),
        ("<think>x<answer>A</answer></think><answer>A</answer>", 0.0),  # nested
        ("<think>x</think><answer><think>y</think>A</answer>", 0.0),
        ("<think>x</think><answer>A</answer></answer>", 0.0),
        ("<think><think>x</think></think><answer>A</answer>", 0.0),
        ("<think> </think><answer>A</answer>", 0.0),  # empty after strip
        ("<think>x</think><answer>\n</answer>", 0.0),
        ("<think></think><answer></answer>", 0.0),
        ("", 0.0),
        ("   ", 0.0),
        ("<THINK>x</THINK><ANSWER>A</ANSWER>", 0.0),
        ("<think>x</think><answer>A", 0.0),
    ],
)
def test_tag_format_reward_default_tags(text: str, expected: float) -> None:
    assert tag_format_reward(text) == expected


def test_tag_format_reward_custom_tags() -> None:
    assert tag_format_reward("<answer>A</answer>", tags=("answer",)) == 1.0
    assert tag_format_reward("<a>1</a><b>2</b><c>3</c>", tags=("a", "b", "c")) == 1.0
    assert tag_format_reward("<a>1</a><c>3</c><b>2</b>", tags=("a", "b", "c")) == 0.0
    assert tag_format_reward("<a>1</a><b>2</b>", tags=["a", "b"]) == 1.0


# A 16 KB text on which a backtracking matcher explores ~400^3 splits: it must be scored (0.0:
# the think block is empty, and the trailing "!" is not allowed); the scan does it in one pass.
_REPEATED = "</think><look>x</look><answer>y</answer>" * 400


@pytest.mark.parametrize("text", ["<think>" + _REPEATED, "<think>" + _REPEATED + "!"])
def test_long_repeated_blocks_score_zero(text: str) -> None:
    assert len(text) >= 16_000
    assert tag_format_reward(text, tags=("think", "look", "answer")) == 0.0
    assert think_look_answer_format_reward(text) == 0.0
    assert think_look_answer_format_reward("<think>a" + _REPEATED + "!", strict=True) == 0.0
    assert tag_format_reward("<think>a" + _REPEATED, tags=("think", "look", "answer")) == 0.0


def test_long_well_formed_blocks_score_one() -> None:
    long = "<think>" + "x" * 8000 + "</think>\n<look>[1,1,5,5]</look>\n<answer>[]</answer>"
    assert think_look_answer_format_reward(long, strict=True) == 1.0
    assert tag_format_reward(long, tags=("think", "look", "answer")) == 1.0


def test_tag_name_rule_is_the_parse_one() -> None:
    with pytest.raises(ValueError) as info:
        check_tags(("think", "<answer>"))
    assert str(info.value) == (
        "tags: expected a name such as 'answer' (letters, digits, _ or -), got '<answer>'"
    )


def test_tag_format_reward_returns_float() -> None:
    value = tag_format_reward("<think>x</think><answer>A</answer>")
    assert type(value) is float


@pytest.mark.parametrize(
    "tags", [(), "think", ("think", "think"), ("",), ("<think>",), ("a b",), (1,)]
)
def test_check_tags_rejects_bad_tags(tags: object) -> None:
    with pytest.raises(ValueError, match="tags"):
        check_tags(tags)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tags"):
        tag_format_reward("<think>x</think>", tags=tags)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, 1, ["<think>x</think><answer>A</answer>"]])
def test_non_strings_score_zero(value: object) -> None:
    assert tag_format_reward(value) == 0.0  # type: ignore[arg-type]
    assert think_look_answer_format_reward(value) == 0.0  # type: ignore[arg-type]
    assert temporal_format_reward(value) == 0.0  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# think_look_answer_format_reward (DIP-R1 §6 item 7, reconstruction)
# ---------------------------------------------------------------------------------------------

_DIP_GOOD = "<think>a</think><look>[1,1,5,5]</look><answer>[[1,1,5,5],[6,6,9,9]]</answer>"


@pytest.mark.parametrize(
    ("text", "loose", "strict"),
    [
        (_DIP_GOOD, 1.0, 1.0),
        ("<think>a</think><look>[1,1,5,5]</look><answer>[1,1,5,5]</answer>", 1.0, 1.0),
        ("<think>a</think><look>[1,1,5,5]</look><answer>[...]</answer>", 1.0, 0.0),  # §6 item 7
        ("<think>a</think>\n<look>the crowd at [0, 0, 9, 9]</look>\n<answer>[]</answer>", 1.0, 1.0),
        ("<think>a</think><look>nothing</look><answer>[1,1,5,5]</answer>", 1.0, 0.0),
        ("<think>a</think><look>[1e400,1,5,5]</look><answer>[1,1,5,5]</answer>", 1.0, 0.0),
        ("<think>a</think><look>[1,1,5,5]</look><answer>one person</answer>", 1.0, 0.0),
        ("<think>a</think><answer>[1,1,5,5]</answer>", 0.0, 0.0),  # missing look (§6 item 7)
        ("<look>[1,1,5,5]</look><think>a</think><answer>[1,1,5,5]</answer>", 0.0, 0.0),  # order
        ("<think>a</think><look>[1,1,5,5]</look><look>[2,2,3,3]</look><answer>[]</answer>", 0, 0),
        ("<think>a</think><look> </look><answer>[1,1,5,5]</answer>", 0.0, 0.0),
        (_DIP_GOOD + " trailing", 0.0, 0.0),
    ],
)
def test_think_look_answer_format_reward(text: str, loose: float, strict: float) -> None:
    assert think_look_answer_format_reward(text) == loose
    assert think_look_answer_format_reward(text, strict=True) == strict


# ---------------------------------------------------------------------------------------------
# temporal_format_reward (Temporal-R1 §2.2)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('<think>t</think> <answer>{"start_time": "75", "end_time": "127"}</answer>', 1.0),
        ('<think>t</think><answer>{"start_time": "75.5", "end_time": "127.0"}</answer>', 1.0),
        ('<think>t</think><answer> {"end_time": "2", "start_time": "1"} </answer>', 1.0),
        ('<think>t</think><answer>{"start_time": 75, "end_time": 127}</answer>', 0.0),  # unquoted
        ('<think>t</think><answer>{"start_time": "-1", "end_time": "2"}</answer>', 0.0),
        ('<think>t</think><answer>{"start_time": "1e3", "end_time": "2"}</answer>', 0.0),
        ('<think>t</think><answer>{"start_time": "a", "end_time": "2"}</answer>', 0.0),
        ('<think>t</think><answer>{"start_time": "1"}</answer>', 0.0),
        ('<think>t</think><answer>{"start_time": "1", "end_time": "2", "x": 1}</answer>', 0.0),
        ("<think>t</think><answer>[1, 2]</answer>", 0.0),
        ('<think>t</think><answer>{"start_time": "1", "end_time": "2"} ok</answer>', 0.0),
        ('<answer>{"start_time": "1", "end_time": "2"}</answer>', 0.0),
        ('<think></think><answer>{"start_time": "1", "end_time": "2"}</answer>', 0.0),
        ('<think>t</think><answer>{"start_time": "1", "end_time": "2"}</answer>x', 0.0),
        ("", 0.0),
    ],
)
def test_temporal_format_reward(text: str, expected: float) -> None:
    assert temporal_format_reward(text) == expected


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

_pieces = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<look>",
        "</look>",
        "<answer>",
        "</answer>",
        "x",
        " ",
        "\n",
        "[1,2,3,4]",
        '{"start_time": "1", "end_time": "2"}',
        "[]",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=100), st.lists(_pieces, max_size=20).map("".join)))
def test_format_rewards_are_binary_and_never_raise(text: str) -> None:
    for value in (
        tag_format_reward(text),
        think_look_answer_format_reward(text),
        think_look_answer_format_reward(text, strict=True),
        temporal_format_reward(text),
    ):
        assert value in (0.0, 1.0)
    # Strictness and extra requirements can only remove credit.
    assert think_look_answer_format_reward(text, strict=True) <= think_look_answer_format_reward(
        text
    )
    assert temporal_format_reward(text) <= tag_format_reward(text)


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_characters="<>"), min_size=1).filter(str.strip),
    st.text(alphabet=st.characters(blacklist_characters="<>"), min_size=1).filter(str.strip),
)
def test_well_formed_blocks_always_score_one(think: str, answer: str) -> None:
    assert tag_format_reward(f"<think>{think}</think>\n<answer>{answer}</answer>") == 1.0
