"""Tests for varl.rewards.temporal: temporal IoU and the Temporal-R1 grounding score."""

from __future__ import annotations

import doctest
import importlib
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from varl.rewards.temporal import temporal_grounding_reward, temporal_iou


def test_hand_computed_values() -> None:
    assert_allclose(temporal_iou([0.2, 0.5], [0.3, 0.6]), 0.5, atol=1e-12)
    # Temporal-R1 Fig. 1: GT 85.0-139.5 s, prediction 75.0-127.0 s -> 42 / 64.5.
    assert_allclose(temporal_iou([75.0, 127.0], [85.0, 139.5]), 42 / 64.5, rtol=1e-15)
    assert_allclose(temporal_iou([75.0, 127.0], [85.0, 139.5]), 0.651163, atol=1e-6)
    # The same example normalised by a 200 s video gives the same tIoU.
    assert_allclose(temporal_iou([75 / 200, 127 / 200], [85 / 200, 139.5 / 200]), 42 / 64.5)
    assert_allclose(temporal_iou([0.0, 10.0], [2.0, 4.0]), 0.2)  # containment
    assert float(temporal_iou([1.0, 3.0], [1.0, 3.0])) == 1.0


def test_zero_cases() -> None:
    assert float(temporal_iou([0.0, 0.2], [0.3, 0.6])) == 0.0  # disjoint
    assert float(temporal_iou([0.0, 0.3], [0.3, 0.6])) == 0.0  # touching
    assert float(temporal_iou([0.5, 0.3], [0.3, 0.6])) == 0.0  # reversed prediction
    assert float(temporal_iou([0.4, 0.4], [0.4, 0.4])) == 0.0  # zero-length hull
    assert float(temporal_iou([0.4, 0.4], [0.3, 0.6])) == 0.0  # instant inside a span


def test_grounding_score_and_weights() -> None:
    pred, gt = [75.0, 127.0], [85.0, 139.5]
    assert_allclose(temporal_grounding_reward(pred, gt, 1.0), 0.8255814, atol=1e-7)
    assert_allclose(temporal_grounding_reward(pred, gt, 0.0), 0.3255814, atol=1e-7)
    assert_allclose(
        temporal_grounding_reward(pred, gt, 1.0, w_iou=1.0, w_format=0.2), 42 / 64.5 + 0.2
    )
    assert float(temporal_grounding_reward([0.5, 0.3], [0.3, 0.6], 1.0)) == 0.5


def test_batch_and_broadcasting() -> None:
    preds = np.array([[0.2, 0.5], [0.0, 0.2], [0.5, 0.3], [0.1, 0.7]])
    gts = np.array([[0.3, 0.6], [0.3, 0.6], [0.3, 0.6], [0.2, 0.4]])
    looped = [float(temporal_iou(p, g)) for p, g in zip(preds, gts, strict=True)]
    assert_allclose(temporal_iou(preds, gts), looped)
    assert_allclose(temporal_iou(preds, gts[0]), [float(temporal_iou(p, gts[0])) for p in preds])
    assert temporal_iou(preds[:, None, :], gts).shape == (4, 4)
    fmt = np.array([1.0, 0.0, 1.0, 0.5])
    expected = 0.5 * np.array(looped) + 0.5 * fmt
    assert_allclose(temporal_grounding_reward(preds, gts, fmt), expected)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_prediction_scores_zero(bad: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = temporal_iou([[bad, 0.5], [0.1, bad], [bad, bad], [0.3, 0.6]], [0.3, 0.6])
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("gt", [[np.nan, 0.5], [0.1, np.inf], [0.6, 0.3]])
def test_bad_gt_raises_naming_argument(gt: list[float]) -> None:
    with pytest.raises(ValueError, match="gt"):
        temporal_iou([0.1, 0.2], gt)


def test_shapes_types_and_options() -> None:
    with pytest.raises(ValueError, match="pred"):
        temporal_iou([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="gt"):
        temporal_iou([0.1, 0.2], [[0.1], [0.2]])
    with pytest.raises(TypeError, match="pred"):
        temporal_iou(["0.1", "0.2"], [0.1, 0.2])
    with pytest.raises(ValueError, match="format_score"):
        temporal_grounding_reward([0.1, 0.2], [0.1, 0.2], 1.5)
    with pytest.raises(ValueError, match="format_score"):
        temporal_grounding_reward([0.1, 0.2], [0.1, 0.2], np.nan)
    with pytest.raises(ValueError, match="w_iou"):
        temporal_grounding_reward([0.1, 0.2], [0.1, 0.2], 1.0, w_iou=-0.5)
    with pytest.raises(ValueError, match="w_format"):
        temporal_grounding_reward([0.1, 0.2], [0.1, 0.2], 1.0, w_format=np.inf)


@pytest.mark.parametrize(
    ("pred", "gt"),
    [
        ([-1.7e308, 1.7e308], [0.0, 1.0]),
        ([-1e300, 1e300], [-1e300, 1e300]),
        ([0.0, 1e-300], [0.0, 2e-300]),
        ([1.7e308, 1.7e308], [-1.7e308, 1.7e308]),
    ],
)
def test_extreme_values_stay_finite_without_warnings(pred: list[float], gt: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = float(temporal_iou(pred, gt))
    assert 0.0 <= value <= 1.0


def test_extreme_values_are_exact() -> None:
    assert_allclose(temporal_iou([-1e300, 1e300], [-1e300, 1e300]), 1.0)
    assert_allclose(temporal_iou([0.0, 1e-300], [0.0, 2e-300]), 0.5)


def test_doctests() -> None:
    assert (
        doctest.testmod(
            importlib.import_module("varl.rewards.temporal"), raise_on_error=True
        ).failed
        == 0
    )


interval = st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)).map(sorted)
# Spans of at least 0.01, so that shifting by up to 1e3 keeps them resolvable in float64.
span = st.tuples(st.floats(-1e3, 1e3), st.floats(1e-2, 1e3)).map(lambda t: [t[0], t[0] + t[1]])


@given(interval, interval)
def test_tiou_range_symmetry_and_union_formula(p: list[float], g: list[float]) -> None:
    value = float(temporal_iou(p, g))
    assert 0.0 <= value <= 1.0
    if g[1] > g[0]:  # both orders are valid only when the prediction's span is a valid GT too
        assert_allclose(value, float(temporal_iou(g, p)), rtol=1e-12)
    inter = max(min(p[1], g[1]) - max(p[0], g[0]), 0.0)
    union = (p[1] - p[0]) + (g[1] - g[0]) - inter
    if inter > 0.0:  # overlapping: the hull is the union, so this is the true IoU
        assert_allclose(value, inter / union, rtol=1e-9)


@given(span, span, st.floats(-1e3, 1e3), st.floats(1e-3, 1e3))
def test_tiou_affine_invariance(p: list[float], g: list[float], shift: float, s: float) -> None:
    moved = float(temporal_iou(np.array(p) * s + shift, np.array(g) * s + shift))
    assert_allclose(moved, float(temporal_iou(p, g)), atol=1e-6)
