"""Detection rewards for dense scenes: DIP-R1's precision/recall reward and look reward.

Paper: "DIP-R1: Deep Inspection and Perception with RL Looking Through and Understanding Complex
Scenes", arXiv 2505.23179. The model thinks, then writes the regions it inspects inside
``<look>``, then the detected boxes inside ``<answer>``; it is rewarded for the detections
(a weighted precision-recall accuracy reward) and for looking at the regions its own group of
rollouts is uncertain about (a variance-guided looking reward).

Reconstruction: the DIP-R1 method section and code could not be read, only the abstract and
third-party summaries. Every formula in this module (the matching rule, the empty-set
conventions, the clustering and the uncertainty set) is varl's reconstruction from those
descriptions, not the authors' definition; see ``specs/gui_g2_dip_r1.md`` §2.2.

Boxes are ``(x1, y1, x2, y2)``. A box set is an ``[N, 4]`` array; an empty list stands for an
empty set. Ground-truth (GT) boxes are checked (finite, x1 < x2, y1 < y2); predicted boxes are
model output, so NaN/inf boxes never raise and never match anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

from varl._checks import (
    FloatArray,
    as_float_array,
    check_fraction,
    check_nonnegative,
)
from varl.rewards.spatial import _centre, _iou, point_in_box

__all__ = [
    "detection_precision_recall",
    "detection_reward",
    "f_beta_detection_reward",
    "looking_reward",
    "match_boxes",
]

IntArray = NDArray[np.intp]
InspectMode = Literal["centre", "iou"]
_INSPECT_MODES: tuple[str, ...] = ("centre", "iou")


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def _box_set(value: ArrayLike, name: str, *, gt: bool) -> FloatArray:
    """A box set as ``[N, 4]`` float64; an empty input becomes ``[0, 4]``.

    GT sets must be finite with positive widths and heights; predicted sets are left as they are.
    """
    arr = as_float_array(value, name, finite=gt)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name}: expected a box set of shape [N, 4], got {arr.shape}")
    if gt and not (np.all(arr[:, 2] > arr[:, 0]) and np.all(arr[:, 3] > arr[:, 1])):
        raise ValueError(
            f"{name}: expected non-degenerate boxes with x1 < x2 and y1 < y2, "
            "got a zero or negative width/height"
        )
    return arr


def _match(pred: FloatArray, gt: FloatArray, threshold: float) -> tuple[IntArray, IntArray]:
    """One-to-one matching of checked box sets; see :func:`match_boxes`."""
    empty = np.zeros(0, dtype=np.intp)
    if len(pred) == 0 or len(gt) == 0:
        return empty, empty
    iou = _iou(pred[:, None, :], gt[None, :, :])  # [N, M]; non-finite predictions give 0
    eligible = iou >= threshold
    # Gated cost: an eligible pair is worth one unit more than any total IoU can add, so the
    # assignment first maximises the number of eligible pairs, then their summed IoU.
    bonus = float(min(iou.shape) + 1)
    cost = np.where(eligible, -(bonus + iou), 0.0)
    rows, cols = linear_sum_assignment(cost)
    keep = eligible[rows, cols]
    return rows[keep].astype(np.intp), cols[keep].astype(np.intp)


# ---------------------------------------------------------------------------------------------
# Weighted precision-recall accuracy reward
# ---------------------------------------------------------------------------------------------


def match_boxes(
    pred: ArrayLike, gt: ArrayLike, iou_threshold: float = 0.5
) -> tuple[IntArray, IntArray]:
    """One-to-one matching of predicted to GT boxes by Hungarian assignment on IoU.

    Reconstruction (DIP-R1 §2.2(b) of varl's spec): pairs are formed by
    ``scipy.optimize.linear_sum_assignment`` and only pairs with IoU >= ``iou_threshold`` are
    kept. The spec's cost is 1 - IoU; it is refined here to a gated cost (eligible pairs, IoU >=
    threshold, cost -(K + IoU) with K > min(N, M); other pairs cost 0). That maximises the
    number of kept pairs first and their total IoU second. Plain 1 - IoU can trade a kept pair
    for a larger IoU sum over sub-threshold pairs: for predictions [[0,0,2,1], [1,0,6,1]] and
    GT [[4,0,7,1], [0,0,5,1]] it keeps no pair, while pairing the second boxes (IoU 2/3) keeps
    one. Both rules agree whenever each box overlaps at most one box of the other set above
    the threshold.

    Args:
        pred: Predicted boxes ``[N, 4]`` (N may be 0). Boxes holding NaN/inf never match.
        gt: GT boxes ``[M, 4]`` (M may be 0), finite with x1 < x2 and y1 < y2.
        iou_threshold: Minimum IoU τ_iou of a kept pair, in (0, 1]; default 0.5.

    Returns:
        ``(pred_idx, gt_idx)``: equal-length int arrays of matched indices (row order of the
        assignment, i.e. ascending ``pred_idx``).

    Raises:
        TypeError: If an input is not numeric.
        ValueError: On a shape other than ``[N, 4]``, an invalid ``gt`` or a threshold outside
            (0, 1].

    Example:
        >>> p, g = match_boxes([[21, 0, 31, 10], [0, 0, 10, 10]], [[0, 0, 10, 10], [20, 0, 30, 10]])
        >>> p.tolist(), g.tolist()
        ([0, 1], [1, 0])
    """
    threshold = check_fraction(iou_threshold, "iou_threshold")
    return _match(_box_set(pred, "pred", gt=False), _box_set(gt, "gt", gt=True), threshold)


def _counts(pred: ArrayLike, gt: ArrayLike, iou_threshold: float) -> tuple[int, int, int]:
    """(true positives, number of predictions, number of GT boxes)."""
    threshold = check_fraction(iou_threshold, "iou_threshold")
    p = _box_set(pred, "pred", gt=False)
    g = _box_set(gt, "gt", gt=True)
    return len(_match(p, g, threshold)[0]), len(p), len(g)


def detection_precision_recall(
    pred: ArrayLike, gt: ArrayLike, iou_threshold: float = 0.5
) -> tuple[float, float]:
    """Precision and recall of a predicted box set under one-to-one IoU matching.

    Reconstruction (DIP-R1): TP = number of pairs kept by :func:`match_boxes`, with n_p
    predictions and n_t GT boxes:

        precision = TP / n_p,   recall = TP / n_t

    Empty-set conventions (varl's decision): when both sets are empty the prediction is
    perfect, (1.0, 1.0); predicting nothing for a non-empty GT gives precision 0.0 and recall
    0.0; predicting boxes for an empty GT gives precision 0.0 and recall 0.0. A predicted box
    holding NaN/inf stays in n_p but cannot match, so it counts as a false positive.

    Args:
        pred: Predicted boxes ``[N, 4]`` (N may be 0).
        gt: GT boxes ``[M, 4]`` (M may be 0), finite with x1 < x2 and y1 < y2.
        iou_threshold: Minimum IoU of a match, in (0, 1]; default 0.5.

    Returns:
        ``(precision, recall)``, floats in [0, 1].

    Raises:
        TypeError: If an input is not numeric.
        ValueError: On a shape other than ``[N, 4]``, an invalid ``gt`` or a bad threshold.

    Example:
        >>> gt = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]
        >>> pred = [[0, 0, 10, 10], [21, 0, 31, 10], [80, 80, 90, 90]]
        >>> p, r = detection_precision_recall(pred, gt)
        >>> round(p, 6), r
        (0.666667, 0.5)
    """
    tp, n_p, n_t = _counts(pred, gt, iou_threshold)
    if n_p == 0 and n_t == 0:
        return 1.0, 1.0
    precision = tp / n_p if n_p > 0 else 0.0
    recall = tp / n_t if n_t > 0 else 0.0
    return precision, recall


def detection_reward(
    pred_boxes: ArrayLike,
    gt_boxes: ArrayLike,
    iou_threshold: float = 0.5,
    w_precision: float = 0.5,
    w_recall: float = 0.5,
) -> float:
    """DIP-R1 weighted precision-recall accuracy reward: ``r_acc = w_p · P + w_r · R``.

    Reconstruction: the abstract names a "weighted precision-recall accuracy reward"; its
    weights and matching rule are not public. varl uses the linear form with w_p + w_r = 1
    (default 0.5 / 0.5; a recall-heavier setting suits crowds). Unlike F1 it keeps signal when
    either term is 0: precision alone would reward one sure box, recall alone box spamming.
    P and R come from :func:`detection_precision_recall` (same matching and empty-set rules).

    Args:
        pred_boxes: Predicted boxes ``[N, 4]`` (N may be 0; NaN/inf boxes are false positives).
        gt_boxes: GT boxes ``[M, 4]``, finite with x1 < x2 and y1 < y2.
        iou_threshold: Minimum IoU of a match, in (0, 1]; default 0.5.
        w_precision: Weight w_p >= 0 of precision.
        w_recall: Weight w_r >= 0 of recall; w_p + w_r must be 1.

    Returns:
        The reward, a float in [0, 1].

    Raises:
        TypeError: If an input is not numeric.
        ValueError: On a bad box set, threshold, or weights that are negative or do not sum to 1.

    Example:
        >>> gt = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]
        >>> pred = [[0, 0, 10, 10], [21, 0, 31, 10], [80, 80, 90, 90]]
        >>> round(detection_reward(pred, gt), 6)
        0.583333
        >>> round(detection_reward(pred, gt, w_precision=0.3, w_recall=0.7), 6)
        0.55
    """
    w_p = check_nonnegative(w_precision, "w_precision")
    w_r = check_nonnegative(w_recall, "w_recall")
    if abs(w_p + w_r - 1.0) > 1e-9:
        raise ValueError(
            f"w_precision, w_recall: expected weights summing to 1, got {w_p} + {w_r} = {w_p + w_r}"
        )
    precision, recall = detection_precision_recall(pred_boxes, gt_boxes, iou_threshold)
    return w_p * precision + w_r * recall


def f_beta_detection_reward(
    pred: ArrayLike, gt: ArrayLike, beta: float = 1.0, iou_threshold: float = 0.5
) -> float:
    """F_β score of a predicted box set, the non-linear alternative to :func:`detection_reward`.

    Reconstruction (DIP-R1 variant offered by varl's spec):

        F_β = (1 + β²) · P · R / (β² · P + R)
            = TP / (TP + w · FN + (1 - w) · FP),   w = β² / (1 + β²)

    computed in the count form, which needs no special case except both sets empty (F_β = 1).
    F_β is 0 whenever TP = 0, so unlike the weighted sum it gives no signal then.

    Args:
        pred: Predicted boxes ``[N, 4]`` (N may be 0; NaN/inf boxes are false positives).
        gt: GT boxes ``[M, 4]``, finite with x1 < x2 and y1 < y2.
        beta: β > 0; recall counts β times as much as precision. Default 1 (F1).
        iou_threshold: Minimum IoU of a match, in (0, 1]; default 0.5.

    Returns:
        F_β, a float in [0, 1].

    Raises:
        TypeError: If an input is not numeric.
        ValueError: On a bad box set, threshold, or ``beta`` that is not a finite number > 0.

    Example:
        >>> gt = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]
        >>> pred = [[0, 0, 10, 10], [21, 0, 31, 10], [80, 80, 90, 90]]
        >>> round(f_beta_detection_reward(pred, gt), 6)
        0.571429
    """
    b = float(beta)
    if not np.isfinite(b) or b <= 0.0:
        raise ValueError(f"beta: expected a finite number > 0, got {beta!r}")
    # w = β² / (1 + β²), written so that neither β² nor 1/β² can overflow.
    w = 1.0 / (1.0 + (1.0 / b) ** 2) if b >= 1.0 else b * b / (1.0 + b * b)
    tp, n_p, n_t = _counts(pred, gt, iou_threshold)
    if n_p == 0 and n_t == 0:
        return 1.0
    return tp / (tp + w * (n_t - tp) + (1.0 - w) * (n_p - tp))


# ---------------------------------------------------------------------------------------------
# Variance-guided looking reward
# ---------------------------------------------------------------------------------------------


def _finite_boxes(value: ArrayLike, name: str) -> FloatArray:
    """A predicted box set ``[N, 4]`` with its NaN/inf boxes dropped."""
    arr = _box_set(value, name, gt=False)
    return arr[np.all(np.isfinite(arr), axis=1)]


def looking_reward(
    look_boxes: Sequence[ArrayLike],
    answer_boxes: Sequence[ArrayLike],
    *,
    cluster_iou: float = 0.5,
    variance_threshold: float = 0.1875,
    inspect: InspectMode = "centre",
    look_iou: float = 0.5,
    empty_value: float = 0.0,
) -> FloatArray:
    """DIP-R1 variance-guided looking reward for one group of G rollouts.

    Reconstruction: the abstract says the model is rewarded for examining uncertain regions
    and writing them out as ``<look>`` boxes; the formula below is varl's, not the authors'
    (spec §2.2(c)). Uncertainty is the group's disagreement about its own answers:

    1. Cluster all answer boxes greedily, rollouts in index order and each rollout's boxes in
       order: a box joins the first cluster whose seed (first) box has IoU >= ``cluster_iou``
       with it, otherwise it seeds a new cluster.
    2. p_k = (number of rollouts with a box in cluster k) / G (a rollout counts once per
       cluster), and the disagreement is the Bernoulli variance v_k = p_k (1 - p_k) ∈ [0, 1/4].
    3. The uncertain set is U = {k : v_k >= τ_v}; τ_v = 0.1875 keeps 0.25 <= p_k <= 0.75.
    4. Rollout i inspects cluster k if one of its look boxes contains the centre of the
       cluster's mean box (the coordinate-wise mean of all its member boxes; ``"centre"``, edges
       included) or has IoU >= ``look_iou`` with that mean box (``"iou"``).
    5. r_i = |{k ∈ U : i inspects k}| / |U|, or ``empty_value`` for every rollout when U = ∅
       (default 0.0: a group that agrees everywhere carries no look signal).

    v_k is compared with τ_v minus 1e-12, so that thresholds hit exactly in exact arithmetic
    (p_k = k/G) are not lost to floating-point error. Answer and look boxes are model output:
    boxes holding NaN/inf are ignored.

    Args:
        look_boxes: G box sets, one ``[L_i, 4]`` array (``L_i`` may be 0) per rollout, parsed
            from ``<look>``.
        answer_boxes: G box sets, one ``[A_i, 4]`` array (``A_i`` may be 0) per rollout, parsed
            from ``<answer>``.
        cluster_iou: IoU τ_c with a cluster's seed box needed to join it, in (0, 1].
        variance_threshold: τ_v in [0, 0.25].
        inspect: ``"centre"`` (default) or ``"iou"``, the inspection test of step 4.
        look_iou: IoU τ_l needed in ``"iou"`` mode, in (0, 1].
        empty_value: Reward given to every rollout when U is empty; a finite number.

    Returns:
        Rewards ``[G]``, in [0, 1] when U ≠ ∅.

    Raises:
        TypeError: If a box set is not numeric.
        ValueError: If the two sequences are empty or differ in length, a box set is not
            ``[N, 4]``, ``inspect`` is not a mode, or a threshold is out of range.

    Example:
        >>> a, b = [0, 0, 10, 10], [20, 0, 30, 10]
        >>> answers = [[a, b], [a, b], [a], [a]]  # everyone finds a; half the group finds b
        >>> looks = [[b], [], [[18, 0, 32, 10]], [a]]
        >>> looking_reward(looks, answers).tolist()
        [1.0, 0.0, 1.0, 0.0]
    """
    if inspect not in _INSPECT_MODES:
        raise ValueError(
            f"inspect: expected one of {', '.join(map(repr, _INSPECT_MODES))}, got {inspect!r}"
        )
    tau_c = check_fraction(cluster_iou, "cluster_iou")
    tau_l = check_fraction(look_iou, "look_iou")
    tau_v = check_nonnegative(variance_threshold, "variance_threshold")
    if tau_v > 0.25:
        raise ValueError(
            f"variance_threshold: expected a number in [0, 0.25], got {variance_threshold!r}"
        )
    empty = float(empty_value)
    if not np.isfinite(empty):
        raise ValueError(f"empty_value: expected a finite number, got {empty_value!r}")
    if len(look_boxes) != len(answer_boxes):
        raise ValueError(
            "look_boxes, answer_boxes: expected one box set per rollout in each, got "
            f"{len(look_boxes)} and {len(answer_boxes)}"
        )
    group = len(answer_boxes)
    if group == 0:
        raise ValueError("answer_boxes: expected at least one rollout, got none")
    answers = [_finite_boxes(b, f"answer_boxes[{i}]") for i, b in enumerate(answer_boxes)]
    looks = [_finite_boxes(b, f"look_boxes[{i}]") for i, b in enumerate(look_boxes)]

    # 1. Greedy clustering of the group's answer boxes. The seeds live in one preallocated
    # array (a cluster count can reach the box count), so each box costs one IoU row.
    seeds = np.empty((sum(len(boxes) for boxes in answers), 4))
    members: list[list[FloatArray]] = []
    rollouts: list[set[int]] = []
    for i, boxes in enumerate(answers):
        for box in boxes:
            hits = np.flatnonzero(_iou(box, seeds[: len(members)]) >= tau_c)
            if hits.size:
                k = int(hits[0])
                members[k].append(box)
                rollouts[k].add(i)
            else:
                seeds[len(members)] = box
                members.append([box])
                rollouts.append({i})

    # 2-3. Bernoulli disagreement of each cluster and the uncertain set.
    p = np.array([len(r) / group for r in rollouts], dtype=np.float64)
    uncertain = np.flatnonzero(p * (1.0 - p) >= tau_v - 1e-12)
    if uncertain.size == 0:
        return np.full(group, empty)
    # Mean box of each uncertain cluster, [U, 4]; dividing before summing cannot overflow.
    mean_boxes = np.stack(
        [np.sum(np.stack(members[k]) / len(members[k]), axis=0) for k in uncertain]
    )

    # 4-5. Fraction of the uncertain clusters each rollout inspected.
    rewards = np.zeros(group)
    for i, boxes in enumerate(looks):
        if len(boxes) == 0:
            continue
        if inspect == "centre":
            seen = point_in_box(_centre(mean_boxes)[None, :, :], boxes[:, None, :])  # [L, U]
        else:
            seen = _iou(boxes[:, None, :], mean_boxes[None, :, :]) >= tau_l
        rewards[i] = np.count_nonzero(np.any(seen, axis=0)) / uncertain.size
    return rewards
