"""TW-GRPO costs: chunked vs full-tensor weights, and the trainer's step time with and without.

(a) Token weights for G completions × T positions × V vocabulary from synthetic logits: time and
    peak extra memory of the chunked computation (``chunk_size``) against the full-tensor one
    (``chunk_size=None``). Each variant runs in a fresh process, and the peak is read from the
    process's maximum resident set size above its size once the logits exist.
(b) Seconds per VarlGRPOTrainer step on the tiny model, ``token_weighting="tw_grpo"`` vs
    ``"none"`` (the median of trl's logged ``step_time``).

Run: ``python benchmarks/tw_grpo.py [--G 8 --T 512 --V 32000 --chunk 32 --steps 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(1)
from varl.grpo.token_weights import tw_grpo_token_weights
G, T, V, chunk = map(int, sys.argv[1:5])
chunk = None if chunk == 0 else chunk
torch.manual_seed(0)
logits = torch.randn(G, T, V)
mask = torch.ones(G, T)
tw_grpo_token_weights(logits[:, :4], mask[:, :4], chunk_size=chunk)  # warm up the kernels
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
w = tw_grpo_token_weights(logits, mask, chunk_size=chunk)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "extra_mb": (peak - base) / 1024,
                  "logits_mb": logits.numel() * 4 / 2**20, "checksum": float(w.sum())}))
"""


def weights_run(g: int, t: int, v: int, chunk: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(g), str(t), str(v), str(chunk)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def step_times(weighting: str, steps: int) -> list[float]:
    import datasets
    from transformers import PrinterCallback

    from varl.experiments.tw_grpo import QUICK, warm_model
    from varl.grpo.tiny import multi_answer_task
    from varl.grpo.trl import VarlGRPOConfig, VarlGRPOTrainer
    from varl.rewards.text import multi_choice, tag_format

    model, tok = warm_model(QUICK, seed=0)
    with tempfile.TemporaryDirectory() as out:
        args = VarlGRPOConfig(
            output_dir=out,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            per_device_train_batch_size=32,
            num_generations=8,
            max_completion_length=44,
            max_steps=steps,
            logging_steps=1,
            seed=0,
            beta=0.0,
            loss_aggregation="token_mean",
            token_weighting=weighting,
            learning_rate=1e-3,
        )
        trainer = VarlGRPOTrainer(
            model=model,
            processing_class=tok,
            reward_funcs=[multi_choice, tag_format],
            args=args,
            train_dataset=datasets.Dataset.from_list(multi_answer_task() * 8),
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return [h["step_time"] for h in trainer.state.log_history if "step_time" in h]


def weight_seconds(repeats: int) -> float:
    """Median seconds of the TW-GRPO weight computation alone on one generated batch (the
    extra work a tw_grpo step does), timed on a fixed batch so generation lengths cannot differ."""
    import statistics
    import time

    import datasets
    import torch

    from varl.experiments.tw_grpo import QUICK, warm_model
    from varl.grpo.tiny import multi_answer_task
    from varl.grpo.trl import VarlGRPOConfig, VarlGRPOTrainer
    from varl.rewards.text import multi_choice, tag_format

    model, tok = warm_model(QUICK, seed=0)
    with tempfile.TemporaryDirectory() as out:
        args = VarlGRPOConfig(
            output_dir=out, use_cpu=True, report_to="none", save_strategy="no",
            disable_tqdm=True, per_device_train_batch_size=32, num_generations=8,
            max_completion_length=44, seed=0, beta=0.0, token_weighting="tw_grpo",
        )  # fmt: skip
        trainer = VarlGRPOTrainer(
            model=model, processing_class=tok, reward_funcs=[multi_choice, tag_format],
            args=args, train_dataset=datasets.Dataset.from_list(multi_answer_task() * 8),
        )  # fmt: skip
        batch = next(iter(trainer.get_train_dataloader()))
        output = trainer._generate_and_score_completions(batch)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            with torch.no_grad():
                trainer._tw_grpo_weights(output, "train")
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--G", type=int, default=8)
    parser.add_argument("--T", type=int, default=512)
    parser.add_argument("--V", type=int, default=32000)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    full = weights_run(args.G, args.T, args.V, 0)
    chunked = weights_run(args.G, args.T, args.V, args.chunk)
    same = abs(chunked["checksum"] - full["checksum"]) < 1e-2 * abs(full["checksum"])
    print(f"(a) weights, G={args.G} T={args.T} V={args.V} (logits {full['logits_mb']:.0f} MB):")
    for name, r in (("full tensor", full), (f"chunk={args.chunk}", chunked)):
        print(f"    {name:<12} {r['seconds']:7.2f} s   peak extra memory {r['extra_mb']:7.0f} MB")
    print(
        f"    chunked/full: time {chunked['seconds'] / full['seconds']:.2f}x, "
        f"memory {chunked['extra_mb'] / full['extra_mb']:.3f}x "
        f"(same result: {same})"
    )

    import statistics

    import torch

    torch.set_num_threads(1)
    none = step_times("none", args.steps)
    tw = step_times("tw_grpo", args.steps)
    # The first steps include warm-up; the median of the rest is the steady cost.
    m_none, m_tw = statistics.median(none[2:]), statistics.median(tw[2:])
    print(
        f"(b) VarlGRPOTrainer step on the tiny model (32 completions, median of {args.steps - 2}):"
    )
    print(
        f"    none {m_none:.3f} s   tw_grpo {m_tw:.3f} s   "
        f"overhead {100 * (m_tw / m_none - 1):.0f}% (two training runs: generation lengths differ)"
    )
    w = weight_seconds(20)
    print(
        f"(c) the weight computation alone on one fixed batch: {w:.3f} s per step, "
        f"{100 * w / m_none:.0f}% of a plain step"
    )


if __name__ == "__main__":
    main()
