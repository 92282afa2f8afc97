"""Temporal grounding rewards: temporal IoU and the Temporal-R1 grounding score.

Paper: "Reinforcement Learning Tuning for VideoLLMs: Reward Design and Data
Efficiency" (Temporal-R1 / Temporal-RLT), arXiv 2506.01908. Its temporal video grounding (TVG)
task asks for a ``(start, end)`` span; the continuous reward is the temporal IoU of the predicted
and the ground-truth (GT) span, added to a format score.

An interval is ``(start, end)`` on the last axis (``[..., 2]``), in any unit shared by the
prediction and the GT (seconds, or fractions of the video length; the released code divides the
prediction by the video length because its GT is stored normalised - tIoU itself is scale free).
Leading dimensions broadcast numpy-style. GT intervals are checked (finite, start <= end); a
predicted interval is model output, so a NaN/inf or reversed prediction scores 0.0 and never
raises. No function returns NaN, and nothing is rounded.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from varl._checks import FloatArray, as_float_array, check_nonnegative
from varl.rewards.spatial import _common_scale, _finite_rows

__all__ = ["temporal_grounding_reward", "temporal_iou"]


def _check_gt_interval(gt: ArrayLike, name: str) -> FloatArray:
    """Validates GT intervals ``[..., 2]``: finite with start <= end."""
    arr = as_float_array(gt, name, last_dim=2, finite=True)
    if not np.all(arr[..., 0] <= arr[..., 1]):
        raise ValueError(f"{name}: expected intervals with start <= end, got a reversed one")
    return arr


def temporal_iou(pred: ArrayLike, gt: ArrayLike) -> FloatArray:
    """Temporal IoU of predicted and GT intervals, as in Temporal-R1's TVG accuracy reward.

    With p = (p0, p1) and g = (g0, g1):

        tIoU = max(min(p1, g1) - max(p0, g0), 0) / (max(p1, g1) - min(p0, g0))

    The denominator is the hull of the two intervals. It equals their union whenever they
    overlap, so the value is the exact IoU, and disjoint intervals score 0 either way. A reversed
    prediction (start > end) or one holding NaN/inf scores 0.0, and so does a zero-length hull
    (both intervals the same single instant).

    Args:
        pred: Predicted intervals ``[..., 2]`` as ``(start, end)``.
        gt: GT intervals ``[..., 2]``, finite with start <= end; broadcasts against ``pred``.

    Returns:
        tIoU in [0, 1], shape = broadcast leading shape.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: If a last axis is not 2, or ``gt`` holds NaN/inf or a reversed interval.

    Example:
        >>> round(float(temporal_iou([75.0, 127.0], [85.0, 139.5])), 7)  # Temporal-R1 Fig. 1
        0.6511628
    """
    g = _check_gt_interval(gt, "gt")
    p, valid = _finite_rows(as_float_array(pred, "pred", last_dim=2))
    valid = valid & (p[..., 0] <= p[..., 1])
    p, g = _common_scale(p, g)  # keeps the hull finite for inputs near the float64 limit
    inter = np.clip(np.minimum(p[..., 1], g[..., 1]) - np.maximum(p[..., 0], g[..., 0]), 0.0, None)
    hull = np.maximum(p[..., 1], g[..., 1]) - np.minimum(p[..., 0], g[..., 0])
    tiou = np.divide(inter, hull, out=np.zeros_like(hull), where=hull > 0.0)
    return np.where(valid, tiou, 0.0)


def temporal_grounding_reward(
    pred: ArrayLike,
    gt: ArrayLike,
    format_score: ArrayLike,
    *,
    w_iou: float = 0.5,
    w_format: float = 0.5,
) -> FloatArray:
    """Temporal-R1 TVG score: ``r = w_iou · tIoU(pred, gt) + w_format · format_score``.

    The released code uses ``0.5 · tIoU + 0.5 · format`` (so r ∈ [0, 1]) and places the score on
    the last response token. The format score comes from a format check such as the TVG answer
    template (1 if the completion matches, else 0); it is passed in so that this function stays
    pure arithmetic.

    Args:
        pred: Predicted intervals ``[..., 2]``; NaN/inf or reversed rows get tIoU 0.
        gt: GT intervals ``[..., 2]``, finite with start <= end.
        format_score: Format scores in [0, 1], broadcasting against the leading shape.
        w_iou: Weight of the tIoU term, >= 0.
        w_format: Weight of the format term, >= 0.

    Returns:
        Rewards in [0, w_iou + w_format], shape = broadcast of the leading shapes and
        ``format_score``.

    Raises:
        TypeError: If an input is not numeric.
        ValueError: On a bad interval shape, an invalid ``gt``, a ``format_score`` outside [0, 1]
            or non-finite, or a negative or non-finite weight.

    Example:
        >>> round(float(temporal_grounding_reward([75.0, 127.0], [85.0, 139.5], 1.0)), 7)
        0.8255814
    """
    w_iou = check_nonnegative(w_iou, "w_iou")
    w_format = check_nonnegative(w_format, "w_format")
    fmt = as_float_array(format_score, "format_score", finite=True)
    if not np.all((fmt >= 0.0) & (fmt <= 1.0)):
        raise ValueError("format_score: expected values in [0, 1]")
    result: FloatArray = w_iou * temporal_iou(pred, gt) + w_format * fmt
    return result
