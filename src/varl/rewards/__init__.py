"""Verifiable rewards: pure numpy reward math, answer parsing, and TRL-signature wrappers.

Modules:
    spatial     GUI-G² Gaussian point / coverage rewards and binary grounding baselines
    temporal    temporal IoU and the Temporal-R1 grounding score
    choice      TW-GRPO soft multi-choice reward
    detection   DIP-R1 weighted precision-recall and variance-guided looking rewards [R]
    format      tag-structure format rewards
    parse       every accepted answer format, in one place
    text        ``f(completions, **columns) -> list[float | None]`` rewards for TRL's GRPOTrainer

The TRL wrappers are re-exported here except ``detection``, whose name belongs to the
``varl.rewards.detection`` module; use ``varl.rewards.text.detection`` or ``DetectionReward``.

Only numpy and scipy are imported here (no torch, trl or transformers), so rewards can be used
and tested without the LLM stack.

Example:
    >>> from varl.rewards import gui_grounding, tag_format
    >>> gui_grounding(["[0, 0, 100, 50]"], solution=[[0, 0, 100, 50]])
    [2.0]
"""

from varl.rewards.choice import choice_reward
from varl.rewards.detection import (
    detection_precision_recall,
    detection_reward,
    f_beta_detection_reward,
    looking_reward,
    match_boxes,
)
from varl.rewards.format import (
    check_tags,
    tag_format_reward,
    temporal_format_reward,
    think_look_answer_format_reward,
)
from varl.rewards.parse import (
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
    box_centre,
    box_iou,
    gaussian_coverage_reward,
    gaussian_point_reward,
    gui_grounding_reward,
    hit_reward,
    iou_threshold_reward,
    point_in_box,
)
from varl.rewards.temporal import temporal_grounding_reward, temporal_iou
from varl.rewards.text import (
    DetectionReward,
    GuiGroundingReward,
    LookingReward,
    MultiChoiceReward,
    TagFormatReward,
    TemporalGroundingReward,
    ThinkLookAnswerFormatReward,
    gui_grounding,
    looking,
    multi_choice,
    tag_format,
    temporal_grounding,
    think_look_answer_format,
)

__all__ = [
    "DetectionReward",
    "GuiGroundingReward",
    "LookingReward",
    "MultiChoiceReward",
    "TagFormatReward",
    "TemporalGroundingReward",
    "ThinkLookAnswerFormatReward",
    "box_centre",
    "box_iou",
    "check_tags",
    "choice_reward",
    "completion_text",
    "detection_precision_recall",
    "detection_reward",
    "extract_tag",
    "f_beta_detection_reward",
    "gaussian_coverage_reward",
    "gaussian_point_reward",
    "gui_grounding",
    "gui_grounding_reward",
    "hit_reward",
    "iou_threshold_reward",
    "looking",
    "looking_reward",
    "match_boxes",
    "multi_choice",
    "parse_box",
    "parse_box_list",
    "parse_boxes",
    "parse_choices",
    "parse_gt_box",
    "parse_gt_boxes",
    "parse_gt_choices",
    "parse_gt_interval",
    "parse_interval",
    "point_in_box",
    "tag_format",
    "tag_format_reward",
    "temporal_format_reward",
    "temporal_grounding",
    "temporal_grounding_reward",
    "temporal_iou",
    "think_look_answer_format",
    "think_look_answer_format_reward",
]
