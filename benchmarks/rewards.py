"""Speed of the vectorised reward math against a per-completion Python loop.

The loop scores one box pair at a time the way the reference repositories do (GUI-G²'s trainer
calls its reward once per completion, building 2×2 covariance matrices with numpy and inverting
them); the vectorised functions score all pairs in one call. Both must agree to 1e-9, and the
script prints the speed-up. It also times the TRL-signature wrappers on 10k text completions.

Run: ``make bench`` or ``python benchmarks/rewards.py [--pairs 100000] [--completions 10000]``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

from varl.rewards.spatial import box_iou, gaussian_coverage_reward, gaussian_point_reward
from varl.rewards.text import gui_grounding, multi_choice, tag_format, temporal_grounding


def loop_point(pred: list[float], gt: list[float], alpha: float = 0.5) -> float:
    """One completion's Gaussian point reward, scored the per-item way."""
    cx_p, cy_p = (pred[0] + pred[2]) / 2, (pred[1] + pred[3]) / 2
    cx_g, cy_g = (gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2
    sx, sy = alpha * (gt[2] - gt[0]), alpha * (gt[3] - gt[1])
    return math.exp(-0.5 * (((cx_p - cx_g) / sx) ** 2 + ((cy_p - cy_g) / sy) ** 2))


def loop_coverage(pred: list[float], gt: list[float], alpha: float = 0.5) -> float:
    """One completion's Bhattacharyya coverage, with per-item 2×2 numpy linear algebra."""
    mu_p = np.array([(pred[0] + pred[2]) / 2, (pred[1] + pred[3]) / 2])
    mu_g = np.array([(gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2])
    cov_p = np.diag([(alpha * (pred[2] - pred[0])) ** 2, (alpha * (pred[3] - pred[1])) ** 2])
    cov_g = np.diag([(alpha * (gt[2] - gt[0])) ** 2, (alpha * (gt[3] - gt[1])) ** 2])
    cov = (cov_p + cov_g) / 2
    diff = mu_p - mu_g
    term1 = diff @ np.linalg.inv(cov) @ diff / 8
    term2 = 0.5 * math.log(
        np.linalg.det(cov) / math.sqrt(np.linalg.det(cov_p) * np.linalg.det(cov_g))
    )
    return math.exp(-(term1 + term2))


def loop_iou(a: list[float], b: list[float]) -> float:
    """One pair's IoU."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _time(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_boxes(n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centre = rng.uniform(100, 900, size=(2, n, 2))
    size = rng.uniform(10, 120, size=(2, n, 2))
    pred = np.concatenate([centre[0] - size[0] / 2, centre[0] + size[0] / 2], axis=-1)
    gt = np.concatenate([centre[1] - size[1] / 2, centre[1] + size[1] / 2], axis=-1)
    pred_l, gt_l = pred.tolist(), gt.tolist()
    print(f"{n} box pairs (best of 3):")
    print(f"{'function':<22}{'loop s':>10}{'vectorised s':>14}{'speed-up':>10}")
    cases = [
        ("gaussian_point", loop_point, gaussian_point_reward),
        ("gaussian_coverage", loop_coverage, gaussian_coverage_reward),
        ("box_iou", loop_iou, box_iou),
    ]
    for name, loop_fn, vec_fn in cases:
        t_loop, ref = _time(
            lambda f=loop_fn: [f(p, g) for p, g in zip(pred_l, gt_l, strict=True)], repeat=1
        )
        t_vec, out = _time(lambda f=vec_fn: f(pred, gt))
        np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-9, atol=1e-12)
        print(f"{name:<22}{t_loop:>10.3f}{t_vec:>14.4f}{t_loop / t_vec:>9.0f}x")


def bench_text(n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    boxes = rng.uniform(0, 1000, size=(n, 4)).round(1)
    boxes[:, 2:] = boxes[:, :2] + rng.uniform(5, 100, size=(n, 2)).round(1)
    box_text = [
        f"<think>the button</think><answer>[{', '.join(map(str, b))}]</answer>" for b in boxes
    ]
    box_gt = boxes[rng.permutation(n)].tolist()
    letters = ["A", "B", "C", "D", "A,B", "B,C", "A,C,D", "oops"]
    choice_text = [f"<think>hm</think><answer>{letters[i % 8]}</answer>" for i in range(n)]
    choice_gt = ["A,B" for _ in range(n)]
    spans = rng.uniform(0, 30, size=(n, 2))
    span_text = [
        f'<think>t</think> <answer>{{"start_time": "{s:.1f}", "end_time": "{s + d:.1f}"}}</answer>'
        for s, d in spans
    ]
    span_gt = [[0.2, 0.5] for _ in range(n)]
    lengths = [60.0] * n
    print(f"\n{n} text completions through the TRL-signature wrappers (best of 3):")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("gui_grounding", lambda: gui_grounding(box_text, solution=box_gt)),
        ("multi_choice", lambda: multi_choice(choice_text, solution=choice_gt)),
        (
            "temporal_grounding",
            lambda: temporal_grounding(span_text, solution=span_gt, video_length=lengths),
        ),
        ("tag_format", lambda: tag_format(box_text)),
    ]
    for name, fn in cases:
        t, out = _time(fn)
        assert isinstance(out, list) and len(out) == n
        print(f"{name:<22}{t:>8.3f} s  {n / t:>10.0f} completions/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--completions", type=int, default=10_000)
    args = parser.parse_args()
    bench_boxes(args.pairs)
    bench_text(args.completions)


if __name__ == "__main__":
    main()
