"""``varl grpo select``: Temporal-R1's variance-aware data selection with a real model.

Each item of a dataset gets K sampled completions from the model; the task rewards of those
rollouts give the item's reward std, and :func:`varl.grpo.selection.select_informative` keeps the
items whose rollouts disagree (spec tw_grpo_temporal_r1.md §2.3). The kept items are written as a
jsonl file that ``datasets.load_dataset("json", ...)`` reads, each with ``reward_mean`` and
``reward_std`` columns added.

The run is resumable: every scored item is appended at once to ``OUT.rollouts.jsonl``, and a
restarted run skips the items already there.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from varl.grpo.selection import SelectionSummary, select_informative


def rollout_rewards(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    columns: Mapping[str, Sequence[Any]],
    reward_funcs: Sequence[Callable[..., list[float | None]]],
    *,
    rollouts: int,
    max_new_tokens: int,
    temperature: float = 1.0,
) -> np.ndarray:
    """Rewards ``[len(prompts), rollouts]``: the sum of ``reward_funcs`` on sampled completions.

    Args:
        model: A causal LM with ``generate``.
        tokenizer: Its tokenizer (left padding); conversational prompts use its chat template.
        prompts: Plain-string prompts or message lists.
        columns: Dataset columns passed to the reward functions (one value per prompt).
        reward_funcs: TRL-signature reward functions; ``None`` rewards count as 0.
        rollouts: K, completions per prompt.
        max_new_tokens: Generation limit.
        temperature: Sampling temperature.

    Returns:
        The summed task rewards per rollout.
    """
    import torch

    texts = [
        p
        if isinstance(p, str)
        else tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            num_return_sequences=rollouts,
            pad_token_id=tokenizer.pad_token_id,
        )
    completions = tokenizer.batch_decode(
        out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
    )
    repeated = {
        name: [v for v in values for _ in range(rollouts)] for name, values in columns.items()
    }
    total = np.zeros(len(completions))
    for fn in reward_funcs:
        scores = fn(completions, **repeated)
        total += np.array([0.0 if s is None else float(s) for s in scores])
    return total.reshape(len(prompts), rollouts)


def select_with_model(
    items: Sequence[dict[str, Any]],
    model: Any,
    tokenizer: Any,
    reward_funcs: Sequence[Callable[..., list[float | None]]],
    out_path: str | Path,
    *,
    rollouts: int = 8,
    min_std: float = 0.0,
    top_n: int | None = None,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    batch_size: int = 8,
    progress: bool = True,
) -> SelectionSummary:
    """Scores every item with K rollouts (resuming from ``OUT.rollouts.jsonl``), selects and
    writes the kept items to ``out_path``.

    Raises:
        ValueError: If an item lacks ``prompt``, ``rollouts`` < 2 or ``batch_size`` < 1.
    """
    from tqdm.auto import tqdm

    if rollouts < 2:
        raise ValueError(
            f"rollouts: expected an int >= 2 (a std needs two rollouts), got {rollouts}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size}")
    for row, item in enumerate(items):
        if "prompt" not in item:
            raise ValueError(f"dataset row {row}: missing the 'prompt' column")
    out_path = Path(out_path)
    log_path = out_path.with_name(out_path.name + ".rollouts.jsonl")
    done: dict[int, list[float]] = {}
    if log_path.is_file():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            done[int(record["index"])] = record["rewards"]
    todo = [i for i in range(len(items)) if i not in done]
    bar = tqdm(
        total=len(items), initial=len(done), desc="select", unit="item", disable=not progress
    )
    with log_path.open("a", encoding="utf-8") as log:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            names = [k for k in items[batch[0]] if k != "prompt"]
            columns = {k: [items[i].get(k) for i in batch] for k in names}
            rewards = rollout_rewards(
                model,
                tokenizer,
                [items[i]["prompt"] for i in batch],
                columns,
                reward_funcs,
                rollouts=rollouts,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
            )
            for i, row in zip(batch, rewards, strict=True):
                done[i] = row.tolist()
                log.write(json.dumps({"index": i, "rewards": done[i]}) + "\n")
            log.flush()
            bar.update(len(batch))
    bar.close()
    matrix = np.array([done[i] for i in range(len(items))])
    keep, summary = select_informative(matrix, min_std=min_std, top_n=top_n)
    with out_path.open("w", encoding="utf-8") as f:
        for i in np.flatnonzero(keep).tolist():
            record = {
                **items[i],
                "reward_mean": float(matrix[i].mean()),
                "reward_std": float(matrix[i].std(ddof=1)),
            }
            f.write(json.dumps(record) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """``varl grpo select``: see the module docstring; returns an exit code."""
    from varl.grpo.train import import_reward, load_dataset_arg, load_model

    parser = argparse.ArgumentParser(
        prog="varl grpo select",
        description="Keep the items whose K rollouts of the model disagree (Temporal-R1).",
    )
    parser.add_argument("--config", help="flat YAML with any of the flags below")
    parser.add_argument("--model", help="model name or local path (default: the tiny model)")
    parser.add_argument("--dataset", help=".jsonl/.json/.csv file or saved dataset folder")
    parser.add_argument("--reward_funcs", nargs="+", help="task rewards as dotted paths")
    parser.add_argument("--rollouts", type=int, help="K rollouts per item (default 8)")
    parser.add_argument("--min_std", type=float, help="keep items with std > this (default 0)")
    parser.add_argument("--top_n", type=int, help="keep at most this many, largest std first")
    parser.add_argument("--max_new_tokens", type=int, help="generation limit (default 64)")
    parser.add_argument("--temperature", type=float, help="sampling temperature (default 1)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output .jsonl of the kept items")
    args = parser.parse_args(argv)
    settings: dict[str, Any] = {
        "model": None,
        "dataset": None,
        "reward_funcs": ["varl.rewards.text.multi_choice"],
        "rollouts": 8,
        "min_std": 0.0,
        "top_n": None,
        "max_new_tokens": 64,
        "temperature": 1.0,
        "seed": 0,
    }
    if args.config:
        import yaml

        if not Path(args.config).is_file():
            raise ValueError(f"--config: no such file {args.config!r}")
        loaded = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
        unknown = set(loaded) - set(settings)
        if unknown:
            raise ValueError(f"--config: unknown keys {sorted(unknown)}; known: {sorted(settings)}")
        settings.update(loaded)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    if int(settings["rollouts"]) < 2:  # checked before the model loads
        raise ValueError(
            f"rollouts: expected an int >= 2 (a std needs two rollouts), got {settings['rollouts']}"
        )

    import torch
    from transformers import set_seed

    torch.set_num_threads(1)
    set_seed(settings["seed"])
    rewards = [import_reward(path) for path in settings["reward_funcs"]]
    dataset = load_dataset_arg(settings["dataset"])
    model, tok = load_model(settings["model"], seed=settings["seed"], warm_start_steps=150)
    summary = select_with_model(
        list(dataset),
        model,
        tok,
        rewards,
        args.out,
        rollouts=settings["rollouts"],
        min_std=settings["min_std"],
        top_n=settings["top_n"],
        max_new_tokens=settings["max_new_tokens"],
        temperature=settings["temperature"],
    )
    print(  # noqa: T201 (command-line output)
        f"kept {summary.kept}; dropped {summary.all_correct} all-correct, {summary.all_wrong} "
        f"all-wrong, {summary.low_variance} low-variance; wrote {args.out}"
    )
    return 0
