"""TRL-signature reward functions: ``f(completions, **columns) -> list[float | None]``.

Each reward here parses completions with :mod:`varl.rewards.parse` and scores them with the pure
numpy functions of :mod:`varl.rewards.spatial`, :mod:`~varl.rewards.temporal`,
:mod:`~varl.rewards.choice`, :mod:`~varl.rewards.detection` and :mod:`~varl.rewards.format`.
They follow TRL's ``GRPOTrainer`` convention (trl 1.16, ``GRPOTrainer._calculate_rewards``):

* The trainer calls ``f(prompts=..., completions=..., completion_ids=..., **reward_kwargs)``,
  where ``reward_kwargs`` holds every dataset column except ``prompt`` (one value per
  completion, already repeated per generation), ``trainer_state``, ``log_extra``,
  ``log_metric`` and, with environments, ``environments``. Hence the ``**kwargs`` in every
  signature: it is the trainer's protocol, and the column a reward needs is looked up by name and
  must be present.
* ``completions`` holds plain strings (standard datasets) or message lists (conversational
  datasets, ``[{"role": "assistant", "content": ...}]``); both give the same rewards.
* Called by hand, a reward with a ground-truth column also takes that column as a second
  positional argument, ``f(completions, ground_truth, **kwargs)``:
  ``gui_grounding(["[1, 2, 3, 4]"], [[1, 2, 3, 4]])`` is
  ``gui_grounding(["[1, 2, 3, 4]"], solution=[[1, 2, 3, 4]])`` (the value goes to the reward's
  ``column``). Giving it both positionally and by keyword, or to a reward without a
  ground-truth column (the format and looking rewards), is a ``TypeError``.
* The metric name is the callable's ``__name__`` (``rewards/<name>/mean`` and ``/std`` in the
  logs), so every instance carries a ``__name__``; pass ``name=`` to tell two variants apart.
* Parameterised variants are picklable callable classes (TRL's convention for configurable
  rewards); the lower-case names (:data:`gui_grounding`, ...) are instances with the defaults, so
  ``GRPOTrainer(reward_funcs=[gui_grounding, tag_format])`` works as is.

Failure handling, shared by every reward:

* A completion that cannot be parsed (a malformed completion object, or no answer of the
  required form) scores 0.0 and never raises. The failures in each call are counted and, when the
  trainer passes ``log_metric``, reported as ``log_metric("<name>/parse_failures", count)``. TRL
  averages the values logged between two logging steps (and across processes), so the logged
  metric is the mean number of failures per reward call on one process.
* A missing ground-truth column, a column whose length differs from ``completions``, or a
  malformed ground-truth value raises ``ValueError`` naming the column (and the row: the index in
  the batch passed to the call).
* A ground-truth value of ``None`` means "not applicable" (TRL's multi-task convention): that row
  gets ``None``, which TRL turns into NaN and leaves out of the group statistics when no other
  reward scores the row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from varl._checks import FloatArray, check_fraction, check_nonnegative, check_positive
from varl.rewards.choice import choice_reward
from varl.rewards.detection import detection_reward, looking_reward
from varl.rewards.format import (
    check_tags,
    tag_format_reward,
    temporal_format_reward,
    think_look_answer_format_reward,
)
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
from varl.rewards.spatial import (
    gaussian_coverage_reward,
    gaussian_point_reward,
    gui_grounding_reward,
)
from varl.rewards.temporal import temporal_grounding_reward

__all__ = [
    "DetectionReward",
    "GuiGroundingReward",
    "LookingReward",
    "MultiChoiceReward",
    "TagFormatReward",
    "TemporalGroundingReward",
    "ThinkLookAnswerFormatReward",
    "detection",
    "gui_grounding",
    "looking",
    "multi_choice",
    "tag_format",
    "temporal_grounding",
    "think_look_answer_format",
]

Rewards = list[float | None]
# Keyword arguments TRL adds to the dataset columns; left out of "available columns" messages.
_TRL_KWARGS = frozenset(
    {"prompts", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)


# ----------------------------------------------------------------------------------------------
# Shared plumbing
# ----------------------------------------------------------------------------------------------


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what}: expected a non-empty string, got {value!r}")
    return value


def _completion_texts(completions: Sequence[object]) -> list[str | None]:
    if isinstance(completions, str | bytes) or not isinstance(completions, Sequence):
        raise TypeError(
            "completions: expected a list of completions (strings or message lists), "
            f"got {type(completions).__name__}"
        )
    return [completion_text(c) for c in completions]


def _column(kwargs: Mapping[str, Any], column: str, n: int, reward: str) -> Sequence[Any]:
    """The values of a dataset column, checked to hold one value per completion."""
    if column not in kwargs:
        available = sorted(k for k in kwargs if k not in _TRL_KWARGS)
        raise ValueError(
            f"reward {reward!r} needs the dataset column {column!r}, which was not passed "
            f"(columns passed: {available}); add it to the dataset or set column=..."
        )
    values = kwargs[column]
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise ValueError(
            f"column {column!r}: expected one value per completion, got {type(values).__name__}"
        )
    if len(values) != n:
        raise ValueError(
            f"column {column!r}: expected {n} values (one per completion), got {len(values)}"
        )
    return values if isinstance(values, Sequence) else list(values)


def _report_failures(kwargs: Mapping[str, Any], name: str, count: int) -> None:
    log_metric = kwargs.get("log_metric")
    if callable(log_metric):
        log_metric(f"{name}/parse_failures", count)


class _TextReward(ABC):
    """Base of the reward callables: parses completions, scores them, reports failures."""

    __name__: str

    def __init__(self, name: str) -> None:
        self.__name__ = _check_name(name, "name")

    def __call__(
        self,
        completions: Sequence[object] | None = None,
        ground_truth: Sequence[Any] | None = None,
        /,
        **kwargs: Any,
    ) -> Rewards:
        """Scores a batch of completions.

        Args:
            completions: One completion per sample: strings or TRL message lists. Positional,
                or the keyword ``completions`` as TRL passes it.
            ground_truth: The values of this reward's ground-truth column (one per
                completion), positional only; the same as passing them by the column's name.
            **kwargs: Dataset columns (one value per completion), including the ground-truth
                column this reward reads unless it was given positionally, plus what TRL adds
                (``prompts``, ``completion_ids``, ``trainer_state``, ``log_extra``,
                ``log_metric``); unknown keys are ignored.

        Returns:
            One reward per completion: a float, or ``None`` where the ground truth is ``None``.

        Raises:
            TypeError: If ``completions`` is missing, given twice or not a list of completions,
                or ``ground_truth`` is given both positionally and by keyword, or to a reward
                without a ground-truth column.
            ValueError: If a needed column is missing, has the wrong length, or holds a
                malformed value.
        """
        if completions is None:
            if "completions" not in kwargs:
                raise TypeError(f"reward {self.__name__!r}: missing the completions argument")
            completions = kwargs.pop("completions")
        elif "completions" in kwargs:
            raise TypeError(
                f"reward {self.__name__!r}: got completions both positionally and by keyword"
            )
        if ground_truth is not None:
            column = self._ground_truth_column()
            if column is None:
                raise TypeError(
                    f"reward {self.__name__!r} reads no ground-truth column, but got a second "
                    "positional argument"
                )
            if column in kwargs:
                raise TypeError(
                    f"reward {self.__name__!r} got its ground-truth column {column!r} both "
                    "positionally and by keyword"
                )
            kwargs[column] = ground_truth
        texts = _completion_texts(completions)
        rewards, failures = self._score(texts, kwargs)
        _report_failures(kwargs, self.__name__, failures)
        return rewards

    def _ground_truth_column(self) -> str | None:
        """The dataset column a positional ground truth stands for; ``None`` when there is none."""
        return None

    @abstractmethod
    def _score(self, texts: list[str | None], kwargs: Mapping[str, Any]) -> tuple[Rewards, int]:
        """Returns one reward per text (None where the ground truth is None) and the count of
        texts that could not be parsed."""

    @abstractmethod
    def _settings(self) -> dict[str, object]:
        """Returns the constructor arguments, for ``repr``."""

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({settings})"


# ----------------------------------------------------------------------------------------------
# GUI grounding (GUI-G²)
# ----------------------------------------------------------------------------------------------


class GuiGroundingReward(_TextReward):
    """GUI-G² Gaussian grounding reward on ``[x1, y1, x2, y2]`` answers (arXiv 2507.15846).

    r = w_point · R_point + w_coverage · R_cov (eq. 6), with R_point the Gaussian point reward
    (eq. 2) and R_cov the Bhattacharyya coverage reward (eqs. 3-4), σ = α · box size (eq. 5); see
    :func:`varl.rewards.spatial.gui_grounding_reward`. The predicted box is the first box inside
    ``<answer>`` (or in the whole completion; :func:`varl.rewards.parse.parse_box`); no box scores
    0.0 and counts as a parse failure. Ground truth is a box in the same (pixel or normalised)
    coordinates: a list ``[x1, y1, x2, y2]`` or a string such as ``"[1122, 18, 1206, 48]"``
    (:func:`varl.rewards.parse.parse_gt_box`). A non-finite or degenerate (x1 >= x2 or y1 >= y2)
    box, or one whose width or height times α is not a finite number > 0 (it overflows or
    underflows float64), raises ``ValueError`` naming the column and row (the reference code
    silently scores such rows 0.0).

    Args:
        alpha: σ / box size ratio, > 0; the paper's 0.5.
        w_point: Weight ν of the point reward, >= 0.
        w_coverage: Weight γ of the coverage reward, >= 0.
        round_digits: If set, each component is rounded to this many decimals before weighting,
            as the reference code does with 3 (off by default: rounding makes far predictions
            exactly 0 and so creates zero-variance groups).
        column: Dataset column holding the ground-truth box.
        name: Metric name used by TRL.

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> gui_grounding(["[1122, 18, 1206, 48]", "no box"], solution=[[1122, 18, 1206, 48]] * 2)
        [2.0, 0.0]
    """

    def __init__(
        self,
        alpha: float = 0.5,
        w_point: float = 1.0,
        w_coverage: float = 1.0,
        *,
        round_digits: int | None = None,
        column: str = "solution",
        name: str = "gui_grounding",
    ) -> None:
        super().__init__(name)
        self.alpha = check_positive(alpha, "alpha")
        self.w_point = check_nonnegative(w_point, "w_point")
        self.w_coverage = check_nonnegative(w_coverage, "w_coverage")
        if round_digits is not None and (
            isinstance(round_digits, bool) or not isinstance(round_digits, int) or round_digits < 0
        ):
            raise ValueError(f"round_digits: expected None or an int >= 0, got {round_digits!r}")
        self.round_digits = round_digits
        self.column = _check_name(column, "column")

    def _ground_truth_column(self) -> str:
        return self.column

    def _settings(self) -> dict[str, object]:
        return {
            "alpha": self.alpha,
            "w_point": self.w_point,
            "w_coverage": self.w_coverage,
            "round_digits": self.round_digits,
            "column": self.column,
            "name": self.__name__,
        }

    def _reward(self, pred: FloatArray, gt: FloatArray) -> FloatArray:
        """Scores ``[K, 4]`` predictions against ``[K, 4]`` checked GT boxes in one call."""
        if self.round_digits is None:
            return gui_grounding_reward(pred, gt, self.alpha, self.w_point, self.w_coverage)
        point = np.round(gaussian_point_reward(pred, gt, self.alpha), self.round_digits)
        coverage = np.round(gaussian_coverage_reward(pred, gt, self.alpha), self.round_digits)
        result: FloatArray = self.w_point * point + self.w_coverage * coverage
        return result

    def _score(self, texts: list[str | None], kwargs: Mapping[str, Any]) -> tuple[Rewards, int]:
        values = _column(kwargs, self.column, len(texts), self.__name__)
        # Parse every row first, then score all of them with one vectorised call.
        rows = [row for row, value in enumerate(values) if value is not None]
        gts = np.empty((len(rows), 4))
        preds = np.full((len(rows), 4), np.nan)  # a NaN box scores 0
        failures = 0
        for k, row in enumerate(rows):
            gts[k] = gt = parse_gt_box(values[row], self.column, row)
            with np.errstate(over="ignore", under="ignore"):
                sigma = self.alpha * (gt[2:] - gt[:2])  # GUI-G² eq. 5
            if not np.all(np.isfinite(sigma) & (sigma > 0.0)):
                raise ValueError(
                    f"column {self.column!r}, row {row}: box width/height times "
                    f"alpha={self.alpha} must be a finite number > 0 (it overflows or "
                    f"underflows float64), got the box {gt.tolist()}"
                )
            text = texts[row]
            pred = None if text is None else parse_box(text)
            if pred is None:
                failures += 1
            else:
                preds[k] = pred
        rewards: Rewards = [None] * len(texts)
        for row, reward in zip(rows, self._reward(preds, gts).tolist(), strict=True):
            rewards[row] = reward
        return rewards, failures


# ----------------------------------------------------------------------------------------------
# Multiple choice (TW-GRPO)
# ----------------------------------------------------------------------------------------------


class MultiChoiceReward(_TextReward):
    """TW-GRPO multi-choice reward on option letters in ``<answer>`` (arXiv 2505.24718 §1.4).

    With P the chosen and S the gold option sets: soft r = |P| / |S| if P ⊆ S else 0; binary
    r = 1 if P = S else 0 (:func:`varl.rewards.choice.choice_reward`). The answer is the last
    ``<answer>`` block (or the whole completion), whitespace removed, split on commas
    (:func:`varl.rewards.parse.parse_choices`); an empty answer scores 0.0 and counts as a parse
    failure. Ground truth: ``"A,B"``, ``"<answer>A,B</answer>"`` or ``["A", "B"]``.

    Args:
        mode: ``"soft"`` (TW-GRPO) or ``"binary"`` (exact-set baseline).
        column: Dataset column holding the gold options.
        name: Metric name used by TRL.

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> multi_choice(["<answer>A</answer>", "<answer>A,C</answer>"], solution=["A,B"] * 2)
        [0.5, 0.0]
    """

    def __init__(
        self,
        mode: Literal["soft", "binary"] = "soft",
        *,
        column: str = "solution",
        name: str = "multi_choice",
    ) -> None:
        super().__init__(name)
        if mode not in ("soft", "binary"):
            raise ValueError(f"mode: expected 'soft' or 'binary', got {mode!r}")
        self.mode: Literal["soft", "binary"] = mode
        self.column = _check_name(column, "column")

    def _ground_truth_column(self) -> str:
        return self.column

    def _settings(self) -> dict[str, object]:
        return {"mode": self.mode, "column": self.column, "name": self.__name__}

    def _score(self, texts: list[str | None], kwargs: Mapping[str, Any]) -> tuple[Rewards, int]:
        values = _column(kwargs, self.column, len(texts), self.__name__)
        rewards: Rewards = []
        failures = 0
        for row, (text, value) in enumerate(zip(texts, values, strict=True)):
            if value is None:
                rewards.append(None)
                continue
            gold = parse_gt_choices(value, self.column, row)
            pred = frozenset() if text is None else parse_choices(text)
            if not pred:
                failures += 1
                rewards.append(0.0)
                continue
            rewards.append(choice_reward(pred, gold, mode=self.mode))
        return rewards, failures


# ----------------------------------------------------------------------------------------------
# Temporal grounding (Temporal-R1)
# ----------------------------------------------------------------------------------------------


class TemporalGroundingReward(_TextReward):
    """Temporal-R1 video-grounding reward: w_iou · tIoU + w_format · format (arXiv 2506.01908).

    The predicted ``(start, end)`` comes from the JSON ``{"start_time": ..., "end_time": ...}`` (or
    a ``[s, e]`` pair) in ``<answer>`` (:func:`varl.rewards.parse.parse_interval`). When the batch
    has a ``length_column`` (default ``video_length``, as in Temporal-R1) the prediction, in
    seconds, is divided by that row's length, and the ground truth must be normalised to [0, 1]
    (a ground truth outside [0, 1] raises ``ValueError``); without that column (or where its
    value is ``None``) prediction and ground truth are compared in the same units. A bad length
    (not a finite number > 0) raises ``ValueError`` naming the column and row, whether or not
    that row's completion parsed. The format score is
    :func:`varl.rewards.format.temporal_format_reward` (quoted numbers required), the total
    :func:`varl.rewards.temporal.temporal_grounding_reward`.
    A completion without a readable interval scores 0.0 and counts as a parse failure.

    Args:
        w_iou: Weight of the tIoU term, >= 0.
        w_format: Weight of the format term, >= 0.
        column: Dataset column holding the ground-truth interval.
        length_column: Dataset column with each video's length (seconds), if any.
        name: Metric name used by TRL.

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> answer = '<think>t</think><answer>{"start_time": "75", "end_time": "127"}</answer>'
        >>> [round(r, 7) for r in temporal_grounding(
        ...     [answer], solution=[[0.425, 0.6975]], video_length=[200.0])]
        [0.8255814]
    """

    def __init__(
        self,
        w_iou: float = 0.5,
        w_format: float = 0.5,
        *,
        column: str = "solution",
        length_column: str = "video_length",
        name: str = "temporal_grounding",
    ) -> None:
        super().__init__(name)
        self.w_iou = check_nonnegative(w_iou, "w_iou")
        self.w_format = check_nonnegative(w_format, "w_format")
        self.column = _check_name(column, "column")
        self.length_column = _check_name(length_column, "length_column")

    def _ground_truth_column(self) -> str:
        return self.column

    def _settings(self) -> dict[str, object]:
        return {
            "w_iou": self.w_iou,
            "w_format": self.w_format,
            "column": self.column,
            "length_column": self.length_column,
            "name": self.__name__,
        }

    def _length(self, lengths: Sequence[Any] | None, row: int) -> float | None:
        if lengths is None or lengths[row] is None:
            return None
        value = lengths[row]
        try:
            return check_positive(value, "video length")
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"column {self.length_column!r}, row {row}: expected a video length in seconds "
                f"(a finite number > 0), got {value!r}"
            ) from exc

    def _score(self, texts: list[str | None], kwargs: Mapping[str, Any]) -> tuple[Rewards, int]:
        n = len(texts)
        values = _column(kwargs, self.column, n, self.__name__)
        lengths = (
            _column(kwargs, self.length_column, n, self.__name__)
            if self.length_column in kwargs
            else None
        )
        # Parse every row first, then score all of them with one vectorised call.
        rows = [row for row, value in enumerate(values) if value is not None]
        gts = np.empty((len(rows), 2))
        preds = np.full((len(rows), 2), np.nan)  # a NaN interval scores 0
        fmts = np.zeros(len(rows))
        failures = 0
        for k, row in enumerate(rows):
            gts[k] = gt = parse_gt_interval(values[row], self.column, row)
            length = self._length(lengths, row)
            if length is not None and not (gt[0] >= 0.0 and gt[1] <= 1.0):
                raise ValueError(
                    f"column {self.column!r}, row {row}: expected an interval within [0, 1], got "
                    f"{list(gt)}; the ground truth must be normalised by the video length "
                    f"when column {self.length_column!r} is given"
                )
            text = texts[row]
            interval = None if text is None else parse_interval(text)
            if text is None or interval is None:
                failures += 1  # NaN prediction and format 0: the row scores 0.0
                continue
            preds[k] = interval
            if length is not None:
                with np.errstate(over="ignore"):
                    preds[k] /= length
            fmts[k] = temporal_format_reward(text)
        scores = temporal_grounding_reward(
            preds, gts, fmts, w_iou=self.w_iou, w_format=self.w_format
        )
        rewards: Rewards = [None] * len(texts)
        for row, reward in zip(rows, scores.tolist(), strict=True):
            rewards[row] = reward
        return rewards, failures


# ----------------------------------------------------------------------------------------------
# Detection and looking (DIP-R1, reconstruction)
# ----------------------------------------------------------------------------------------------


def _answer_boxes(text: str) -> FloatArray | None:
    """Boxes in the answer region; ``None`` when there is neither a box nor an explicit ``[]``."""
    region = answer_region(text)
    boxes = parse_boxes(region)
    if boxes.shape[0] == 0 and parse_box_list(region) is None:
        return None
    return boxes


class DetectionReward(_TextReward):
    """DIP-R1 weighted precision–recall detection reward (our reconstruction, spec §2.2(b) [R]).

    r = w_precision · TP / n_pred + w_recall · TP / n_gt, with TP the one-to-one matches at
    IoU >= ``iou_threshold`` (:func:`varl.rewards.detection.detection_reward`). DIP-R1's exact
    formula could not be read; this is varl's reconstruction, not the authors'. Predicted boxes
    are all ``[x1, y1, x2, y2]`` boxes in the last ``<answer>`` block (or the whole completion),
    as :func:`varl.rewards.parse.parse_boxes` reads them: a coordinate that overflows float64
    (``1e400``) is kept as ±inf, and such a box counts as a false positive. An explicit empty
    list ``[]`` predicts no boxes. A completion with neither scores 0.0 and counts as a parse
    failure. Ground truth: a list of boxes ``[[x1, y1, x2, y2], ...]`` or such a string
    (:func:`varl.rewards.parse.parse_gt_boxes`; a degenerate box raises ``ValueError`` naming
    the column and row).

    Args:
        iou_threshold: IoU needed for a match, in (0, 1].
        w_precision: Weight of precision, >= 0.
        w_recall: Weight of recall, >= 0; ``w_precision + w_recall`` must be 1.
        column: Dataset column holding the ground-truth boxes.
        name: Metric name used by TRL.

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> detection(["<answer>[[0,0,10,10],[50,50,60,60]]</answer>"],
        ...           solution=[[[0, 0, 10, 10], [20, 0, 30, 10]]])
        [0.5]
    """

    def __init__(
        self,
        iou_threshold: float = 0.5,
        w_precision: float = 0.5,
        w_recall: float = 0.5,
        *,
        column: str = "solution",
        name: str = "detection",
    ) -> None:
        super().__init__(name)
        self.iou_threshold = check_fraction(iou_threshold, "iou_threshold")
        self.w_precision = check_nonnegative(w_precision, "w_precision")
        self.w_recall = check_nonnegative(w_recall, "w_recall")
        if abs(self.w_precision + self.w_recall - 1.0) > 1e-9:
            raise ValueError(
                "w_precision, w_recall: expected weights summing to 1, got "
                f"{self.w_precision} + {self.w_recall}"
            )
        self.column = _check_name(column, "column")

    def _ground_truth_column(self) -> str:
        return self.column

    def _settings(self) -> dict[str, object]:
        return {
            "iou_threshold": self.iou_threshold,
            "w_precision": self.w_precision,
            "w_recall": self.w_recall,
            "column": self.column,
            "name": self.__name__,
        }

    def _score(self, texts: list[str | None], kwargs: Mapping[str, Any]) -> tuple[Rewards, int]:
        values = _column(kwargs, self.column, len(texts), self.__name__)
        rewards: Rewards = []
        failures = 0
        for row, (text, value) in enumerate(zip(texts, values, strict=True)):
            if value is None:
                rewards.append(None)
                continue
            gt = parse_gt_boxes(value, self.column, row)
            pred = None if text is None else _answer_boxes(text)
            if pred is None:
                failures += 1
                rewards.append(0.0)
                continue
            reward = detection_reward(
                pred,
                gt,
                iou_threshold=self.iou_threshold,
                w_precision=self.w_precision,
                w_recall=self.w_recall,
            )
            rewards.append(float(reward))
        return rewards, failures


class LookingReward(_TextReward):
    """DIP-R1 variance-guided looking reward (our reconstruction, spec §2.2(c) [R]).

    A group-level reward: the answer boxes of the G completions of one prompt are clustered, the
    clusters the group disagrees on (Bernoulli variance p(1 - p) >= ``variance_threshold``) form
    the uncertain set U, and completion i scores the fraction of U its ``<look>`` boxes inspect
    (:func:`varl.rewards.detection.looking_reward`; ``empty_value`` when U is empty). DIP-R1's
    exact formula could not be read; this is varl's reconstruction, not the authors'.

    Look boxes are the finite boxes in the last ``<look>`` block, answer boxes those in the last
    ``<answer>`` block. A completion without a ``<look>`` or an ``<answer>`` block scores 0.0 and
    counts as a parse failure; its answer boxes (if any) still count towards the group's
    clusters. No ground-truth column is used.

    Groups are consecutive runs of G completions, as TRL lays them out. G is ``num_generations``
    given here or, failing that, a ``num_generations`` keyword of the call (TRL does not pass
    one, so set it here when training with TRL). The batch must hold whole groups: its length
    must be a multiple of G. TRL calls reward functions on each process's local batch and, by
    design, may split a group across processes, so on multi-process runs each process's
    generation batch (``per_device_train_batch_size × steps_per_generation``) must be a multiple
    of G too; otherwise the call raises rather than score partial groups. In evaluation TRL uses
    ``num_generations_eval``, which needs its own instance when it differs from G.

    Args:
        num_generations: Group size G, or ``None`` to take it from the call.
        cluster_iou: IoU for an answer box to join a cluster, in (0, 1].
        variance_threshold: Minimum p(1 - p) of an uncertain cluster, in [0, 0.25].
        inspect: How a look box inspects a cluster (see
            :func:`varl.rewards.detection.looking_reward`).
        look_iou: IoU for ``inspect="iou"``, in (0, 1].
        empty_value: Reward when the group has no uncertain cluster.
        name: Metric name used by TRL.

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> done = "<think>t</think><look>{}</look><answer>{}</answer>"
        >>> looking([done.format("[0,0,9,9]", "[[0,0,10,10]]"), done.format("[]", "[]")],
        ...         num_generations=2)
        [1.0, 0.0]
    """

    def __init__(
        self,
        num_generations: int | None = None,
        *,
        cluster_iou: float = 0.5,
        variance_threshold: float = 0.1875,
        inspect: Literal["centre", "iou"] = "centre",
        look_iou: float = 0.5,
        empty_value: float = 0.0,
        name: str = "looking",
    ) -> None:
        super().__init__(name)
        self.num_generations = (
            None if num_generations is None else _check_group_size(num_generations)
        )
        self.cluster_iou = check_fraction(cluster_iou, "cluster_iou")
        self.variance_threshold = check_nonnegative(variance_threshold, "variance_threshold")
        if self.variance_threshold > 0.25:
            raise ValueError(
                f"variance_threshold: expected a number in [0, 0.25], got {variance_threshold!r}"
            )
        if inspect not in ("centre", "iou"):
            raise ValueError(f"inspect: expected 'centre' or 'iou', got {inspect!r}")
        self.inspect: Literal["centre", "iou"] = inspect
        self.look_iou = check_fraction(look_iou, "look_iou")
        self.empty_value = float(empty_value)
        if not np.isfinite(self.empty_value):
            raise ValueError(f"empty_value: expected a finite number, got {empty_value!r}")

    def _settings(self) -> dict[str, object]:
        return {
            "num_generations": self.num_generations,
            "cluster_iou": self.cluster_iou,
            "variance_threshold": self.variance_threshold,
            "inspect": self.inspect,
            "look_iou": self.look_iou,
            "empty_value": self.empty_value,
            "name": self.__name__,
        }

    def _group_size(self, kwargs: Mapping[str, Any], n: int) -> int:
        if self.num_generations is not None:
            size = self.num_generations
        elif kwargs.get("num_generations") is not None:
            size = _check_group_size(kwargs["num_generations"])
        else:
            raise ValueError(
                f"reward {self.__name__!r} needs the group size: create it with "
                "LookingReward(num_generations=G) (TRL does not pass the group size) or pass "
                "num_generations=G in the call"
            )
        if n % size != 0:
            raise ValueError(
                f"reward {self.__name__!r}: the batch holds {n} completions, which is not a "
                f"multiple of num_generations={size}; each call must hold whole groups"
            )
        return size

    def _score(self, texts: list[str | None], kwargs: Mapping[str, Any]) -> tuple[Rewards, int]:
        size = self._group_size(kwargs, len(texts))
        empty = np.zeros((0, 4), dtype=np.float64)
        looks: list[FloatArray] = []
        answers: list[FloatArray] = []
        parsed: list[bool] = []
        for text in texts:
            look = None if text is None else extract_tag(text, "look")
            answer = None if text is None else extract_tag(text, "answer")
            looks.append(empty if look is None else parse_boxes(look))
            answers.append(empty if answer is None else parse_boxes(answer))
            parsed.append(look is not None and answer is not None)
        rewards: Rewards = []
        for start in range(0, len(texts), size):
            group = slice(start, start + size)
            values = looking_reward(
                looks[group],
                answers[group],
                cluster_iou=self.cluster_iou,
                variance_threshold=self.variance_threshold,
                inspect=self.inspect,
                look_iou=self.look_iou,
                empty_value=self.empty_value,
            )
            for ok, value in zip(parsed[group], values.tolist(), strict=True):
                rewards.append(float(value) if ok else 0.0)
        return rewards, parsed.count(False)


def _check_group_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"num_generations: expected an int >= 1, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------------------------
# Format rewards
# ----------------------------------------------------------------------------------------------


class TagFormatReward(_TextReward):
    """Tag-structure format reward: 1.0 iff the completion is exactly the given tag blocks.

    r = 1 iff the completion is ``<t1>…</t1><t2>…</t2>…`` in order, each block once and non-empty,
    nothing but whitespace around and between them
    (:func:`varl.rewards.format.tag_format_reward`; the R1-style format reward of TW-GRPO,
    Temporal-R1 and GUI-G²'s "thinking" variant). A malformed completion object scores 0.0 and
    counts as a parse failure. No ground-truth column is used.

    Args:
        tags: Tag names in their required order.
        name: Metric name used by TRL.

    Raises:
        ValueError: On invalid tags or name.

    Example:
        >>> tag_format(["<think>x</think><answer>A</answer>", "<answer>A</answer>"])
        [1.0, 0.0]
    """

    def __init__(
        self, tags: Sequence[str] = ("think", "answer"), *, name: str = "tag_format"
    ) -> None:
        super().__init__(name)
        self.tags = check_tags(tags)

    def _settings(self) -> dict[str, object]:
        return {"tags": self.tags, "name": self.__name__}

    def _score(self, texts: list[str | None], kwargs: Mapping[str, Any]) -> tuple[Rewards, int]:
        rewards: Rewards = [
            0.0 if text is None else tag_format_reward(text, self.tags) for text in texts
        ]
        return rewards, texts.count(None)


class ThinkLookAnswerFormatReward(_TextReward):
    """DIP-R1 Think–Look–Answer format reward (our reconstruction, spec §2.2(a) [R]).

    r = 1 iff the completion is ``<think>…</think><look>…</look><answer>…</answer>``; with
    ``strict`` the look block must also hold a box and the answer block be a box list
    (:func:`varl.rewards.format.think_look_answer_format_reward`). DIP-R1's exact rule could not be
    read; this is varl's reconstruction. A malformed completion object scores 0.0 and counts as a
    parse failure. No ground-truth column is used.

    Args:
        strict: Also require boxes in ``<look>`` and a box list in ``<answer>``.
        name: Metric name used by TRL.

    Example:
        >>> think_look_answer_format(["<think>a</think><look>[1,1,5,5]</look><answer>[]</answer>"])
        [1.0]
    """

    def __init__(self, *, strict: bool = False, name: str = "think_look_answer_format") -> None:
        super().__init__(name)
        self.strict = bool(strict)

    def _settings(self) -> dict[str, object]:
        return {"strict": self.strict, "name": self.__name__}

    def _score(self, texts: list[str | None], kwargs: Mapping[str, Any]) -> tuple[Rewards, int]:
        rewards: Rewards = [
            0.0 if text is None else think_look_answer_format_reward(text, strict=self.strict)
            for text in texts
        ]
        return rewards, texts.count(None)


gui_grounding = GuiGroundingReward()
"""GUI-G² grounding reward with the paper's defaults (α = 0.5, ν = γ = 1, column ``solution``)."""

multi_choice = MultiChoiceReward()
"""TW-GRPO soft multi-choice reward (column ``solution``)."""

temporal_grounding = TemporalGroundingReward()
"""Temporal-R1 grounding reward 0.5 · tIoU + 0.5 · format (columns ``solution``,
``video_length``)."""

detection = DetectionReward()
"""DIP-R1 weighted precision–recall reward [R] (IoU 0.5, weights 0.5/0.5, column ``solution``)."""

looking = LookingReward()
"""DIP-R1 looking reward [R]; needs ``num_generations`` in the call (or use
``LookingReward(num_generations=G)``)."""

tag_format = TagFormatReward()
"""``<think>…</think><answer>…</answer>`` format reward."""

think_look_answer_format = ThinkLookAnswerFormatReward()
"""DIP-R1 ``<think>``/``<look>``/``<answer>`` format reward [R] (non-strict)."""
