"""Tests for varl.rewards.spatial: GUI-G² Gaussian rewards and the binary baselines."""

from __future__ import annotations

import doctest
import importlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from varl.rewards.spatial import (
    box_centre,
    box_iou,
    gaussian_coverage_reward,
    gaussian_point_reward,
    gui_grounding_reward,
    hit_reward,
    iou_threshold_reward,
    point_in_box,
)

RewardFn = Callable[..., Any]

GT = np.array([0.0, 0.0, 100.0, 50.0])  # centre (50, 25), σ = (50, 25) at α = 0.5

# Spec §6 table: pred box, R_point, R_cov, R_total, hit, IoU (α = 0.5, GT above).
TABLE = [
    ([0, 0, 100, 50], 1.0, 1.0, 2.0, 1.0, 1.0),
    ([25, 12.5, 75, 37.5], 1.0, 0.8, 1.8, 1.0, 0.25),
    ([-50, -25, 150, 75], 1.0, 0.8, 1.8, 1.0, 0.25),
    ([40, 15, 60, 35], 1.0, 0.515026, 1.515026, 1.0, 0.08),
    ([50, 0, 150, 50], np.exp(-0.5), np.exp(-1 / 8), 1.489028, 1.0, 1 / 3),
    ([50, 25, 150, 75], np.exp(-1.0), np.exp(-1 / 4), 1.146680, 1.0, 1250 / 8750),
    ([100, 0, 200, 50], np.exp(-2.0), np.exp(-1 / 2), 0.741866, 0.0, 0.0),
]


# ---------------------------------------------------------------------------------------------
# Exact values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pred", "point", "cov", "total", "hit", "iou"), TABLE)
def test_spec_table(
    pred: list[float], point: float, cov: float, total: float, hit: float, iou: float
) -> None:
    assert_allclose(gaussian_point_reward(pred, GT), point, atol=1e-6)
    assert_allclose(gaussian_coverage_reward(pred, GT), cov, atol=1e-6)
    assert_allclose(gui_grounding_reward(pred, GT), total, atol=1e-6)
    assert_allclose(hit_reward(pred, GT), hit)
    assert_allclose(box_iou(pred, GT), iou, atol=1e-4)


def test_spec_table_as_one_batch() -> None:
    preds = np.array([row[0] for row in TABLE], dtype=float)
    assert_allclose(gaussian_point_reward(preds, GT), [row[1] for row in TABLE], atol=1e-6)
    assert_allclose(gaussian_coverage_reward(preds, GT), [row[2] for row in TABLE], atol=1e-6)
    assert_allclose(gui_grounding_reward(preds, GT), [row[3] for row in TABLE], atol=1e-6)
    assert_allclose(hit_reward(preds, GT), [row[4] for row in TABLE])
    assert_allclose(box_iou(preds, GT), [row[5] for row in TABLE], atol=1e-12)


def test_half_and_double_size_coverage_is_exactly_point_eight() -> None:
    # Per axis sqrt(2 · 0.5 / 1.25) = sqrt(0.8); two axes give 0.8.
    assert_allclose(gaussian_coverage_reward([25, 12.5, 75, 37.5], GT), 0.8, rtol=1e-15)
    assert_allclose(gaussian_coverage_reward([-50, -25, 150, 75], GT), 0.8, rtol=1e-15)


def test_point_reward_at_edge_and_corner() -> None:
    assert_allclose(gaussian_point_reward([100.0, 25.0], GT), np.exp(-0.5), rtol=1e-15)
    assert_allclose(gaussian_point_reward([50.0, 0.0], GT), np.exp(-0.5), rtol=1e-15)
    assert_allclose(gaussian_point_reward([0.0, 50.0], GT), np.exp(-1.0), rtol=1e-15)


def test_alpha_scales_sigma() -> None:
    # α = 1 puts the edge at 0.5σ: exp(-1/2 · 0.25).
    assert_allclose(gaussian_point_reward([100.0, 25.0], GT, alpha=1.0), np.exp(-0.125))


def test_weights_of_total() -> None:
    pred = [50, 25, 150, 75]
    expected = 0.3 * np.exp(-1.0) + 2.0 * np.exp(-0.25)
    assert_allclose(gui_grounding_reward(pred, GT, w_point=0.3, w_coverage=2.0), expected)
    assert_allclose(gui_grounding_reward(pred, GT, w_coverage=0.0), np.exp(-1.0))


def _gauss_2d(x: np.ndarray, y: np.ndarray, box: np.ndarray, alpha: float) -> np.ndarray:
    """Normalised axis-aligned Gaussian density of a box, on a grid."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    sx, sy = alpha * abs(box[2] - box[0]), alpha * abs(box[3] - box[1])
    density: np.ndarray = np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))
    normalised: np.ndarray = density / (2 * np.pi * sx * sy)
    return normalised


@pytest.mark.parametrize(
    "pred", [[40.0, 10.0, 90.0, 45.0], [-30.0, 20.0, 60.0, 90.0], [95.0, -5.0, 115.0, 5.0]]
)
def test_coverage_equals_numerical_bhattacharyya_integral(pred: list[float]) -> None:
    pred_arr = np.array(pred)
    xs = np.linspace(-400.0, 500.0, 1801)
    ys = np.linspace(-400.0, 450.0, 1701)
    x, y = np.meshgrid(xs, ys, indexing="xy")
    integrand = np.sqrt(_gauss_2d(x, y, pred_arr, 0.5) * _gauss_2d(x, y, GT, 0.5))
    numeric = integrand.sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert_allclose(gaussian_coverage_reward(pred_arr, GT), numeric, atol=1e-4)


def test_iou_threshold_and_hit_baselines() -> None:
    assert float(hit_reward([50, 0, 150, 50], GT)) == 1.0  # centre on the edge, inclusive
    assert float(hit_reward([100, 0, 200, 50], GT)) == 0.0
    assert float(hit_reward([100.0, 50.0], GT)) == 1.0  # a point on the corner
    assert float(iou_threshold_reward([25, 12.5, 75, 37.5], GT)) == 0.0  # IoU 0.25
    assert float(iou_threshold_reward(GT, GT)) == 1.0
    assert float(iou_threshold_reward([25, 12.5, 75, 37.5], GT, threshold=0.25)) == 1.0


def test_geometry_helpers() -> None:
    assert_allclose(box_centre([[0, 0, 100, 50], [10, 20, 30, 60]]), [[50, 25], [20, 40]])
    inside = point_in_box([[0.0, 0.0], [100.0, 50.0], [100.001, 25.0], [50.0, -1e-9]], GT)
    assert inside.tolist() == [True, True, False, False]
    assert not bool(point_in_box([5.0, 5.0], [10.0, 10.0, 0.0, 0.0]))  # reversed box
    assert float(box_iou([0, 0, 0, 10], [0, 0, 0, 10])) == 0.0  # empty union
    assert float(box_iou([10, 10, 0, 0], [0, 0, 10, 10])) == 0.0  # reversed box has no area


def test_doctests() -> None:
    assert (
        doctest.testmod(importlib.import_module("varl.rewards.spatial"), raise_on_error=True).failed
        == 0
    )


# ---------------------------------------------------------------------------------------------
# Vectorisation
# ---------------------------------------------------------------------------------------------

REWARDS: list[RewardFn] = [
    gaussian_point_reward,
    gaussian_coverage_reward,
    gui_grounding_reward,
    hit_reward,
]


@pytest.mark.parametrize("fn", [*REWARDS, iou_threshold_reward])
def test_batch_equals_loop_and_broadcasts(fn: RewardFn) -> None:
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 100, size=(6, 2))
    preds = np.concatenate([corners, corners + rng.uniform(1, 60, size=(6, 2))], axis=1)
    gts = np.concatenate([corners[::-1], corners[::-1] + rng.uniform(5, 60, size=(6, 2))], axis=1)
    looped = np.array([fn(p, g) for p, g in zip(preds, gts, strict=True)])
    assert_allclose(fn(preds, gts), looped)
    # [B, 4] against one [4] GT box, and [B, 1, 4] against [M, 4] giving [B, M].
    one = np.array([fn(p, GT) for p in preds])
    assert_allclose(fn(preds, GT), one)
    grid = fn(preds[:, None, :], gts)
    assert grid.shape == (6, 6)
    assert_allclose(grid[:, 2], [fn(p, gts[2]) for p in preds])


def test_box_iou_pairwise_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], dtype=float)
    b = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [0, 0, 5, 5]], dtype=float)
    expected = [[1.0, 0.0, 0.25], [25 / 175, 25 / 175, 0.0]]
    assert_allclose(box_iou(a[:, None, :], b[None, :, :]), expected)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [*REWARDS, iou_threshold_reward])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_prediction_scores_zero(fn: RewardFn, bad: float) -> None:
    preds = np.array([[0, 0, 100, 50], [0, bad, 100, 50], [bad, bad, bad, bad]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fn(preds, GT)
    assert np.all(np.isfinite(out))
    assert_allclose(out[1:], 0.0)
    assert out[0] > 0.0


@pytest.mark.parametrize("fn", [gaussian_point_reward, hit_reward])
def test_non_finite_point_scores_zero(fn: RewardFn) -> None:
    out = fn([[np.nan, 25.0], [50.0, np.inf], [50.0, 25.0]], GT)
    assert out.tolist()[:2] == [0.0, 0.0]
    assert out.tolist()[2] == 1.0


def test_box_iou_non_finite_is_zero() -> None:
    out = box_iou(
        [[np.nan, 0.0, 1.0, 1.0], [0.0, 0.0, np.inf, 1.0], [0.0, 0.0, 1.0, 1.0]],
        [0.0, 0.0, 1.0, 1.0],
    )
    assert out.tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("fn", [*REWARDS, iou_threshold_reward])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gt_raises_naming_argument(fn: RewardFn, bad: float) -> None:
    with pytest.raises(ValueError, match="gt_box"):
        fn([0, 0, 10, 10], [0, 0, bad, 10])


@pytest.mark.parametrize("fn", [*REWARDS, iou_threshold_reward])
@pytest.mark.parametrize("gt", [[0, 0, 0, 10], [0, 0, 10, 0], [10, 0, 0, 10]])
def test_degenerate_or_reversed_gt_raises(fn: RewardFn, gt: list[float]) -> None:
    with pytest.raises(ValueError, match=r"gt_box.*non-degenerate"):
        fn([0, 0, 10, 10], gt)


@pytest.mark.parametrize("fn", [*REWARDS, iou_threshold_reward])
def test_wrong_shapes_and_types(fn: RewardFn) -> None:
    with pytest.raises(ValueError, match="gt_box"):
        fn([0, 0, 10, 10], [0, 0, 10])
    with pytest.raises(ValueError, match="pred"):
        fn([0, 0, 10], GT)
    with pytest.raises(TypeError, match="pred"):
        fn(["0", "0", "1", "1"], GT)
    with pytest.raises(TypeError, match="gt_box"):
        fn([0, 0, 10, 10], "0 0 10 10")


def test_coverage_rejects_point_prediction() -> None:
    with pytest.raises(ValueError, match="pred_box"):
        gaussian_coverage_reward([50.0, 25.0], GT)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": np.nan}, "alpha"),
        ({"w_point": -1.0}, "w_point"),
        ({"w_coverage": np.inf}, "w_coverage"),
    ],
)
def test_bad_options_raise(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        gui_grounding_reward(GT, GT, **kwargs)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, np.nan])
def test_bad_iou_threshold_raises(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        iou_threshold_reward(GT, GT, threshold=threshold)


def test_box_centre_rejects_non_finite() -> None:
    with pytest.raises(ValueError, match="box"):
        box_centre([0, 0, np.nan, 1])


@pytest.mark.parametrize(
    "pred",
    [
        [1e300, 1e300, 2e300, 2e300],
        [-1e300, -1e300, 1e300, 1e300],
        [-1.7e308, 0.0, 1.7e308, 50.0],
        [1.7e308, 1.7e308, -1.7e308, -1.7e308],
        [0.0, 0.0, 1e-300, 1e-300],
    ],
)
@pytest.mark.parametrize("gt", [GT, np.array([-1e300, -1e300, 1e300, 1e300])])
def test_huge_and_tiny_values_stay_finite_without_warnings(
    pred: list[float], gt: np.ndarray
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fns: list[RewardFn] = [*REWARDS, iou_threshold_reward]
        for fn in fns:
            out = np.asarray(fn(pred, gt))
            assert np.all(np.isfinite(out)) and np.all(out >= 0.0)
        assert 0.0 <= float(box_iou(pred, gt)) <= 1.0


def test_huge_identical_boxes_keep_iou_one() -> None:
    box = [-1.7e308, -1.7e308, 1.7e308, 1.7e308]
    assert_allclose(box_iou(box, box), 1.0)


def test_gt_whose_sigma_overflows_raises() -> None:
    with pytest.raises(ValueError, match="gt_box"):
        gaussian_point_reward([0, 0, 1, 1], [-1.7e308, 0, 1.7e308, 1])


def test_degenerate_prediction_is_finite() -> None:
    preds = [[50, 0, 50, 50], [0, 25, 100, 25], [50, 25, 50, 25]]
    point = gaussian_point_reward(preds, GT)
    cov = gaussian_coverage_reward(preds, GT)
    assert_allclose(point, 1.0)  # the centres are right; the size does not matter
    assert_allclose(cov, 0.0)  # the exact limit of the Bhattacharyya coefficient
    assert np.all(np.isfinite(gui_grounding_reward(preds, GT)))


def test_reversed_prediction_uses_absolute_size() -> None:
    # As in the reference code: σ_p uses |w|, |h|, so corners in the other order score the same.
    assert_allclose(gaussian_coverage_reward([100, 50, 0, 0], GT), 1.0)
    assert_allclose(gaussian_point_reward([100, 50, 0, 0], GT), 1.0)


def test_far_prediction_underflows_to_zero_not_nan() -> None:
    far = [1e6, 0, 1e6 + 100, 50]
    assert float(gaussian_point_reward(far, GT)) == 0.0
    assert float(gaussian_coverage_reward(far, GT)) == 0.0


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

coord = st.floats(-200.0, 200.0)
size = st.floats(1.0, 100.0)
ratio = st.floats(0.1, 10.0)
offset = st.floats(-5.0, 5.0)


@st.composite
def box_pair(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A GT box and a prediction within a few GT sizes of it (no exp underflow)."""
    x, y, w, h = draw(coord), draw(coord), draw(size), draw(size)
    gt = np.array([x, y, x + w, y + h])
    cx, cy = x + w / 2 + draw(offset) * w, y + h / 2 + draw(offset) * h
    pw, ph = draw(ratio) * w, draw(ratio) * h
    pred = np.array([cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2])
    return pred, gt


@st.composite
def any_boxes(draw: st.DrawFn) -> np.ndarray:
    x1, y1, x2, y2 = draw(coord), draw(coord), draw(coord), draw(coord)
    return np.array([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])


@given(box_pair())
def test_gaussian_rewards_in_unit_interval(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    for fn in (gaussian_point_reward, gaussian_coverage_reward):
        value = float(fn(pred, gt))
        assert 0.0 < value <= 1.0
    assert 0.0 < float(gui_grounding_reward(pred, gt)) <= 2.0


@given(any_boxes(), any_boxes())
def test_iou_range_and_symmetry(a: np.ndarray, b: np.ndarray) -> None:
    ab, ba = float(box_iou(a, b)), float(box_iou(b, a))
    assert 0.0 <= ab <= 1.0
    assert_allclose(ab, ba, rtol=1e-12)


@given(box_pair())
def test_coverage_symmetric_in_swapping_boxes(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    assert_allclose(gaussian_coverage_reward(pred, gt), gaussian_coverage_reward(gt, pred))


@given(box_pair(), st.floats(-1000.0, 1000.0), st.floats(-1000.0, 1000.0))
def test_translation_invariance(pair: tuple[np.ndarray, np.ndarray], tx: float, ty: float) -> None:
    pred, gt = pair
    shift = np.array([tx, ty, tx, ty])
    for fn in (gaussian_point_reward, gaussian_coverage_reward):
        assert_allclose(fn(pred + shift, gt + shift), fn(pred, gt), rtol=1e-6, atol=1e-9)


@given(box_pair(), st.floats(1e-3, 1e3))
def test_scale_invariance(pair: tuple[np.ndarray, np.ndarray], s: float) -> None:
    pred, gt = pair
    for fn in (gaussian_point_reward, gaussian_coverage_reward):
        assert_allclose(fn(s * pred, s * gt), fn(pred, gt), rtol=1e-9, atol=1e-12)


@given(box_pair(), st.floats(1.0, 20.0), st.floats(1.0, 20.0))
def test_coverage_reciprocal_size_symmetry(
    pair: tuple[np.ndarray, np.ndarray], sx: float, sy: float
) -> None:
    _, gt = pair
    cx, cy = (gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2
    w, h = gt[2] - gt[0], gt[3] - gt[1]

    def scaled(fx: float, fy: float) -> np.ndarray:
        return np.array([cx - fx * w / 2, cy - fy * h / 2, cx + fx * w / 2, cy + fy * h / 2])

    big = gaussian_coverage_reward(scaled(sx, sy), gt)
    small = gaussian_coverage_reward(scaled(1 / sx, 1 / sy), gt)
    assert_allclose(big, small, rtol=1e-9)


@given(box_pair(), ratio, ratio)
def test_point_reward_ignores_predicted_size(
    pair: tuple[np.ndarray, np.ndarray], fx: float, fy: float
) -> None:
    pred, gt = pair
    cx, cy = (pred[0] + pred[2]) / 2, (pred[1] + pred[3]) / 2
    w, h = fx * (pred[2] - pred[0]), fy * (pred[3] - pred[1])
    other = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    reference = gaussian_point_reward([cx, cy], gt)
    assert_allclose(gaussian_point_reward(pred, gt), reference, rtol=1e-9)
    assert_allclose(gaussian_point_reward(other, gt), reference, rtol=1e-9)


@given(box_pair(), st.floats(0.0, 5.0), st.floats(0.0, 5.0), st.sampled_from([0, 1]))
def test_monotone_in_offset_along_an_axis(
    pair: tuple[np.ndarray, np.ndarray], d1: float, d2: float, axis: int
) -> None:
    pred, gt = pair
    near, far = min(d1, d2), max(d1, d2)
    gt_size = gt[2 + axis] - gt[axis]
    # The prediction's size, centred on the GT centre, then moved along one axis.
    centred = pred - np.tile(box_centre(pred) - box_centre(gt), 2)
    step = np.zeros(4)
    step[[axis, axis + 2]] = gt_size
    # Moving the box shifts its width by rounding (an ulp or so), hence the 1e-12 slack.
    for fn in (gaussian_point_reward, gaussian_coverage_reward):
        assert float(fn(centred + near * step, gt)) >= float(fn(centred + far * step, gt)) - 1e-12
        assert float(fn(centred - near * step, gt)) >= float(fn(centred - far * step, gt)) - 1e-12


@given(box_pair())
def test_maximum_at_identical_boxes(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    assert float(gui_grounding_reward(gt, gt)) == 2.0
    for fn in (gaussian_point_reward, gaussian_coverage_reward):
        assert float(fn(gt, gt)) == 1.0
        assert float(fn(pred, gt)) <= 1.0


@settings(max_examples=50)
@given(box_pair())
def test_hit_agrees_with_point_in_box(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    assert float(hit_reward(pred, gt)) == float(point_in_box(box_centre(pred), gt))


def test_sigma_that_underflows_is_a_clear_error_not_nan() -> None:
    tiny = [0.0, 0.0, 5e-324, 5e-324]  # width > 0, but alpha * width rounds to 0
    with pytest.raises(ValueError, match=r"gt_box: box width/height times alpha=0.5 must be"):
        gaussian_point_reward(tiny, tiny)
    with pytest.raises(ValueError, match=r"times alpha=1e-30 must be a finite number > 0"):
        gui_grounding_reward([0, 0, 1e-300, 1e-300], [0, 0, 1e-300, 1e-300], alpha=1e-30)
