"""Speed and memory of AlignProp and DDPO updates on the tiny text-to-image UNet.

Measures, each in a fresh subprocess (so ``ru_maxrss`` is the peak of that measurement alone):
- seconds per AlignProp update (sample 8 images with gradients through the last K steps, score,
  backward, AdamW step) for K = T (full) and K = 1, with and without gradient checkpointing;
- seconds per DDPO update (sample 8 chains with log-probs, score, T log-prob recomputations with
  backward, AdamW step; one optimiser step per 8 images, as in the ``alignprop`` experiment);
- memory of one AlignProp forward + backward with K = T: the activation bytes autograd saves for
  backward (distinct non-parameter storages, counted by
  :class:`varl.experiments.alignprop_memory.SavedBytesCounter`; non-reentrant checkpointing
  hides what it recomputes, so only what survives outside the checkpointed calls is counted,
  spec §4.2) and the process's peak resident memory (``ru_maxrss``), with and without
  checkpointing.
On a CUDA machine it repeats the AlignProp timings and memory for a 64×64 UNet (random weights,
the tiny architecture at ``image_size=64``) and reads ``torch.cuda.max_memory_allocated``, naming
the card. Everything runs with one torch thread on the CPU.

Run: ``python benchmarks/diffusion.py [--steps 10] [--batch 8] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any


def _pipeline(image_size: int, device: str) -> Any:
    from varl.diffusion.tiny import TinyDiffusionConfig, tiny_pipeline

    if image_size == 16:
        pipe = tiny_pipeline()  # the pretrained, cached tiny model
    else:  # random weights at the larger size: timing and memory do not depend on them
        pipe = tiny_pipeline(
            TinyDiffusionConfig(image_size=image_size, pretrain_steps=0), use_cache=False
        )
    return pipe.to(device)


def _alignprop_step(
    pipe: Any, params: list[Any], opt: Any, args: argparse.Namespace, k: int, ckpt: bool
) -> None:
    import numpy as np
    import torch

    from varl.diffusion.rewards import brightness_reward
    from varl.diffusion.sampling import sample_images

    prompts = ["a red square"] * args.batch
    mask = np.arange(args.steps) >= args.steps - k
    out = sample_images(
        pipe,
        prompts,
        num_steps=args.steps,
        eta=1.0,
        grad_mask=mask,
        gradient_checkpointing=ckpt,
        generator=torch.Generator().manual_seed(0),
    )
    rewards, _ = brightness_reward(out.images)
    opt.zero_grad()
    (-rewards.mean()).backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


def _saved_bytes(pipe: Any, args: argparse.Namespace, ckpt: bool) -> int:
    """Distinct non-parameter storages saved for backward by one K = T chain (the counter of
    the ``alignprop_memory`` experiment), then the backward pass itself (for the peak RSS)."""
    import torch

    from varl.diffusion.sampling import sample_images
    from varl.experiments.alignprop_memory import SavedBytesCounter

    counter = SavedBytesCounter(list(pipe.unet.parameters()))
    with counter.hooks():
        out = sample_images(
            pipe,
            ["a red square"] * args.batch,
            num_steps=args.steps,
            eta=1.0,
            gradient_checkpointing=ckpt,
            generator=torch.Generator().manual_seed(0),
        )
    (-out.images.mean()).backward()  # type: ignore[no-untyped-call]
    return counter.bytes


def _worker(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from varl.diffusion import lora

    torch.set_num_threads(1)
    device = "cuda" if args.image_size > 16 else "cpu"
    pipe = _pipeline(args.image_size, device)
    result: dict[str, Any] = {"kind": kind, "image_size": args.image_size, "device": device}
    if device == "cuda":
        result["card"] = torch.cuda.get_device_name()
    if kind.startswith("ddpo"):
        from varl.diffusion.ddpo import DDPOConfig, DDPOTrainer
        from varl.diffusion.rewards import brightness_reward

        cfg = DDPOConfig(
            logdir=None,
            num_epochs=1,
            sample_num_steps=args.steps,
            sample_guidance_scale=1.0,
            sample_batch_size=args.batch,
            sample_num_batches_per_epoch=1,
            train_batch_size=args.batch,
            train_learning_rate=1e-3,
            gradient_checkpointing=kind == "ddpo_ckpt",
        )
        trainer = DDPOTrainer(cfg, brightness_reward, lambda: ("a red square", {}), pipe)
        trainer.train(1, progress=False)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train(1 + args.repeats, progress=False)
        result["seconds_per_update"] = (time.perf_counter() - t0) / args.repeats
        result["cpu_seconds_per_update"] = (time.process_time() - c0) / args.repeats
    else:  # alignprop_{full,k1}_{ckpt,plain} or memory_{ckpt,plain}
        params = lora.add_lora(pipe.unet, seed=0)
        opt = torch.optim.AdamW(params, lr=1e-3)
        ckpt = kind.endswith("_ckpt")
        if kind.startswith("memory"):
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            result["saved_bytes"] = _saved_bytes(pipe, args, ckpt)
            if device == "cuda":
                result["cuda_max_allocated"] = torch.cuda.max_memory_allocated()
        else:
            k = args.steps if "_full_" in kind else 1
            _alignprop_step(pipe, params, opt, args, k, ckpt)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.repeats):
                _alignprop_step(pipe, params, opt, args, k, ckpt)
            if device == "cuda":
                torch.cuda.synchronize()
            result["seconds_per_update"] = (time.perf_counter() - t0) / args.repeats
            result["cpu_seconds_per_update"] = (time.process_time() - c0) / args.repeats
    result["ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


KINDS = (
    "alignprop_full_plain",
    "alignprop_full_ckpt",
    "alignprop_k1_plain",
    "alignprop_k1_ckpt",
    "ddpo_plain",
    "memory_plain",
    "memory_ckpt",
)


def _run(kind: str, args: argparse.Namespace, image_size: int) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--repeats",
        str(args.repeats),
        "--image-size",
        str(image_size),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def _print(rows: list[dict[str, Any]], title: str) -> None:
    print(title)
    print(
        f"{'measurement':>22} {'wall s/upd':>10} {'CPU s/upd':>10} {'saved MiB':>10} "
        f"{'peak RSS MiB':>13} {'CUDA max MiB':>13}"
    )
    for r in rows:
        wall = f"{r['seconds_per_update']:.3f}" if "seconds_per_update" in r else "-"
        cpu = f"{r['cpu_seconds_per_update']:.3f}" if "cpu_seconds_per_update" in r else "-"
        saved = f"{r['saved_bytes'] / 2**20:.2f}" if "saved_bytes" in r else "-"
        cuda = f"{r['cuda_max_allocated'] / 2**20:.1f}" if "cuda_max_allocated" in r else "-"
        print(
            f"{r['kind']:>22} {wall:>10} {cpu:>10} {saved:>10} {r['ru_maxrss_mib']:>13.0f} "
            f"{cuda:>13}"
        )
    by = {r["kind"]: r for r in rows}
    if "memory_plain" in by and "memory_ckpt" in by:
        ratio = by["memory_plain"]["saved_bytes"] / max(by["memory_ckpt"]["saved_bytes"], 1)
        print(f"saved-for-backward bytes, no checkpointing / checkpointing (K = T): {ratio:.1f}x")
    if "alignprop_full_plain" in by and "ddpo_plain" in by:
        a, d = by["alignprop_full_plain"], by["ddpo_plain"]
        key = "cpu_seconds_per_update"
        print(f"DDPO / AlignProp (K = T) CPU seconds per update: {d[key] / a[key]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps T")
    parser.add_argument("--batch", type=int, default=8, help="images per update")
    parser.add_argument("--repeats", type=int, default=3, help="timed updates")
    parser.add_argument("--image-size", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(args.worker, args)))
        return
    rows = [_run(kind, args, 16) for kind in KINDS]
    _print(rows, f"tiny UNet 16x16, T = {args.steps}, batch {args.batch}, CPU, 1 thread")
    import torch

    if torch.cuda.is_available():
        cuda_kinds = [k for k in KINDS if not k.startswith("ddpo")]
        rows = [_run(kind, args, 64) for kind in cuda_kinds]
        _print(rows, f"64x64 UNet (random weights) on {rows[0]['card']}, T = {args.steps}")
    else:
        print("no CUDA device: the 64x64 torch.cuda.max_memory_allocated measurements skipped")


if __name__ == "__main__":
    main()
