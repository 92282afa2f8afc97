"""Spatial rewards for GUI grounding: GUI-G² Gaussian point and coverage rewards, plus baselines.

Paper: "GUI-G²: Gaussian Reward Modeling for GUI Grounding", arXiv 2507.15846
(eqs. 2-6). The model predicts a box; GUI-G² turns the predicted box and the ground-truth (GT) box
into axis-aligned Gaussians whose standard deviations adapt to the box sizes, and rewards

- how close the predicted centre is to the GT centre under the GT Gaussian (point reward), and
- how much the two Gaussians overlap, measured by the Bhattacharyya coefficient (coverage reward).

Conventions shared by every function here:

- A box is ``(x1, y1, x2, y2)`` on the last axis (``[..., 4]``), top-left then bottom-right corner;
  a point is ``(x, y)`` (``[..., 2]``). Any consistent unit works (pixels or normalised [0, 1]).
- Leading dimensions broadcast numpy-style, so ``[B, 4]`` predictions against one ``[4]`` GT box
  give ``[B]`` rewards. Results are float64 arrays (0-d for single boxes); nothing is rounded.
- The GT comes from the data set and is checked: NaN/inf, a zero or negative width/height, or a
  wrong last axis raise ``ValueError`` naming the argument; non-numeric input raises ``TypeError``.
- Predictions come from a model: a prediction holding NaN or inf scores 0.0 rather than raising,
  and no input makes a function return NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from varl._checks import (
    FloatArray,
    as_float_array,
    check_fraction,
    check_nonnegative,
    check_positive,
)

__all__ = [
    "box_centre",
    "box_iou",
    "gaussian_coverage_reward",
    "gaussian_point_reward",
    "gui_grounding_reward",
    "hit_reward",
    "iou_threshold_reward",
    "point_in_box",
]

BoolArray = NDArray[np.bool_]


# ---------------------------------------------------------------------------------------------
# Private helpers
# ---------------------------------------------------------------------------------------------


def _xy(x_col: FloatArray, y_col: FloatArray) -> FloatArray:
    """Stacks two coordinate arrays into a contiguous ``[..., 2]`` array.

    Arithmetic on strided ``[..., 0:2]`` slices or reductions over a length-2 last axis run an
    order of magnitude slower in numpy than whole-column operations, so the helpers below work
    column by column and hand back contiguous pairs.
    """
    out = np.empty((*np.broadcast_shapes(x_col.shape, y_col.shape), 2))
    out[..., 0] = x_col
    out[..., 1] = y_col
    return out


def _centre(box: FloatArray) -> FloatArray:
    """Centre of finite ``[..., 4]`` boxes; halving first keeps huge coordinates finite."""
    return _xy(*_centre_xy(box))


def _finite_rows(x: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Returns ``x`` with non-finite rows zeroed, and the mask of rows that were all finite.

    Used on model predictions: the zeroed rows keep the arithmetic free of NaN/inf warnings, and
    the caller overwrites their results with 0.0 through the mask. When everything is finite
    (the common case) ``x`` comes back unchanged with a 0-d True mask, which broadcasts.
    """
    if np.isfinite(x).all():
        return x, np.ones((), dtype=np.bool_)
    valid = np.all(np.isfinite(x), axis=-1)
    return np.where(valid[..., None], x, 0.0), valid


def _zero_invalid(valid: BoolArray, values: FloatArray) -> FloatArray:
    """Sets ``values`` to 0.0 where ``valid`` is False (a no-op when every row is valid)."""
    if valid.all():  # values are computed from the same rows, so their shape already covers valid
        return values
    return np.where(valid, values, 0.0)


# Below this magnitude products of two coordinate differences cannot overflow float64.
_SAFE_MAGNITUDE = 1e150


def _common_scale(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Divides finite ``a`` and ``b`` by their largest absolute coordinate (pairwise, broadcast).

    IoU-type ratios are scale invariant, and after this every coordinate lies in [-1, 1], so
    widths, hulls and areas cannot overflow even for inputs near the float64 limit. Inputs well
    inside the float64 range (the usual case) are returned as they are.
    """
    if max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0)) < _SAFE_MAGNITUDE:
        return a, b
    scale = np.maximum(np.max(np.abs(a), axis=-1), np.max(np.abs(b), axis=-1))
    scale = np.where(scale > 0.0, scale, 1.0)[..., None]
    return a / scale, b / scale


def _iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU of float boxes ``[..., 4]`` (see :func:`box_iou`); non-finite rows give 0.0."""
    a, a_ok = _finite_rows(a)
    b, b_ok = _finite_rows(b)
    a, b = _common_scale(a, b)
    inter_w = np.clip(
        np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None
    )
    inter_h = np.clip(
        np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None
    )
    inter = inter_w * inter_h
    union = _area(a) + _area(b) - inter
    iou = np.divide(inter, union, out=np.zeros_like(union), where=union > 0.0)
    return _zero_invalid(a_ok & b_ok, iou)


def _area(box: FloatArray) -> FloatArray:
    """Area of finite boxes; a reversed side counts as length 0."""
    w = np.clip(box[..., 2] - box[..., 0], 0.0, None)
    h = np.clip(box[..., 3] - box[..., 1], 0.0, None)
    result: FloatArray = w * h
    return result


# A pair of coordinate columns (x, y); kept apart because whole-column numpy arithmetic is far
# faster than arithmetic on strided ``[..., 2]`` slices.
XY = tuple[FloatArray, FloatArray]


def _centre_xy(box: FloatArray) -> XY:
    """Centre columns of finite ``[..., 4]`` boxes; halving first keeps huge coordinates finite."""
    return 0.5 * box[..., 0] + 0.5 * box[..., 2], 0.5 * box[..., 1] + 0.5 * box[..., 3]


def _pred_centre(pred: ArrayLike, name: str) -> tuple[XY, BoolArray]:
    """Centre of a predicted point ``[..., 2]`` or box ``[..., 4]``, and the finite-row mask."""
    arr = as_float_array(pred, name)
    if arr.ndim == 0 or arr.shape[-1] not in (2, 4):
        raise ValueError(
            f"{name}: expected a point [..., 2] or a box [..., 4], got shape {arr.shape}"
        )
    clean, valid = _finite_rows(arr)
    centre = (clean[..., 0], clean[..., 1]) if clean.shape[-1] == 2 else _centre_xy(clean)
    return centre, valid


def _inside(point: XY, box: FloatArray) -> BoolArray:
    """Whether points lie inside boxes, edges included (see :func:`point_in_box`)."""
    x, y = point
    inside: BoolArray = (
        (box[..., 0] <= x) & (x <= box[..., 2]) & (box[..., 1] <= y) & (y <= box[..., 3])
    )
    return inside


def _check_gt_box(gt_box: ArrayLike, name: str) -> FloatArray:
    """Validates GT boxes ``[..., 4]``: finite, with x1 < x2 and y1 < y2."""
    gt = as_float_array(gt_box, name, last_dim=4, finite=True)
    if not (np.all(gt[..., 2] > gt[..., 0]) and np.all(gt[..., 3] > gt[..., 1])):
        raise ValueError(
            f"{name}: expected non-degenerate boxes with x1 < x2 and y1 < y2, "
            "got a zero or negative width/height"
        )
    return gt


def _gt_gaussian(gt: FloatArray, alpha: float, name: str) -> tuple[XY, XY]:
    """Mean and std columns of checked GT boxes (GUI-G² eq. 5): σ = α · (x2 - x1, y2 - y1)."""
    with np.errstate(over="ignore"):
        sigma = alpha * (gt[..., 2] - gt[..., 0]), alpha * (gt[..., 3] - gt[..., 1])
    for s_axis in sigma:
        if not (np.isfinite(s_axis).all() and (s_axis > 0.0).all()):
            raise ValueError(
                f"{name}: box width/height times alpha={alpha} must be a finite number > 0 "
                "(it overflows or underflows float64)"
            )
    return _centre_xy(gt), sigma


def _point_reward(centre: XY, mu_gt: XY, sigma_gt: XY) -> FloatArray:
    """exp(-1/2 Σ_axis (Δ/σ)^2) on validated, finite inputs."""
    # An overflowing distance becomes inf and the reward its correct limit 0, so ignore it.
    with np.errstate(over="ignore"):
        zx = (centre[0] - mu_gt[0]) / sigma_gt[0]
        zy = (centre[1] - mu_gt[1]) / sigma_gt[1]
        result: FloatArray = np.exp(-0.5 * (zx * zx + zy * zy))
    return result


def _coverage_axis(d: FloatArray, s_p: FloatArray, s_g: FloatArray) -> FloatArray:
    """One axis of the Bhattacharyya coefficient of N(0, s_g²) and N(d, s_p²).

    BC = sqrt(2 s_p s_g / (s_p² + s_g²)) · exp(-d² / (4 (s_p² + s_g²))). The size factor is
    written with the ratio m = min/max in [0, 1], which cannot overflow (max >= s_g > 0 because
    the GT is non-degenerate), and the centre factor divides by hypot(s_p, s_g) to avoid squaring
    a huge σ.
    """
    m = np.minimum(s_p, s_g) / np.maximum(s_p, s_g)
    z = d / np.hypot(s_p, s_g)
    result: FloatArray = np.sqrt(2.0 * m / (1.0 + m * m)) * np.exp(-0.25 * z * z)
    return result


def _coverage_reward(box: FloatArray, mu_gt: XY, sigma_gt: XY, alpha: float) -> FloatArray:
    """Per-axis Bhattacharyya coefficient on finite predicted boxes (see the public docstring)."""
    cx, cy = _centre_xy(box)
    with np.errstate(over="ignore", invalid="ignore"):
        bc_x = _coverage_axis(cx - mu_gt[0], alpha * np.abs(box[..., 2] - box[..., 0]), sigma_gt[0])
        bc_y = _coverage_axis(cy - mu_gt[1], alpha * np.abs(box[..., 3] - box[..., 1]), sigma_gt[1])
        result = bc_x * bc_y
    # Only a prediction near the float64 limit can reach inf/inf here; it scores 0.
    return np.where(np.isfinite(result), result, 0.0)


# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------


def box_centre(box: ArrayLike) -> FloatArray:
    """Centre ``((x1 + x2) / 2, (y1 + y2) / 2)`` of boxes.

    Args:
        box: Boxes ``[..., 4]`` as ``(x1, y1, x2, y2)``; must be finite.

    Returns:
        Centres ``[..., 2]``.

    Raises:
        TypeError: If ``box`` is not numeric.
        ValueError: If the last axis is not 4 or a value is NaN/inf.

    Example:
        >>> box_centre([0.0, 0.0, 100.0, 50.0]).tolist()
        [50.0, 25.0]
    """
    return _centre(as_float_array(box, "box", last_dim=4, finite=True))


def point_in_box(point: ArrayLike, box: ArrayLike) -> BoolArray:
    """Whether points lie inside boxes, edges included: ``x1 <= x <= x2 and y1 <= y <= y2``.

    A box with ``x2 < x1`` or ``y2 < y1`` contains no point. A NaN coordinate gives False.

    Args:
        point: Points ``[..., 2]`` as ``(x, y)``.
        box: Boxes ``[..., 4]`` as ``(x1, y1, x2, y2)``; broadcasts against ``point``.

    Returns:
        Boolean array of the broadcast leading shape.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: If the last axes are not 2 and 4.

    Example:
        >>> bool(point_in_box([100.0, 25.0], [0.0, 0.0, 100.0, 50.0]))
        True
    """
    p = as_float_array(point, "point", last_dim=2)
    return _inside((p[..., 0], p[..., 1]), as_float_array(box, "box", last_dim=4))


def box_iou(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Intersection over union of axis-aligned boxes, broadcasting over leading dimensions.

    IoU(a, b) = |a ∩ b| / (|a| + |b| - |a ∩ b|). A box with ``x2 < x1`` or ``y2 < y1`` has zero
    area. The IoU is 0.0 when the union is empty (two degenerate boxes) and when either box holds
    NaN or inf, so model predictions can be passed in directly. Coordinates are rescaled pairwise
    before the products, so values up to the float64 limit neither overflow nor warn.

    Args:
        a: Boxes ``[..., 4]`` as ``(x1, y1, x2, y2)``.
        b: Boxes ``[..., 4]``; broadcasts against ``a``.

    Returns:
        IoU in [0, 1], shape = broadcast leading shape of ``a`` and ``b``.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: If a last axis is not 4.

    Example:
        >>> round(float(box_iou([0, 0, 100, 50], [50, 0, 150, 50])), 6)
        0.333333
    """
    return _iou(as_float_array(a, "a", last_dim=4), as_float_array(b, "b", last_dim=4))


# ---------------------------------------------------------------------------------------------
# GUI-G² rewards
# ---------------------------------------------------------------------------------------------


def gaussian_point_reward(pred: ArrayLike, gt_box: ArrayLike, alpha: float = 0.5) -> FloatArray:
    """GUI-G² Gaussian point reward (eq. 2 with the adaptive σ of eq. 5).

    The GT box becomes a Gaussian centred on its centre μ_gt with per-axis standard deviations
    σ = α · (w_gt, h_gt); the reward is that Gaussian's *unnormalised* density at the predicted
    centre μ_p:

        R_point = exp(-1/2 · [(μ_p,x - μ_gt,x)^2 / σ_x^2 + (μ_p,y - μ_gt,y)^2 / σ_y^2])

    The 1 / (2π σ_x σ_y) constant is dropped on purpose (as in the authors' code), so the reward
    lies in (0, 1] and is 1 exactly when the centres coincide. With α = 0.5 the GT box edge sits
    1σ away (reward exp(-0.5) ≈ 0.607), a GT corner gives exp(-1). Only the predicted *centre*
    matters, never the predicted size. Far from the target the value underflows to exactly 0.0
    (beyond roughly 38σ), which is a legitimate reward, not an error.

    Args:
        pred: A predicted box ``[..., 4]`` (its centre is used) or a predicted point ``[..., 2]``.
            Rows holding NaN or inf score 0.0.
        gt_box: GT boxes ``[..., 4]`` with x1 < x2 and y1 < y2; broadcasts against ``pred``.
        alpha: Ratio σ / box size (eq. 5); the paper's default is 0.5.

    Returns:
        Rewards in [0, 1], shape = broadcast leading shape.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: If ``pred`` does not end in 2 or 4, ``gt_box`` is not ``[..., 4]``, non-finite
            or degenerate, or ``alpha`` is not a finite number > 0.

    Example:
        >>> gt = [0.0, 0.0, 100.0, 50.0]
        >>> round(float(gaussian_point_reward([50.0, 0.0, 150.0, 50.0], gt)), 6)  # on the edge
        0.606531
        >>> float(gaussian_point_reward([50.0, 25.0], gt))  # a point at the centre
        1.0
    """
    alpha = check_positive(alpha, "alpha")
    mu_gt, sigma_gt = _gt_gaussian(_check_gt_box(gt_box, "gt_box"), alpha, "gt_box")
    centre, valid = _pred_centre(pred, "pred")
    return _zero_invalid(valid, _point_reward(centre, mu_gt, sigma_gt))


def gaussian_coverage_reward(
    pred_box: ArrayLike, gt_box: ArrayLike, alpha: float = 0.5
) -> FloatArray:
    """GUI-G² Gaussian coverage reward: Bhattacharyya coefficient of two Gaussians (eqs. 3-5).

    Both boxes become axis-aligned Gaussians N(μ, diag(σ_x^2, σ_y^2)) with σ = α · (|w|, |h|)
    (absolute widths, so a reversed predicted box is not rejected, as in the authors' code). The
    reward is exp(-D_B), with the Bhattacharyya distance

        Σ̄ = (Σ_p + Σ_gt) / 2
        D_B = 1/8 (μ_p - μ_gt)^T Σ̄^{-1} (μ_p - μ_gt) + 1/2 ln(det Σ̄ / sqrt(det Σ_p det Σ_gt)).

    For diagonal covariances this factorises per axis (σ_p, σ_g the two std devs, Δ the
    centre offset), which is what is computed:

        BC_axis = sqrt(2 σ_p σ_g / (σ_p^2 + σ_g^2)) · exp(-Δ^2 / (4 (σ_p^2 + σ_g^2)))
        R_cov   = BC_x · BC_y  ∈ [0, 1]

    Despite its name this is Gaussian-Gaussian overlap, not GT mass inside the predicted box. It
    is 1 only for identical boxes, is symmetric in the size ratio (a half-size and a double-size
    box at the right centre both score 0.8), and is symmetric in swapping the two boxes.

    Deviation from the reference code: it adds 1e-8 to Σ̄ before inverting and to
    det Σ_p · det Σ_gt before the square root. Those constants are not scale free: in normalised
    coordinates (a GUI element of width 0.02 has det Σ ≈ 1e-16) they distort the value by orders
    of magnitude and can push it above 1 (about 141 for a zero-width prediction). The
    factorised form needs no epsilon, because the GT is non-degenerate, so none is used. A
    zero-width or zero-height prediction gets the exact limit 0.0 (the reference gives a tiny
    positive number, e.g. 1.1e-5 for a pixel-scale box).

    Args:
        pred_box: Predicted boxes ``[..., 4]``. Rows holding NaN or inf score 0.0.
        gt_box: GT boxes ``[..., 4]`` with x1 < x2 and y1 < y2; broadcasts against ``pred_box``.
        alpha: Ratio σ / box size for both boxes (eq. 5); default 0.5.

    Returns:
        Rewards in [0, 1], shape = broadcast leading shape.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: If a last axis is not 4, ``gt_box`` is non-finite or degenerate, or ``alpha``
            is not a finite number > 0.

    Example:
        >>> gt = [0.0, 0.0, 100.0, 50.0]
        >>> round(float(gaussian_coverage_reward([25.0, 12.5, 75.0, 37.5], gt)), 6)  # half size
        0.8
        >>> round(float(gaussian_coverage_reward([-50.0, -25.0, 150.0, 75.0], gt)), 6)  # double
        0.8
    """
    alpha = check_positive(alpha, "alpha")
    mu_gt, sigma_gt = _gt_gaussian(_check_gt_box(gt_box, "gt_box"), alpha, "gt_box")
    box, valid = _finite_rows(as_float_array(pred_box, "pred_box", last_dim=4))
    return _zero_invalid(valid, _coverage_reward(box, mu_gt, sigma_gt, alpha))


def gui_grounding_reward(
    pred_box: ArrayLike,
    gt_box: ArrayLike,
    alpha: float = 0.5,
    w_point: float = 1.0,
    w_coverage: float = 1.0,
) -> FloatArray:
    """GUI-G² total reward (eq. 6): ``R = ν · R_point + γ · R_cov``.

    With the paper's ν = γ = 1 the reward lies in [0, 2]. Unlike the reference code, no component
    is rounded (rounding to 3 decimals turns far predictions into exact zeros and so creates
    zero-variance GRPO groups).

    Args:
        pred_box: Predicted boxes ``[..., 4]``. Rows holding NaN or inf score 0.0.
        gt_box: GT boxes ``[..., 4]`` with x1 < x2 and y1 < y2; broadcasts against ``pred_box``.
        alpha: Ratio σ / box size (eq. 5); default 0.5.
        w_point: Weight ν of :func:`gaussian_point_reward`, >= 0.
        w_coverage: Weight γ of :func:`gaussian_coverage_reward`, >= 0.

    Returns:
        Rewards in [0, w_point + w_coverage], shape = broadcast leading shape.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: On a bad shape, a non-finite or degenerate ``gt_box``, ``alpha`` <= 0, or a
            negative or non-finite weight.

    Example:
        >>> round(float(gui_grounding_reward([50, 25, 150, 75], [0, 0, 100, 50])), 6)
        1.14668
    """
    w_point = check_nonnegative(w_point, "w_point")
    w_coverage = check_nonnegative(w_coverage, "w_coverage")
    alpha = check_positive(alpha, "alpha")
    mu_gt, sigma_gt = _gt_gaussian(_check_gt_box(gt_box, "gt_box"), alpha, "gt_box")
    box, valid = _finite_rows(as_float_array(pred_box, "pred_box", last_dim=4))
    point = _point_reward(_centre_xy(box), mu_gt, sigma_gt)
    coverage = _coverage_reward(box, mu_gt, sigma_gt, alpha)
    return _zero_invalid(valid, w_point * point + w_coverage * coverage)


# ---------------------------------------------------------------------------------------------
# Binary baselines
# ---------------------------------------------------------------------------------------------


def hit_reward(pred: ArrayLike, gt_box: ArrayLike) -> FloatArray:
    """Binary click reward: 1.0 if the predicted centre lies in the GT box (edges included).

    This is the ScreenSpot accuracy rule and the sparse baseline GUI-G² improves on:
    ``R_hit = 1[x1 <= μ_p,x <= x2 and y1 <= μ_p,y <= y2]``.

    Args:
        pred: A predicted box ``[..., 4]`` (its centre is used) or point ``[..., 2]``. Rows
            holding NaN or inf score 0.0.
        gt_box: GT boxes ``[..., 4]`` with x1 < x2 and y1 < y2; broadcasts against ``pred``.

    Returns:
        Rewards in {0.0, 1.0}, shape = broadcast leading shape.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: On a bad shape or a non-finite or degenerate ``gt_box``.

    Example:
        >>> float(hit_reward([50, 0, 150, 50], [0, 0, 100, 50]))  # centre (100, 25) on the edge
        1.0
    """
    gt = _check_gt_box(gt_box, "gt_box")
    centre, valid = _pred_centre(pred, "pred")
    return np.where(valid & _inside(centre, gt), 1.0, 0.0)


def iou_threshold_reward(
    pred_box: ArrayLike, gt_box: ArrayLike, threshold: float = 0.5
) -> FloatArray:
    """Binary IoU reward: 1.0 if ``IoU(pred_box, gt_box) >= threshold``, else 0.0.

    Args:
        pred_box: Predicted boxes ``[..., 4]``. Rows holding NaN or inf score 0.0.
        gt_box: GT boxes ``[..., 4]`` with x1 < x2 and y1 < y2; broadcasts against ``pred_box``.
        threshold: IoU threshold in (0, 1]; default 0.5.

    Returns:
        Rewards in {0.0, 1.0}, shape = broadcast leading shape.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: On a bad shape, a non-finite or degenerate ``gt_box``, or a threshold outside
            (0, 1].

    Example:
        >>> float(iou_threshold_reward([25, 12.5, 75, 37.5], [0, 0, 100, 50]))  # IoU 0.25
        0.0
    """
    threshold = check_fraction(threshold, "threshold")
    gt = _check_gt_box(gt_box, "gt_box")
    pred = as_float_array(pred_box, "pred_box", last_dim=4)
    return np.where(_iou(pred, gt) >= threshold, 1.0, 0.0)
