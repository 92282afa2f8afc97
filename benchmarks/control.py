"""Speed and memory of DSAC-T against Stable-Baselines3 SAC at the same network sizes and batch.

Measures, on CPU with 1 and 2 torch threads, in a fresh subprocess per (algorithm, threads):
- gradient updates per second (replay buffer pre-filled, then timed updates only; DSAC-T's
  updates include its delayed actor/α steps on every second update, SAC's an actor step on each);
- env steps per second of collection without training (stochastic policy forward + Pendulum
  step; DSAC-T's also stores each transition and checks it is finite);
- peak resident memory of the process (``ru_maxrss``).
It also times the fused twin critic against two plain critics (forward + backward), and both
agents' updates once more interleaved in one process (alternating blocks of ``BLOCK`` updates),
the ratio to trust when other jobs load the machine.
Both algorithms use ReLU MLPs of ``--hidden`` units and batch ``--batch`` so only the algorithm
and its implementation differ. Target of issue 6: DSAC-T ≥ 1.3× SAC's updates/s.

Run: ``python benchmarks/control.py [--hidden 256 256] [--updates 500] [--threads 1 2]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

FILL = 2000
BLOCK = 25  # updates per timed block when both agents alternate in one process


def _build(algo: str, hidden: list[int], batch: int) -> tuple[float, Callable[[int], None]]:
    """Builds one agent with a filled buffer; returns (collection seconds, run(n updates))."""
    if algo == "dsac_t":
        from varl.control.dsac_t import DSACT, SMALL_BUDGET

        cfg = dataclasses.replace(
            SMALL_BUDGET,
            hidden=tuple(hidden),
            activation="relu",
            batch_size=batch,
            learning_starts=10**9,
            warmup="policy",
            eval_every=0,
        )
        agent = DSACT("Pendulum-v1", cfg, seed=0)
        t0 = time.perf_counter()
        agent.learn(FILL, progress_bar=False)
        collect = time.perf_counter() - t0

        def run_dsac(n: int) -> None:
            for _ in range(n):
                agent.train_step()

        return collect, run_dsac
    from stable_baselines3 import SAC

    model = SAC(
        "MlpPolicy",
        "Pendulum-v1",
        batch_size=batch,
        learning_starts=10**9,
        policy_kwargs={"net_arch": hidden},
        seed=0,
        device="cpu",
    )
    # SB3 acts uniformly before learning_starts, so its collection rate is timed on a loop of
    # stochastic policy forwards + env steps (without storing, unlike DSAC-T's).
    model.learn(FILL)
    obs = model.env.reset()  # type: ignore[union-attr]
    t0 = time.perf_counter()
    for _ in range(FILL):
        action, _ = model.predict(obs, deterministic=False)
        obs, *_ = model.env.step(action)  # type: ignore[union-attr]
    collect = time.perf_counter() - t0

    def run_sac(n: int) -> None:
        model.train(gradient_steps=n, batch_size=batch)

    return collect, run_sac


def _worker(algo: str, threads: int, hidden: list[int], batch: int, updates: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    if algo == "pair":
        # Both agents in one process, timed in alternating blocks of BLOCK updates, so that load
        # from other processes on the machine falls on both alike and the ratio stays meaningful.
        runs = {name: _build(name, hidden, batch) for name in ("dsac_t", "sb3_sac")}
        spent = dict.fromkeys(runs, 0.0)
        for _, run in runs.values():
            run(2)  # warm-up
        for _ in range(max(1, updates // BLOCK)):
            for name, (_, run) in runs.items():
                t0 = time.perf_counter()
                run(BLOCK)
                spent[name] += time.perf_counter() - t0
        done = max(1, updates // BLOCK) * BLOCK
        return {
            "algo": "pair",
            "threads": threads,
            **{f"{name}_updates_per_s": done / spent[name] for name in runs},
        }
    if algo in ("dsac_t", "sb3_sac"):
        collect, run = _build(algo, hidden, batch)
        run(1)  # warm-up
        t0 = time.perf_counter()
        run(updates)
        train = time.perf_counter() - t0
        return {
            "algo": algo,
            "threads": threads,
            "updates_per_s": updates / train,
            "env_steps_per_s": FILL / collect,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    from varl.control.networks import GaussianCritic, TwinGaussianCritic

    obs, act = torch.randn(batch, 3), torch.rand(batch, 1)
    twin = TwinGaussianCritic(3, 1, hidden, "relu")
    pair = [GaussianCritic(3, 1, hidden, "relu") for _ in range(2)]

    def fused() -> None:
        mean, std = twin(obs, act)
        (mean.sum() + std.sum()).backward()

    def plain() -> None:
        outs = [c(obs, act) for c in pair]
        sum(m.sum() + s.sum() for m, s in outs).backward()  # type: ignore[union-attr]

    result: dict[str, Any] = {"algo": algo, "threads": threads}
    for name, fn in (("fused", fused), ("plain", plain)):
        fn()
        t0 = time.perf_counter()
        for _ in range(updates):
            fn()
        result[f"{name}_per_s"] = updates / (time.perf_counter() - t0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(
            json.dumps(_worker(args.worker, args.threads[0], args.hidden, args.batch, args.updates))
        )
        return
    rows = []
    for threads in args.threads:
        for algo in ("dsac_t", "sb3_sac", "critic", "pair"):
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            cmd = [sys.executable, __file__, "--worker", algo, "--threads", str(threads)]
            cmd += ["--batch", str(args.batch), "--updates", str(args.updates), "--hidden"]
            cmd += [str(h) for h in args.hidden]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"hidden {args.hidden}, batch {args.batch}, {args.updates} timed updates, CPU")
    print(f"{'threads':>7} {'algorithm':>10} {'updates/s':>10} {'env steps/s':>12} {'peak MiB':>9}")
    for r in rows:
        if r["algo"] in ("critic", "pair"):
            continue
        print(
            f"{r['threads']:>7} {r['algo']:>10} {r['updates_per_s']:>10.1f} "
            f"{r['env_steps_per_s']:>12.0f} {r['peak_mib']:>9.0f}"
        )
    for threads in args.threads:
        by = {r["algo"]: r for r in rows if r["threads"] == threads}
        ratio = by["dsac_t"]["updates_per_s"] / by["sb3_sac"]["updates_per_s"]
        pair = by["pair"]
        inter = pair["dsac_t_updates_per_s"] / pair["sb3_sac_updates_per_s"]
        crit = by["critic"]
        print(
            f"{threads} thread(s): DSAC-T / SAC updates/s = {ratio:.2f}x separately, "
            f"{inter:.2f}x interleaved in one process (target >= 1.3x); "
            f"fused twin critic fwd+bwd {crit['fused_per_s']:.0f}/s vs plain pair "
            f"{crit['plain_per_s']:.0f}/s ({crit['fused_per_s'] / crit['plain_per_s']:.2f}x)"
        )


if __name__ == "__main__":
    main()
