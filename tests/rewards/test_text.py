"""Tests for varl.rewards.text: TRL-signature rewards, failure counting, errors, pickling."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from varl.rewards import text as text_rewards
from varl.rewards.choice import choice_reward
from varl.rewards.text import (
    DetectionReward,
    GuiGroundingReward,
    LookingReward,
    MultiChoiceReward,
    TagFormatReward,
    TemporalGroundingReward,
    ThinkLookAnswerFormatReward,
    detection,
    gui_grounding,
    looking,
    multi_choice,
    tag_format,
    temporal_grounding,
    think_look_answer_format,
)

Reward = Callable[..., list[float | None]]


class FakeMetrics:
    """Records ``log_metric(name, value)`` calls the way TRL's ``_log_metric`` receives them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, name: str, value: float) -> None:
        self.calls.append((name, value))


def scores(rewards: Sequence[float | None]) -> list[float]:
    """The rewards as floats, failing on a ``None``."""
    assert all(r is not None for r in rewards)
    return [float(r) for r in rewards if r is not None]


def conversational(texts: Sequence[str]) -> list[list[dict[str, str]]]:
    return [[{"role": "assistant", "content": t}] for t in texts]


def vlm_parts(texts: Sequence[str]) -> list[list[dict[str, Any]]]:
    return [
        [{"role": "assistant", "content": [{"type": "text", "text": t[:3]}, {"text": t[3:]}]}]
        for t in texts
    ]


GT = [0.0, 0.0, 100.0, 50.0]
TIME_OK = '<think>t</think><answer>{"start_time": "75", "end_time": "127"}</answer>'
TIME_UNQUOTED = '<think>t</think><answer>{"start_time": 75, "end_time": 127}</answer>'


# ---------------------------------------------------------------------------------------------
# Names, repr, pickling, validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reward", "name"),
    [
        (gui_grounding, "gui_grounding"),
        (multi_choice, "multi_choice"),
        (temporal_grounding, "temporal_grounding"),
        (detection, "detection"),
        (looking, "looking"),
        (tag_format, "tag_format"),
        (think_look_answer_format, "think_look_answer_format"),
    ],
)
def test_default_instances_have_metric_names(reward: Reward, name: str) -> None:
    # TRL names a reward by getattr(func, "__name__", type(func).__name__).
    assert getattr(reward, "__name__", type(reward).__name__) == name
    assert name in text_rewards.__all__


def test_custom_name_and_repr() -> None:
    reward = GuiGroundingReward(alpha=0.3, w_coverage=0.0, name="point_only")
    assert reward.__name__ == "point_only"
    assert repr(reward) == (
        "GuiGroundingReward(alpha=0.3, w_point=1.0, w_coverage=0.0, round_digits=None, "
        "column='solution', name='point_only')"
    )


@pytest.mark.parametrize(
    "reward",
    [
        GuiGroundingReward(alpha=0.3, w_point=0.8, w_coverage=0.2, round_digits=3, column="box"),
        MultiChoiceReward(mode="binary", column="gold"),
        TemporalGroundingReward(w_iou=0.7, w_format=0.3, length_column="duration"),
        DetectionReward(iou_threshold=0.7, w_precision=0.3, w_recall=0.7),
        LookingReward(num_generations=4, inspect="iou", empty_value=0.5, name="look"),
        TagFormatReward(("think", "look", "answer")),
        ThinkLookAnswerFormatReward(strict=True),
        gui_grounding,
        looking,
    ],
)
def test_pickle_round_trip(reward: Reward) -> None:
    copy = pickle.loads(pickle.dumps(reward))
    assert type(copy) is type(reward)
    assert repr(copy) == repr(reward)
    assert copy.__name__ == reward.__name__
    assert vars(copy) == vars(reward)


def test_pickled_reward_scores_the_same() -> None:
    reward = GuiGroundingReward(alpha=0.3, round_digits=2, column="box")
    copy = pickle.loads(pickle.dumps(reward))
    completions = ["[10, 10, 60, 40]", "[0, 0, 100, 50]", "nothing"]
    assert copy(completions, box=[GT] * 3) == reward(completions, box=[GT] * 3)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: GuiGroundingReward(alpha=0.0), "alpha"),
        (lambda: GuiGroundingReward(alpha=float("nan")), "alpha"),
        (lambda: GuiGroundingReward(w_point=-1.0), "w_point"),
        (lambda: GuiGroundingReward(w_coverage=float("inf")), "w_coverage"),
        (lambda: GuiGroundingReward(round_digits=-1), "round_digits"),
        (lambda: GuiGroundingReward(round_digits=True), "round_digits"),
        (lambda: GuiGroundingReward(column=""), "column"),
        (lambda: GuiGroundingReward(name=""), "name"),
        (lambda: MultiChoiceReward(mode="partial"), "mode"),  # type: ignore[arg-type]
        (lambda: TemporalGroundingReward(w_iou=-0.1), "w_iou"),
        (lambda: TemporalGroundingReward(length_column=""), "length_column"),
        (lambda: DetectionReward(iou_threshold=0.0), "iou_threshold"),
        (lambda: DetectionReward(iou_threshold=1.5), "iou_threshold"),
        (lambda: DetectionReward(w_precision=0.5, w_recall=0.6), "summing to 1"),
        (lambda: LookingReward(num_generations=0), "num_generations"),
        (lambda: LookingReward(num_generations=2.0), "num_generations"),  # type: ignore[arg-type]
        (lambda: LookingReward(cluster_iou=0.0), "cluster_iou"),
        (lambda: LookingReward(variance_threshold=0.3), "variance_threshold"),
        (lambda: LookingReward(inspect="corner"), "inspect"),  # type: ignore[arg-type]
        (lambda: LookingReward(look_iou=2.0), "look_iou"),
        (lambda: LookingReward(empty_value=float("nan")), "empty_value"),
        (lambda: TagFormatReward(()), "tags"),
        (lambda: TagFormatReward("think"), "tags"),
    ],
)
def test_arguments_are_validated_eagerly(factory: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()


# ---------------------------------------------------------------------------------------------
# Plain vs conversational; output length; parse-failure counting
# ---------------------------------------------------------------------------------------------

_CASES: list[tuple[Reward, list[str], dict[str, Any]]] = [
    (
        gui_grounding,
        ["[0, 0, 100, 50]", "<answer>[50, 0, 150, 50]</answer>", "no box", "[1, 2, 3]"],
        {"solution": [GT] * 4},
    ),
    (
        multi_choice,
        ["<answer>A</answer>", "<answer>A,B</answer>", "<answer></answer>", "C"],
        {"solution": ["A,B"] * 4},
    ),
    (
        temporal_grounding,
        [TIME_OK, TIME_UNQUOTED, "<answer>soon</answer>", "[0.3, 0.6]"],
        {"solution": [[0.425, 0.6975]] * 4},
    ),
    (
        detection,
        ["<answer>[[0,0,10,10]]</answer>", "<answer>[]</answer>", "none", "[0,0,10,10]"],
        {"solution": [[[0, 0, 10, 10], [20, 0, 30, 10]]] * 4},
    ),
    (
        LookingReward(num_generations=2),
        [
            "<think>t</think><look>[0,0,9,9]</look><answer>[[0,0,10,10]]</answer>",
            "<think>t</think><look></look><answer>[]</answer>",
            "<answer>[[0,0,10,10]]</answer>",
            "<think>t</think><look>[0,0,9,9]</look><answer>[]</answer>",
        ],
        {},
    ),
    (
        tag_format,
        ["<think>x</think><answer>A</answer>", "<answer>A</answer>", "", "<think>y</think>"],
        {},
    ),
    (
        think_look_answer_format,
        ["<think>x</think><look>l</look><answer>A</answer>", "<think>x</think>", "", "x"],
        {},
    ),
]


@pytest.mark.parametrize(("reward", "texts", "columns"), _CASES)
def test_plain_and_conversational_agree(
    reward: Reward, texts: list[str], columns: dict[str, Any]
) -> None:
    plain = reward(texts, **columns)
    assert len(plain) == len(texts)
    assert all(isinstance(r, float) for r in plain)
    assert reward(conversational(texts), **columns) == plain
    assert reward(vlm_parts(texts), **columns) == plain
    # TRL also passes prompts, completion_ids and trainer_state; they are accepted and ignored.
    extra = {"prompts": ["p"] * len(texts), "completion_ids": [[1]] * len(texts)}
    assert reward(texts, trainer_state=object(), **extra, **columns) == plain


@pytest.mark.parametrize(("reward", "texts", "columns"), _CASES)
def test_malformed_completions_score_zero_and_are_counted(
    reward: Reward, texts: list[str], columns: dict[str, Any]
) -> None:
    # In every case the first two completions parse; replacing them by malformed completion
    # objects makes them score 0.0 and adds exactly two failures.
    metrics = FakeMetrics()
    reward(texts, log_metric=metrics, **columns)
    name = reward.__name__
    assert [n for n, _ in metrics.calls] == [f"{name}/parse_failures"]
    failures = metrics.calls[0][1]
    broken: list[object] = list(texts)
    broken[0] = 42
    broken[1] = [{"role": "assistant", "content": 7}]
    metrics_broken = FakeMetrics()
    rewards = reward(broken, log_metric=metrics_broken, **columns)
    assert rewards[:2] == [0.0, 0.0]
    assert len(rewards) == len(texts)
    assert metrics_broken.calls == [(f"{name}/parse_failures", failures + 2)]


@pytest.mark.parametrize(
    ("reward", "texts", "columns", "expected_failures"),
    [
        (
            gui_grounding,
            ["[1,2,3,4]", "none", "[1,2,3]", "[1e400,0,1,1]"],
            {"solution": [GT] * 4},
            3,
        ),
        (
            multi_choice,
            ["<answer>A</answer>", "<answer> </answer>", ""],
            {"solution": ["A"] * 3},
            2,
        ),
        (
            temporal_grounding,
            [TIME_OK, "<answer>{}</answer>", '{"start_time": "x", "end_time": "1"}'],
            {"solution": [[0.1, 0.2]] * 3},
            2,
        ),
        (detection, ["[]", "<answer>crowd</answer>", "[0,0,1,1]"], {"solution": [[]] * 3}, 1),
        (LookingReward(num_generations=1), ["<look></look><answer></answer>", "<look>x"], {}, 1),
        (tag_format, ["", "<answer>A</answer>"], {}, 0),
    ],
)
def test_parse_failure_counts(
    reward: Reward, texts: list[str], columns: dict[str, Any], expected_failures: int
) -> None:
    metrics = FakeMetrics()
    rewards = reward(texts, log_metric=metrics, **columns)
    assert metrics.calls == [(f"{reward.__name__}/parse_failures", expected_failures)]
    assert len(rewards) == len(texts)


def test_failure_metric_is_logged_even_when_zero_and_without_log_metric() -> None:
    metrics = FakeMetrics()
    gui_grounding(["[0, 0, 100, 50]"], solution=[GT], log_metric=metrics)
    assert metrics.calls == [("gui_grounding/parse_failures", 0)]
    assert gui_grounding(["[0, 0, 100, 50]"], solution=[GT]) == [2.0]  # no log_metric: fine
    assert gui_grounding(["x"], solution=[GT], log_metric=None) == [0.0]


def test_empty_batch() -> None:
    assert gui_grounding([], solution=[]) == []
    assert LookingReward(num_generations=4)([]) == []


def test_completions_must_be_a_list() -> None:
    with pytest.raises(TypeError, match="completions"):
        gui_grounding("[0, 0, 100, 50]", solution=[GT])
    with pytest.raises(TypeError, match="completions"):
        tag_format(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Ground-truth errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reward", [gui_grounding, multi_choice, temporal_grounding, detection])
def test_missing_column_names_it(reward: Reward) -> None:
    with pytest.raises(ValueError, match=r"'solution'.*\['answer'\]"):
        reward(["x"], answer=["A"], trainer_state=None, log_metric=FakeMetrics())


def test_custom_column() -> None:
    reward = MultiChoiceReward(column="gold")
    assert reward(["<answer>A</answer>"], gold=["A"], solution=["B"]) == [1.0]
    with pytest.raises(ValueError, match="'gold'"):
        reward(["<answer>A</answer>"], solution=["A"])


@pytest.mark.parametrize(
    ("reward", "good"),
    [
        (gui_grounding, GT),
        (multi_choice, "A"),
        (temporal_grounding, [0.1, 0.2]),
        (detection, [GT]),
    ],
)
def test_column_length_mismatch(reward: Reward, good: object) -> None:
    with pytest.raises(ValueError, match=r"column 'solution': expected 2 values.*got 3"):
        reward(["a", "b"], solution=[good] * 3)
    with pytest.raises(ValueError, match="column 'solution': expected one value per completion"):
        reward(["a"], solution="A")


@pytest.mark.parametrize(
    ("reward", "bad", "expected"),
    [
        (gui_grounding, "abc", "expected a box"),
        (gui_grounding, [0, 0, 0, 50], "non-degenerate"),  # degenerate GT raises (see docstring)
        (gui_grounding, [0, 0, float("nan"), 50], "expected a box"),
        (multi_choice, "", "expected option labels"),
        (multi_choice, 7, "expected option labels"),
        (temporal_grounding, [0.5, 0.1], "expected an interval"),
        (temporal_grounding, "soon", "expected an interval"),
        (detection, [[0, 0, 10]], "expected a list of boxes"),
        (detection, [[5, 5, 5, 9]], "non-degenerate"),
    ],
)
def test_bad_ground_truth_row_names_column_and_row(
    reward: Reward, bad: object, expected: str
) -> None:
    good = {
        "gui_grounding": GT,
        "multi_choice": "A",
        "temporal_grounding": [0.1, 0.2],
        "detection": [GT],
    }[reward.__name__]
    # Row 2 is bad; the error names it even though the completion there does not parse.
    with pytest.raises(ValueError, match=rf"column 'solution', row 2: .*{expected}"):
        reward(["x", "y", "no answer"], solution=[good, good, bad])


def test_none_ground_truth_means_not_applicable() -> None:
    metrics = FakeMetrics()
    rewards = gui_grounding(
        ["[0,0,100,50]", "[0,0,100,50]"], solution=[GT, None], log_metric=metrics
    )
    assert rewards == [2.0, None]
    assert multi_choice(["<answer>A</answer>"], solution=[None]) == [None]
    assert temporal_grounding([TIME_OK], solution=[None], video_length=[None]) == [None]
    assert detection(["[]"], solution=[None]) == [None]


# ---------------------------------------------------------------------------------------------
# GUI-G² values (spec §6 items 1 and 4)
# ---------------------------------------------------------------------------------------------


def test_gui_grounding_spec_item_4() -> None:
    gt = [1122, 18, 1206, 48]
    assert gui_grounding(["[1122, 18, 1206, 48]"], solution=[gt]) == [2.0]
    assert gui_grounding(["[1122, 18, 1206, 48]"], solution=["[1122, 18, 1206, 48]"]) == [2.0]
    assert gui_grounding(["I cannot find it."], solution=[gt]) == [0.0]
    think = "<think>..</think><answer>[1,2,3,4]</answer>"
    assert gui_grounding([think], solution=[[1, 2, 3, 4]]) == [2.0]


@pytest.mark.parametrize(
    ("pred", "total"),
    [
        ("[0,0,100,50]", 2.0),
        ("[25,12.5,75,37.5]", 1.8),
        ("[-50,-25,150,75]", 1.8),
        ("[40,15,60,35]", 1.515026),
        ("[50,0,150,50]", 1.489028),
        ("[50,25,150,75]", 1.146680),
        ("[100,0,200,50]", 0.741866),
    ],
)
def test_gui_grounding_spec_table(pred: str, total: float) -> None:
    assert_allclose(scores(gui_grounding([pred], solution=[GT])), [total], atol=1e-6)


def test_gui_grounding_weights_and_rounding() -> None:
    point_only = GuiGroundingReward(w_coverage=0.0)
    assert_allclose(
        scores(point_only(["[50,0,150,50]"], solution=[GT])), [np.exp(-0.5)], atol=1e-12
    )
    far = "[500, 0, 600, 50]"  # dx = 10σ
    assert gui_grounding([far], solution=[GT])[0] > 0.0  # type: ignore[operator]
    assert GuiGroundingReward(round_digits=3)([far], solution=[GT]) == [0.0]
    rounded = GuiGroundingReward(round_digits=3)(["[50,0,150,50]"], solution=[GT])
    assert rounded == [pytest.approx(0.607 + 0.882)]


# ---------------------------------------------------------------------------------------------
# Multiple choice (TW-GRPO T3)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gold", "soft", "binary"),
    [
        ("A", "A,B,D", 1 / 3, 0.0),
        ("A,B", "A,B,D", 2 / 3, 0.0),
        ("A,B,D", "A,B,D", 1.0, 1.0),
        ("B, A", "A,B", 1.0, 1.0),
        ("A,C", "A,B,D", 0.0, 0.0),
        ("A,A", "A,B", 0.5, 0.0),
        ("", "A", 0.0, 0.0),
    ],
)
def test_multi_choice_table(pred: str, gold: str, soft: float, binary: float) -> None:
    completion = f"<think>hmm</think><answer>{pred}</answer>"
    assert_allclose(scores(multi_choice([completion], solution=[gold])), [soft])
    binary_reward = MultiChoiceReward(mode="binary")
    assert binary_reward([completion], solution=[f"<answer>{gold}</answer>"]) == [binary]
    assert_allclose(scores(multi_choice([completion], solution=[gold.split(",")])), [soft])


# ---------------------------------------------------------------------------------------------
# Temporal grounding (Temporal-R1 T6)
# ---------------------------------------------------------------------------------------------


def test_temporal_grounding_fig1_example() -> None:
    gt = [85 / 200, 139.5 / 200]
    rewards = temporal_grounding(
        [TIME_OK, TIME_UNQUOTED], solution=[gt, gt], video_length=[200.0, 200]
    )
    assert_allclose(scores(rewards), [0.8255814, 0.3255814], atol=1e-7)


def test_temporal_grounding_without_length_is_unnormalised() -> None:
    rewards = temporal_grounding([TIME_OK], solution=[[85, 139.5]])
    assert_allclose(scores(rewards), [0.8255814], atol=1e-7)
    pair = "<answer>[0.2, 0.5]</answer>"
    assert_allclose(
        scores(temporal_grounding([pair], solution=[[0.3, 0.6]])), [0.25]
    )  # 0.5·0.5, fmt 0
    weighted = TemporalGroundingReward(w_iou=1.0, w_format=0.0)
    assert_allclose(scores(weighted([pair], solution=["[0.3, 0.6]"])), [0.5])


def test_temporal_grounding_reversed_and_custom_length_column() -> None:
    reversed_answer = '<think>t</think><answer>{"start_time": "127", "end_time": "75"}</answer>'
    reward = TemporalGroundingReward(length_column="duration")
    rewards = reward([reversed_answer, TIME_OK], solution=[[0.4, 0.7]] * 2, duration=[200, 200])
    assert rewards[0] == 0.5  # tIoU 0, format 1
    assert rewards[1] == pytest.approx(0.5 * (0.635 - 0.4) / (0.7 - 0.375) + 0.5)


@pytest.mark.parametrize("bad", [0, -3.0, float("nan"), float("inf"), "long", [1]])
def test_temporal_grounding_bad_length_names_row(bad: object) -> None:
    with pytest.raises(ValueError, match=r"column 'video_length', row 1: expected a video length"):
        temporal_grounding([TIME_OK, TIME_OK], solution=[[0.1, 0.2]] * 2, video_length=[10, bad])


def test_temporal_grounding_length_column_mismatch() -> None:
    with pytest.raises(ValueError, match=r"column 'video_length': expected 1 values"):
        temporal_grounding([TIME_OK], solution=[[0.1, 0.2]], video_length=[10, 10])


# ---------------------------------------------------------------------------------------------
# Detection and looking (DIP-R1 §6 items 5-6)
# ---------------------------------------------------------------------------------------------


def _dip(look: str, answer: str) -> str:
    return f"<think>t</think><look>{look}</look><answer>{answer}</answer>"


CROWD = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]


def test_detection_spec_item_5() -> None:
    answer = _dip("[0,0,5,5]", "[[0,0,10,10],[21,0,31,10],[80,80,90,90]]")
    assert_allclose(scores(detection([answer], solution=[CROWD])), [0.583333], atol=1e-6)
    recall_heavy = DetectionReward(w_precision=0.3, w_recall=0.7)
    assert_allclose(scores(recall_heavy([answer], solution=[str(CROWD)])), [0.55], atol=1e-12)
    assert detection([f"<answer>{CROWD}</answer>"], solution=[CROWD]) == [1.0]
    # The look box is not an answer box, and a wrong answer block is not rescued by other text.
    assert detection(["[0,0,10,10] <answer>nothing</answer>"], solution=[CROWD]) == [0.0]


def test_detection_empty_sets_and_overflowing_boxes() -> None:
    assert detection(["<answer>[]</answer>"], solution=[[]]) == [1.0]
    assert detection(["<answer>[]</answer>"], solution=[CROWD]) == [0.0]
    # An overflowing box was emitted: it is a false positive, not silently dropped.
    overflow = "<answer>[[0,0,10,10],[1e400,0,1,1]]</answer>"
    assert_allclose(scores(detection([overflow], solution=[[CROWD[0]]])), [0.5 * 0.5 + 0.5 * 1.0])


A, B, C = [0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]
# Cluster A found by 4/4 rollouts (v = 0), B by 2/4 (v = 0.25), C by 1/4 (v = 0.1875).
_ANSWERS = [[A, B, C], [A, B], [A], [A]]


def test_looking_spec_item_6() -> None:
    looks = ["[19,0,31,10]", "[19,0,31,10] [39,0,51,10]", "[0,0,10,10]", "[]"]
    texts = [_dip(look, str(ans)) for look, ans in zip(looks, _ANSWERS, strict=True)]
    reward = LookingReward(num_generations=4)
    assert reward(texts) == [0.5, 1.0, 0.0, 0.0]
    assert looking(texts, num_generations=4) == [0.5, 1.0, 0.0, 0.0]
    assert looking(conversational(texts), num_generations=4) == [0.5, 1.0, 0.0, 0.0]


def test_looking_groups_are_scored_separately() -> None:
    agree = [_dip("[19,0,31,10]", str([A])) for _ in range(4)]  # U empty → empty_value
    looks = ["[19,0,31,10]", "[19,0,31,10] [39,0,51,10]", "[0,0,10,10]", "[]"]
    mixed = [_dip(look, str(ans)) for look, ans in zip(looks, _ANSWERS, strict=True)]
    reward = LookingReward(num_generations=4, empty_value=0.25)
    assert reward(agree + mixed) == [0.25] * 4 + [0.5, 1.0, 0.0, 0.0]
    # One group of 8 is a different computation: B is then 2/8 (v = 0.1875), still uncertain.
    assert LookingReward(num_generations=8)(agree + mixed) != reward(agree + mixed)


def test_looking_failed_completion_scores_zero_but_its_answer_counts() -> None:
    # Rollout 3 has no <look>: it scores 0 and is counted, but its answer [A] still shapes the
    # clusters (A is then found by 2/4 rollouts, i.e. uncertain).
    texts = [_dip("[0,0,10,10]", str([A])), _dip("[0,0,10,10]", "[]"), _dip("[]", "[]")]
    texts.append(f"<think>t</think><answer>{[A]}</answer>")
    metrics = FakeMetrics()
    assert LookingReward(num_generations=4)(texts, log_metric=metrics) == [1.0, 1.0, 0.0, 0.0]
    assert metrics.calls == [("looking/parse_failures", 1)]


def test_looking_group_size_errors() -> None:
    texts = [_dip("[]", "[]")] * 6
    with pytest.raises(ValueError, match=r"6 completions.*not a multiple of num_generations=4"):
        LookingReward(num_generations=4)(texts)
    with pytest.raises(ValueError, match="num_generations"):
        looking(texts)
    with pytest.raises(ValueError, match="num_generations"):
        looking(texts, num_generations=0)
    with pytest.raises(ValueError, match="num_generations"):
        looking(texts, num_generations=[4] * 6)
    assert looking(texts, num_generations=3) == [0.0] * 6
    # The instance's own group size wins over the call's.
    assert LookingReward(num_generations=2)(texts, num_generations=4) == [0.0] * 6


# ---------------------------------------------------------------------------------------------
# Format wrappers
# ---------------------------------------------------------------------------------------------


def test_tag_format_and_dip_format_wrappers() -> None:
    three = TagFormatReward(("think", "look", "answer"), name="tla")
    good = _dip("[1,1,5,5]", "[[1,1,5,5]]")
    assert three([good, "<think>a</think><answer>b</answer>"]) == [1.0, 0.0]
    assert tag_format(["<think>a</think><answer>b</answer>", good]) == [1.0, 0.0]
    strict = ThinkLookAnswerFormatReward(strict=True)
    assert strict([good, _dip("none", "[[1,1,5,5]]")]) == [1.0, 0.0]
    assert think_look_answer_format([_dip("none", "[[1,1,5,5]]")]) == [1.0]


# ---------------------------------------------------------------------------------------------
# Never raise on model text
# ---------------------------------------------------------------------------------------------

_text = st.one_of(
    st.text(max_size=60),
    st.lists(
        st.sampled_from(
            [
                "<think>",
                "</think>",
                "<look>",
                "</look>",
                "<answer>",
                "</answer>",
                "[0,0,10,10]",
                "[1e400,0,1,1]",
                "A",
                ",",
                "B",
                '{"start_time": "1", "end_time": "2"}',
                "[0.1,0.2]",
                " ",
            ]
        ),
        max_size=12,
    ).map("".join),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_text, min_size=2, max_size=2))
def test_rewards_never_raise_on_model_text(texts: list[str]) -> None:
    checks: list[tuple[Reward, dict[str, Any], float]] = [
        (gui_grounding, {"solution": [GT] * 2}, 2.0),
        (multi_choice, {"solution": ["A,B"] * 2}, 1.0),
        (temporal_grounding, {"solution": [[0.1, 0.2]] * 2, "video_length": [2.0, 2.0]}, 1.0),
        (detection, {"solution": [CROWD] * 2}, 1.0),
        (looking, {"num_generations": 2}, 1.0),
        (tag_format, {}, 1.0),
        (think_look_answer_format, {}, 1.0),
    ]
    for reward, columns, top in checks:
        metrics = FakeMetrics()
        rewards = reward(texts, log_metric=metrics, **columns)
        assert len(rewards) == 2
        for r in rewards:
            assert r is not None and 0.0 <= r <= top + 1e-12
        assert 0 <= metrics.calls[0][1] <= 2


# ---------------------------------------------------------------------------------------------
# Ground truth is validated by the parser, with the column and row
# ---------------------------------------------------------------------------------------------

_DEGENERATE = "expected non-degenerate boxes (x1 < x2 and y1 < y2, with a finite width and height)"


@pytest.mark.parametrize(
    ("reward", "bad", "shown"),
    [
        (gui_grounding, [0, 0, 0, 50], "[0, 0, 0, 50]"),
        (gui_grounding, [-1e308, 0, 1e308, 1], "[-1e+308, 0, 1e+308, 1]"),
        (detection, [[5, 5, 5, 9]], "[[5, 5, 5, 9]]"),
        (detection, "[[0, 0, 1, 1], [0, 3, 1, 2]]", "'[[0, 0, 1, 1], [0, 3, 1, 2]]'"),
    ],
)
def test_degenerate_ground_truth_message(reward: Reward, bad: object, shown: str) -> None:
    good = GT if reward is gui_grounding else [GT]
    with pytest.raises(ValueError) as info:
        reward(["[0, 0, 1, 1]", "no answer"], solution=[good, bad])
    assert str(info.value) == f"column 'solution', row 1: {_DEGENERATE}, got {shown}"


@pytest.mark.parametrize(
    ("alpha", "box"),
    [
        (0.5, [0.0, 0.0, 5e-324, 5e-324]),  # σ = α · 5e-324 underflows to 0
        (2.0, [-8e307, 0.0, 8e307, 1.0]),  # the width is finite, σ = 2 · 1.6e308 overflows
    ],
)
def test_gui_grounding_sigma_out_of_range_names_row(alpha: float, box: list[float]) -> None:
    reward = GuiGroundingReward(alpha=alpha)
    with pytest.raises(ValueError) as info:
        reward(["[0, 0, 100, 50]", "no box"], solution=[GT, box])
    assert str(info.value) == (
        f"column 'solution', row 1: box width/height times alpha={alpha} must be a finite "
        f"number > 0 (it overflows or underflows float64), got the box {box}"
    )


def test_multi_choice_gold_must_be_single_tokens() -> None:
    with pytest.raises(ValueError) as info:
        multi_choice(["<answer>A</answer>", "x"], solution=["A", "The answer is A"])
    assert str(info.value) == (
        "column 'solution', row 1: expected option labels such as 'A,B' or ['A', 'B'], each a "
        "single token of letters/digits, got 'The answer is A'"
    )


def test_multi_choice_and_choice_reward_normalise_alike() -> None:
    assert multi_choice(["<answer>A B</answer>"], solution=["AB"]) == [1.0]
    assert choice_reward("A B", "AB") == 1.0
    assert multi_choice(["<answer>a, b</answer>"], solution=[["A", "B"]]) == [1.0]


# ---------------------------------------------------------------------------------------------
# Ground truth passed positionally
# ---------------------------------------------------------------------------------------------


def test_ground_truth_positionally() -> None:
    assert gui_grounding(["[0, 0, 100, 50]", "none"], [GT, GT]) == [2.0, 0.0]
    assert multi_choice(["<answer>A</answer>"], ["A,B"]) == [0.5]
    assert_allclose(
        scores(temporal_grounding([TIME_OK], [[85 / 200, 139.5 / 200]], video_length=[200])),
        [0.8255814],
        atol=1e-7,
    )
    assert detection(["<answer>[]</answer>"], [[]]) == [1.0]
    # The positional value stands for the reward's own column.
    assert MultiChoiceReward(column="gold")(["<answer>A</answer>"], ["A"], solution=["B"]) == [1.0]
    metrics = FakeMetrics()
    assert gui_grounding(["x"], [GT], log_metric=metrics) == [0.0]
    assert metrics.calls == [("gui_grounding/parse_failures", 1)]


def test_trl_keyword_call_is_unchanged() -> None:
    # TRL passes everything by keyword, completions included; a column may be named
    # "ground_truth" without clashing with the positional parameter.
    reward = MultiChoiceReward(column="ground_truth")
    assert reward(prompts=["p"], completions=["<answer>A</answer>"], ground_truth=["A"]) == [1.0]
    assert gui_grounding(completions=["[0, 0, 100, 50]"], solution=[GT]) == [2.0]
    assert tag_format(completions=["<think>x</think><answer>A</answer>"]) == [1.0]


def test_ground_truth_given_twice_is_a_type_error() -> None:
    with pytest.raises(TypeError) as info:
        gui_grounding(["[0, 0, 100, 50]"], [GT], solution=[GT])
    assert str(info.value) == (
        "reward 'gui_grounding' got its ground-truth column 'solution' both positionally and by "
        "keyword"
    )


@pytest.mark.parametrize(
    "reward", [tag_format, think_look_answer_format, LookingReward(num_generations=1)]
)
def test_ground_truth_for_a_reward_without_one_is_a_type_error(reward: Reward) -> None:
    with pytest.raises(TypeError) as info:
        reward(["<think>x</think><answer>A</answer>"], ["A"])
    assert str(info.value) == (
        f"reward {reward.__name__!r} reads no ground-truth column, but got a second positional "
        "argument"
    )


def test_completions_missing_or_given_twice() -> None:
    with pytest.raises(TypeError) as info:
        gui_grounding(solution=[GT])
    assert str(info.value) == "reward 'gui_grounding': missing the completions argument"
    with pytest.raises(TypeError) as info:
        gui_grounding(["x"], completions=["x"], solution=[GT])
    assert str(info.value) == (
        "reward 'gui_grounding': got completions both positionally and by keyword"
    )


# ---------------------------------------------------------------------------------------------
# Temporal grounding: video lengths and normalised ground truth
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("completion", ["no answer", 42, TIME_OK])
def test_temporal_grounding_bad_length_raises_whether_or_not_the_row_parsed(
    completion: object,
) -> None:
    with pytest.raises(ValueError) as info:
        temporal_grounding([TIME_OK, completion], solution=[[0.1, 0.2]] * 2, video_length=[10, 0])
    assert str(info.value) == (
        "column 'video_length', row 1: expected a video length in seconds (a finite number > 0), "
        "got 0"
    )


@pytest.mark.parametrize("gt", [[85.0, 139.5], [-0.1, 0.5], [0.5, 1.5]])
def test_temporal_grounding_gt_must_be_normalised_with_a_length(gt: list[float]) -> None:
    with pytest.raises(ValueError) as info:
        temporal_grounding(["no answer", TIME_OK], solution=[[0.1, 0.2], gt], video_length=[9, 200])
    assert str(info.value) == (
        f"column 'solution', row 1: expected an interval within [0, 1], got {gt}; the ground "
        "truth must be normalised by the video length when column 'video_length' is given"
    )


def test_temporal_grounding_unnormalised_gt_without_a_length() -> None:
    # A row whose length is None compares prediction and ground truth in the same units.
    rewards = temporal_grounding(
        [TIME_OK, TIME_OK, "none"],
        solution=[[85, 139.5], [0.0, 1.0], [0.2, 0.3]],
        video_length=[None, 200, 200],
    )
    assert_allclose(scores(rewards), [0.8255814, 0.5 * (0.635 - 0.375) + 0.5, 0.0], atol=1e-7)
