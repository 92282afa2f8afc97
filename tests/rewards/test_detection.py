"""Tests for varl.rewards.detection: DIP-R1 (reconstructed) detection and looking rewards."""

from __future__ import annotations

import doctest
import importlib
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from varl.rewards.detection import (
    detection_precision_recall,
    detection_reward,
    f_beta_detection_reward,
    looking_reward,
    match_boxes,
)
from varl.rewards.spatial import box_iou

# Spec gui_g2_dip_r1 §6 item 5.
T: list[list[float]] = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]
P: list[list[float]] = [[0, 0, 10, 10], [21, 0, 31, 10], [80, 80, 90, 90]]  # IoU 1, 9/11, 0


# ---------------------------------------------------------------------------------------------
# Matching, precision / recall, weighted and F-beta rewards
# ---------------------------------------------------------------------------------------------


def test_spec_values() -> None:
    assert detection_precision_recall(P, T) == pytest.approx((2 / 3, 1 / 2))
    assert_allclose(detection_reward(P, T), 0.583333, atol=1e-6)
    assert_allclose(detection_reward(P, T, w_precision=0.3, w_recall=0.7), 0.55, atol=1e-12)
    assert_allclose(f_beta_detection_reward(P, T), 0.571429, atol=1e-6)
    assert_allclose(f_beta_detection_reward(P, T, beta=2.0), 10 / 19)
    assert_allclose(float(box_iou(P[1], T[1])), 9 / 11)


def test_match_boxes_pairs() -> None:
    pred_idx, gt_idx = match_boxes(P, T)
    assert pred_idx.tolist() == [0, 1]
    assert gt_idx.tolist() == [0, 1]
    assert pred_idx.dtype == np.intp and gt_idx.dtype == np.intp
    # A higher threshold drops the 9/11 pair.
    assert match_boxes(P, T, iou_threshold=0.9)[1].tolist() == [0]


def test_matching_maximises_number_of_pairs() -> None:
    # Plain Hungarian on 1 - IoU pairs (0 -> 1, 1 -> 0) with IoUs 0.4 and 1/3 (sum 0.733 beats
    # the 0.667 of the other assignment) and keeps nothing; the gated cost keeps pred 1 -> gt 1.
    pred = [[0, 0, 2, 1], [1, 0, 6, 1]]
    gt = [[4, 0, 7, 1], [0, 0, 5, 1]]
    pred_idx, gt_idx = match_boxes(pred, gt)
    assert (pred_idx.tolist(), gt_idx.tolist()) == ([1], [1])
    assert detection_precision_recall(pred, gt) == (0.5, 0.5)


def test_edge_cases() -> None:
    assert detection_reward([], T) == 0.0  # P = ∅
    assert detection_precision_recall([], T) == (0.0, 0.0)
    assert detection_reward(T, T) == 1.0  # P = T
    assert f_beta_detection_reward(T, T) == 1.0
    assert detection_precision_recall([], []) == (1.0, 1.0)  # both empty
    assert f_beta_detection_reward(np.zeros((0, 4)), np.zeros((0, 4))) == 1.0
    assert detection_precision_recall(T, []) == (0.0, 0.0)  # boxes for an empty GT
    assert f_beta_detection_reward([], T) == 0.0
    assert match_boxes([], T)[0].tolist() == []
    assert match_boxes(T, [])[1].dtype == np.intp


def test_duplicate_lowers_precision_only() -> None:
    precision, recall = detection_precision_recall([*T, T[0]], T)
    assert (precision, recall) == (4 / 5, 1.0)


def test_non_finite_predictions_are_false_positives() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pr = detection_precision_recall([T[0], [np.nan, 0, 10, 10], [0, 0, np.inf, 10]], [T[0]])
    assert pr == (1 / 3, 1.0)


def test_f_beta_limits() -> None:
    precision, recall = detection_precision_recall(P, T)
    assert_allclose(f_beta_detection_reward(P, T, beta=1e200), recall)
    assert_allclose(f_beta_detection_reward(P, T, beta=1e-200), precision)


@pytest.mark.parametrize(
    ("w_p", "w_r"), [(0.5, 0.6), (-0.5, 1.5), (np.nan, 0.5), (1.0, 1.0), (0.0, 0.0)]
)
def test_bad_weights_raise(w_p: float, w_r: float) -> None:
    with pytest.raises(ValueError, match="w_"):
        detection_reward(P, T, w_precision=w_p, w_recall=w_r)


def test_weights_at_the_ends() -> None:
    assert detection_reward(P, T, w_precision=1.0, w_recall=0.0) == pytest.approx(2 / 3)
    assert detection_reward(P, T, w_precision=0.0, w_recall=1.0) == 0.5


@pytest.mark.parametrize(
    "fn", [match_boxes, detection_precision_recall, detection_reward, f_beta_detection_reward]
)
def test_bad_input(fn: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="gt"):
        fn(P, [[0, 0, np.nan, 10]])
    with pytest.raises(ValueError, match="gt"):
        fn(P, [[0, 0, 0, 10]])  # degenerate GT box
    with pytest.raises(ValueError, match="gt"):
        fn(P, [[0, 0, 10]])
    with pytest.raises(ValueError, match="pred"):
        fn([0, 0, 10, 10], T)  # a single box, not a set
    with pytest.raises(TypeError, match="pred"):
        fn([["a", "b", "c", "d"]], T)
    for threshold in (0.0, 1.5, np.nan):
        with pytest.raises(ValueError, match="iou_threshold"):
            fn(P, T, iou_threshold=threshold)


@pytest.mark.parametrize("beta", [0.0, -1.0, np.inf, np.nan])
def test_bad_beta_raises(beta: float) -> None:
    with pytest.raises(ValueError, match="beta"):
        f_beta_detection_reward(P, T, beta=beta)


def test_huge_coordinates_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = [[-1.7e308, -1.7e308, 1.7e308, 1.7e308], [1e300, 1e300, 1.5e300, 1.5e300]]
        assert detection_precision_recall(big, big) == (1.0, 1.0)


@st.composite
def box_sets(draw: st.DrawFn, max_size: int = 4) -> np.ndarray:
    n = draw(st.integers(0, max_size))
    xy = draw(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=n, max_size=n))
    wh = draw(st.lists(st.tuples(st.integers(1, 8), st.integers(1, 8)), min_size=n, max_size=n))
    boxes = [[x, y, x + w, y + h] for (x, y), (w, h) in zip(xy, wh, strict=True)]
    return np.array(boxes, dtype=float).reshape(n, 4)


def _max_matching(eligible: np.ndarray) -> int:
    """Brute-force maximum number of one-to-one eligible pairs."""
    n, m = eligible.shape
    if n > m:
        return _max_matching(eligible.T)
    return max(
        (
            sum(bool(eligible[i, j]) for i, j in enumerate(cols))
            for cols in itertools.permutations(range(m), n)
        ),
        default=0,
    )


@settings(max_examples=60, deadline=None)
@given(box_sets(), box_sets(), st.sampled_from([0.3, 0.5, 0.7]))
def test_matching_properties(pred: np.ndarray, gt: np.ndarray, threshold: float) -> None:
    pred_idx, gt_idx = match_boxes(pred, gt, iou_threshold=threshold)
    assert len(set(pred_idx.tolist())) == len(pred_idx)  # one-to-one
    assert len(set(gt_idx.tolist())) == len(gt_idx)
    if len(pred_idx):
        assert np.all(box_iou(pred[pred_idx], gt[gt_idx]) >= threshold)
    eligible = box_iou(pred[:, None, :], gt[None, :, :]) >= threshold
    assert len(pred_idx) == _max_matching(eligible.reshape(len(pred), len(gt)))

    precision, recall = detection_precision_recall(pred, gt, iou_threshold=threshold)
    assert 0.0 <= precision <= 1.0 and 0.0 <= recall <= 1.0
    reward = detection_reward(pred, gt, iou_threshold=threshold, w_precision=0.3, w_recall=0.7)
    assert min(precision, recall) - 1e-12 <= reward <= max(precision, recall) + 1e-12
    f1 = f_beta_detection_reward(pred, gt, iou_threshold=threshold)
    if precision + recall > 0:
        assert_allclose(f1, 2 * precision * recall / (precision + recall), atol=1e-12)
    # Reordering the predictions changes nothing.
    shuffled = detection_precision_recall(pred[::-1], gt, iou_threshold=threshold)
    assert shuffled == pytest.approx((precision, recall))


# ---------------------------------------------------------------------------------------------
# Variance-guided looking reward
# ---------------------------------------------------------------------------------------------

A: list[float] = [0, 0, 10, 10]
B: list[float] = [20, 0, 30, 10]
C: list[float] = [40, 0, 50, 10]
# Spec §6 item 6: A found by 4/4 rollouts (v = 0), B by 2/4 (v = 0.25), C by 1/4 (v = 0.1875).
ANSWERS = [[A, B, C], [A, B], [A], [A]]


def test_look_reward_spec_values() -> None:
    looks = [[B], [B, C], [A], []]  # B only, B and C, A only, nothing
    assert_allclose(looking_reward(looks, ANSWERS), [0.5, 1.0, 0.0, 0.0])
    assert_allclose(looking_reward(looks, ANSWERS, inspect="iou"), [0.5, 1.0, 0.0, 0.0])
    # A higher variance threshold keeps B alone.
    assert_allclose(looking_reward(looks, ANSWERS, variance_threshold=0.2), [1.0, 1.0, 0.0, 0.0])


def test_look_reward_many_clusters() -> None:
    # 200 disjoint boxes; rollout 0 finds all, rollout 1 the first 100 (p = 1, v = 0), so the
    # last 100 clusters are uncertain (p = 1/2). Rollout 0 looks at 50 of them, rollout 1 at one.
    boxes = np.array([[20.0 * k, 0.0, 20.0 * k + 10.0, 10.0] for k in range(200)])
    looks = [boxes[100:150] + 1.0, boxes[[0, 199]]]
    assert_allclose(looking_reward(looks, [boxes, boxes[:100]]), [0.5, 0.01])
    # Listing rollout 1's boxes twice changes nothing: a rollout counts once per cluster.
    assert_allclose(
        looking_reward(looks, [boxes, np.concatenate([boxes[:100], boxes[:100]])]), [0.5, 0.01]
    )


def test_look_reward_agreement_gives_empty_value() -> None:
    answers = [[A, B], [A, B], [A, B]]
    looks = [[A], [B], []]
    assert_allclose(looking_reward(looks, answers), [0.0, 0.0, 0.0])
    assert_allclose(looking_reward(looks, answers, empty_value=0.25), [0.25, 0.25, 0.25])
    assert_allclose(looking_reward([[], []], [[], []], empty_value=-1.0), [-1.0, -1.0])


def test_look_reward_inspection_modes() -> None:
    everything = [[-100, -100, 200, 200]]
    looks = [everything, everything, [[24, 4, 26, 6]], [[19, -1, 31, 11]]]
    # A huge box contains every centre but has a small IoU with the cluster boxes.
    assert_allclose(looking_reward(looks, ANSWERS), [1.0, 1.0, 0.5, 0.5])
    assert_allclose(looking_reward(looks, ANSWERS, inspect="iou"), [0.0, 0.0, 0.0, 0.5])
    assert_allclose(
        looking_reward(looks, ANSWERS, inspect="iou", look_iou=0.001), [1.0, 1.0, 0.5, 0.5]
    )


def test_look_reward_uses_the_mean_box() -> None:
    answers = [[[20, 0, 30, 10]], [[22, 0, 32, 10]], [], []]  # mean [21, 0, 31, 10]
    looks = [[[25.5, 4, 26.5, 6]], [[24.5, 4, 25.5, 6]], [], []]  # around (26, 5) / (25, 5)
    assert_allclose(looking_reward(looks, answers), [1.0, 0.0, 0.0, 0.0])


def test_look_reward_clustering_rules() -> None:
    s1, s2, x = [0, 0, 10, 10], [4, 0, 14, 10], [2, 0, 12, 10]  # IoU(s1, s2) = 0.43
    # x overlaps both seeds with IoU 2/3 and joins the first, s1: p(s1) = 1, p(s2) = 1/2.
    assert_allclose(looking_reward([[s2], [s1]], [[s1, s2], [x]], inspect="iou"), [1.0, 0.0])
    # A rollout counts once per cluster: p = 1/2 with two boxes from rollout 0.
    a_again: list[float] = [0, 0, 10, 11]
    assert_allclose(looking_reward([[A], []], [[A, a_again], []]), [1.0, 0.0])


def test_look_reward_ignores_non_finite_boxes() -> None:
    nan_box = [np.nan, 0, 10, 10]
    answers = [[A, B, C, nan_box], [A, B], [A], [A, [0, np.inf, 1, 1]]]
    looks = [[B, nan_box], [B, C], [A], [nan_box]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = looking_reward(looks, answers)
    assert_allclose(out, [0.5, 1.0, 0.0, 0.0])


def test_look_reward_bad_input() -> None:
    with pytest.raises(ValueError, match="look_boxes, answer_boxes"):
        looking_reward([[A]], [[A], [B]])
    with pytest.raises(ValueError, match="answer_boxes"):
        looking_reward([], [])
    with pytest.raises(ValueError, match="inspect"):
        looking_reward([[A]], [[A]], inspect="center")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"answer_boxes\[1\]"):
        looking_reward([[A], [A]], [[A], [[0, 0, 1]]])
    with pytest.raises(ValueError, match=r"look_boxes\[0\]"):
        looking_reward([A], [[A]])
    for kwargs in (
        {"cluster_iou": 0.0},
        {"look_iou": 1.5},
        {"variance_threshold": 0.3},
        {"variance_threshold": -0.1},
        {"empty_value": np.nan},
    ):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            looking_reward([[A]], [[A]], **kwargs)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(box_sets(3), box_sets(3)), min_size=1, max_size=6))
def test_look_reward_properties(group: list[tuple[np.ndarray, np.ndarray]]) -> None:
    looks = [g[0] for g in group]
    answers = [g[1] for g in group]
    out = looking_reward(looks, answers, empty_value=0.0)
    assert out.shape == (len(group),)
    assert np.all((out >= 0.0) & (out <= 1.0))
    # Looking at every answer box (and the whole canvas) inspects every cluster.
    full = looking_reward([np.array([[-1.0, -1.0, 40.0, 40.0]])] * len(group), answers)
    assert np.all((full == 1.0) | (full == 0.0)) and len(set(full.tolist())) == 1


def test_doctests() -> None:
    assert (
        doctest.testmod(
            importlib.import_module("varl.rewards.detection"), raise_on_error=True
        ).failed
        == 0
    )


def test_look_reward_huge_boxes_without_warnings() -> None:
    huge = [1e308, 1e308, 1.7e308, 1.7e308]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = looking_reward([[huge], []], [[huge], [huge, A]])
    assert_allclose(out, [0.0, 0.0])  # the huge cluster has p = 1; A's cluster is uncertain
    out = looking_reward([[A], []], [[huge], [huge, A]])
    assert_allclose(out, [1.0, 0.0])
