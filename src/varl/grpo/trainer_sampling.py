"""How :class:`~varl.grpo.trl.VarlGRPOTrainer` draws a generation batch: GVM allocation and
std-filter regeneration (spec gvm_rlpr.md §1.6, §2.3).

Both replace trl's "G completions of every prompt, once" by a loop around trl's own
``_generate_and_score_completions`` (passed in as ``generate``), so generation, scoring, the
old/reference log-probs and trl's metrics stay trl's. The math lives in pure modules
(:mod:`varl.grpo.gvm_sampling`, :mod:`varl.grpo.advantages`, :mod:`varl.grpo.regenerate`);
this module only reads the trainer's attributes and does not import trl.

- :func:`gvm_generate_and_score`: trl's sampler yields each of the P prompts of a generation
  batch G times, a budget of B = P·G completions. The prompts are deduplicated, the budget is
  split with GVM (:func:`~varl.grpo.gvm_sampling.allocate_budget`) from per-prompt estimates
  refreshed by pre-sampling every ``gvm_refresh_steps`` steps, and exactly n_i completions of
  prompt i are generated — B in total, none generated and thrown away. The advantages are
  recomputed over the variable-size groups (:func:`~varl.grpo.advantages.
  variable_group_advantages`): a prompt with n_i = 0 has no rows, and one with n_i = 1 gets
  advantage 0. trl's loss then sees an ordinary batch of B rows.
- :func:`regenerate_and_score`: RLPR's std filter in its DAPO form
  (:func:`~varl.grpo.regenerate.fill_filtered_groups`): filtered groups are replaced by groups of
  fresh prompts, drawn from the training set by a checkpointed :class:`~varl.grpo.regenerate.
  RefillStream`, for at most ``std_filter_max_rounds`` extra rounds; what is still missing is
  masked.

Both act on training batches only (evaluation runs trl's path unchanged). Both need each process
to generate whole groups on its own, and both are single-process only: the number of rounds and
GVM's per-prompt counts are decided per process, and trl's gathers would then disagree between
processes.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from varl.grpo.advantages import group_std, variable_group_advantages
from varl.grpo.gvm_sampling import GVMEstimates, allocate_budget
from varl.grpo.presample import estimate_acceptance_and_grad_norms
from varl.grpo.regenerate import RefillStream, fill_filtered_groups
from varl.grpo.selection import RewardStdFilter

__all__ = [
    "SAMPLE_ALLOCATIONS",
    "STD_FILTER_MODES",
    "check_sampling_config",
    "check_sampling_trainer",
    "gvm_generate_and_score",
    "regenerate_and_score",
]

STD_FILTER_MODES = ("mask", "regenerate")
SAMPLE_ALLOCATIONS = ("uniform", "gvm")
Generate = Callable[[list[dict[str, Any]]], dict[str, Any]]


def _int_at_least(config: Any, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")


def check_sampling_config(config: Any) -> None:
    """Validates the sampling fields of a ``VarlGRPOConfig`` (after trl's own ``__post_init__``).

    Raises:
        ValueError: Naming the field, on a bad value or an unsupported combination.
    """
    if config.std_filter_mode not in STD_FILTER_MODES:
        raise ValueError(
            f"std_filter_mode: expected one of {STD_FILTER_MODES}, got {config.std_filter_mode!r}"
        )
    _int_at_least(config, "std_filter_max_rounds", 0)
    if config.std_filter_mode == "regenerate" and not config.std_filter:
        raise ValueError("std_filter_mode: 'regenerate' needs std_filter=True")
    if config.sample_allocation not in SAMPLE_ALLOCATIONS:
        raise ValueError(
            f"sample_allocation: expected one of {SAMPLE_ALLOCATIONS}, "
            f"got {config.sample_allocation!r}"
        )
    _int_at_least(config, "gvm_refresh_steps", 1)
    _int_at_least(config, "gvm_presample_count", 1)
    if not math.isfinite(config.gvm_accept_threshold):
        raise ValueError(
            f"gvm_accept_threshold: expected a finite number, got {config.gvm_accept_threshold!r}"
        )
    if not (math.isfinite(config.gvm_alpha) and config.gvm_alpha >= 0):
        raise ValueError(f"gvm_alpha: expected a finite number >= 0, got {config.gvm_alpha!r}")
    if not (math.isfinite(config.gvm_beta) and config.gvm_beta > 0):
        raise ValueError(f"gvm_beta: expected a finite number > 0, got {config.gvm_beta!r}")
    if not isinstance(config.gvm_param_filter, str) or not config.gvm_param_filter:
        raise ValueError(
            f"gvm_param_filter: expected a non-empty string, got {config.gvm_param_filter!r}"
        )
    gvm = config.sample_allocation == "gvm"
    if gvm and config.token_weighting != "none":
        raise ValueError(
            "sample_allocation: 'gvm' makes groups of different sizes, which token_weighting="
            f"{config.token_weighting!r} (whole groups of num_generations) cannot use"
        )
    if gvm and config.std_filter:
        raise ValueError("sample_allocation: 'gvm' cannot be combined with std_filter=True")
    if gvm and config.use_vllm:
        # trl's vLLM paths take one prompt per num_generations rows, which variable group sizes
        # break (completions would be scored against another prompt's reference).
        raise ValueError("sample_allocation: 'gvm' cannot be combined with use_vllm=True")
    if config.std_filter_mode == "regenerate" and config.scale_rewards == "batch":
        raise ValueError(
            "std_filter_mode: 'regenerate' normalises each refill round on its own, so it cannot "
            "be combined with scale_rewards='batch' (use 'group' or 'none')"
        )
    if gvm and config.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError(
            "sample_allocation: 'gvm' needs multi_objective_aggregation='sum_then_normalize', "
            f"got {config.multi_objective_aggregation!r}"
        )
    if gvm or config.std_filter_mode == "regenerate":
        local = config.per_device_train_batch_size * config.steps_per_generation
        if local % config.num_generations:
            field = "sample_allocation" if gvm else "std_filter_mode"
            raise ValueError(
                f"{field}: needs whole groups on each process: per_device_train_batch_size * "
                f"steps_per_generation = {local} is not a multiple of num_generations = "
                f"{config.num_generations}"
            )


def check_sampling_trainer(trainer: Any) -> None:
    """Checks what the config alone cannot: one process, the dataset and the reward functions.

    Raises:
        ValueError: On more than one process, an iterable training set (regeneration), or a
            reward model / async reward function (GVM pre-sampling calls rewards directly).
    """
    args = trainer.args
    regenerate = args.std_filter and args.std_filter_mode == "regenerate"
    gvm = args.sample_allocation == "gvm"
    if not (regenerate or gvm):
        return
    field = "sample_allocation" if gvm else "std_filter_mode"
    if trainer.accelerator.num_processes > 1:
        raise ValueError(f"{field}: {getattr(args, field)!r} runs on one process only")
    if regenerate and not hasattr(trainer.train_dataset, "__getitem__"):
        raise ValueError("std_filter_mode: 'regenerate' needs a map-style train_dataset")
    if gvm:
        for func, name in zip(trainer.reward_funcs, trainer.reward_func_names, strict=True):
            if isinstance(func, torch.nn.Module) or inspect.iscoroutinefunction(func):
                raise ValueError(
                    f"sample_allocation: 'gvm' pre-samples with plain reward functions; "
                    f"{name!r} is a reward model or an async function"
                )


def weighted_rewards(trainer: Any) -> torch.Tensor:
    """``[R]`` weighted sum of the last gathered per-function rewards (NaN where all are None)."""
    rpf = trainer._gathered_rewards
    if rpf is None:
        raise RuntimeError("the gathered rewards of this batch are missing")
    rewards: torch.Tensor = (rpf * trainer.reward_weights.to(rpf.device)[None]).nansum(dim=1)
    rewards[torch.isnan(rpf).all(dim=1)] = torch.nan
    return rewards.float()


def _whole_groups(inputs: Sequence[dict[str, Any]], g: int) -> list[dict[str, Any]]:
    """The first row of each of the P consecutive groups of ``g`` identical prompts."""
    if len(inputs) % g:
        raise ValueError(f"inputs: {len(inputs)} rows are not whole groups of {g}")
    groups = [inputs[i] for i in range(0, len(inputs), g)]
    for i, row in enumerate(groups):
        if any(r["prompt"] != row["prompt"] for r in inputs[i * g : (i + 1) * g]):
            raise ValueError(f"inputs: rows {i * g}..{(i + 1) * g - 1} are not one prompt's group")
    return groups


def _presample_reward(trainer: Any) -> Callable[..., list[float | None]]:
    """The trainer's weighted reward as a TRL-signature function of (completions, **columns)."""
    funcs = list(zip(trainer.reward_funcs, trainer.reward_weights.tolist(), strict=True))
    tokenizer = trainer.processing_class

    def ignore(*args: Any, **kwargs: Any) -> None:
        return None

    def reward(completions: list[str], **columns: Any) -> list[float | None]:
        prompts = columns.pop("prompt")
        ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions]
        total, scored = [0.0] * len(completions), [False] * len(completions)
        for func, weight in funcs:
            out = func(
                prompts=prompts,
                completions=completions,
                completion_ids=ids,
                trainer_state=trainer.state,
                log_extra=ignore,
                log_metric=ignore,
                **columns,
            )
            for j, value in enumerate(out):
                if value is not None and not math.isnan(value):
                    total[j] += weight * float(value)
                    scored[j] = True
        return [t if s else None for t, s in zip(total, scored, strict=True)]

    return reward


def gvm_generate_and_score(
    trainer: Any, inputs: list[dict[str, Any]], generate: Generate, estimates: GVMEstimates
) -> dict[str, Any]:
    """One GVM generation batch: refresh stale estimates, allocate B, generate B, score.

    Args:
        trainer: The ``VarlGRPOTrainer`` (its args, model, rewards and metrics are used).
        inputs: trl's local generation batch, P prompts each repeated G times.
        generate: trl's ``_generate_and_score_completions`` (one completion per input row).
        estimates: The per-prompt estimates, updated in place.

    Returns:
        trl's output dict for the B allocated rows, with variable-group advantages.

    Raises:
        ValueError: If the prompts are not plain strings or the rows are not whole groups.
    """
    args = trainer.args
    groups = _whole_groups(inputs, trainer.num_generations)
    keys = [row["prompt"] for row in groups]
    if not all(isinstance(k, str) for k in keys):
        raise ValueError("sample_allocation: 'gvm' needs plain-text prompts (not conversations)")
    step = trainer.state.global_step
    todo = list(dict.fromkeys(keys[i] for i in estimates.stale(keys, step)))
    if todo:
        first = {k: groups[keys.index(k)] for k in todo}
        skip = ("completion", "completion_ids")
        columns = {c: [first[k][c] for k in todo] for c in groups[0] if c not in skip}
        rates, norms = estimate_acceptance_and_grad_norms(
            trainer.accelerator.unwrap_model(trainer.model),
            trainer.processing_class,
            todo,
            _presample_reward(trainer),
            columns,
            samples=args.gvm_presample_count,
            threshold=args.gvm_accept_threshold,
            max_new_tokens=args.max_completion_length,
            temperature=args.temperature,
            param_filter=args.gvm_param_filter,
            add_special_tokens=True,  # as trl tokenises plain-text prompts
        )
        estimates.update(todo, rates, norms, step)
    rates, norms = estimates.get(keys)
    counts, fallback = allocate_budget(
        rates, norms, len(inputs), alpha=args.gvm_alpha, beta=args.gvm_beta
    )
    # One dict per row: trl writes per-completion fields into its input rows in place.
    rows = [dict(groups[i]) for i, n in enumerate(counts.tolist()) for _ in range(n)]
    output = generate(rows)
    rewards = weighted_rewards(trainer)
    sizes = counts.tolist()
    advantages = variable_group_advantages(rewards, sizes, scale=trainer.scale_rewards, eps=1e-4)
    output["advantages"] = advantages.to(output["advantages"].dtype)

    # trl logged its own statistics over fixed groups of G; replace those two by the real ones.
    present = [n for n in sizes if n > 0]
    starts = np.cumsum([0, *present[:-1]])
    zero_std = [
        n == 1 or float(group_std(rewards[s : s + n][None])[0]) == 0.0
        for s, n in zip(starts.tolist(), present, strict=True)
    ]
    metrics = trainer._metrics["train"]
    if metrics["frac_reward_zero_std"]:
        rows_zero = sum(n for n, z in zip(present, zero_std, strict=True) if z)
        metrics["frac_reward_zero_std"][-1] = rows_zero / len(rows)
    logged = trainer._logs["advantages"]
    for _ in range(min(len(rows), len(logged))):
        logged.pop()
    logged.extend(advantages.tolist())
    metrics["gvm/presampled_prompts"].append(float(len(todo)))
    metrics["gvm/presample_completions"].append(float(len(todo) * args.gvm_presample_count))
    metrics["gvm/count_max"].append(float(max(sizes)))
    metrics["gvm/zero_count_frac"].append(sum(n == 0 for n in sizes) / len(sizes))
    metrics["gvm/singleton_frac"].append(sum(n == 1 for n in sizes) / len(sizes))
    metrics["gvm/uniform_fallback"].append(float(fallback))
    return output


def regenerate_and_score(
    trainer: Any,
    inputs: list[dict[str, Any]],
    generate: Generate,
    std_filter: RewardStdFilter,
    stream: RefillStream,
) -> dict[str, Any]:
    """One generation batch with filtered groups replaced by fresh ones (DAPO-style).

    Args:
        trainer: The ``VarlGRPOTrainer``.
        inputs: trl's local generation batch (whole groups).
        generate: trl's ``_generate_and_score_completions``.
        std_filter: The RLPR filter; its threshold is fixed for the step and its EMA stepped
            once, with the stds of every group generated.
        stream: Where the fresh prompts come from (indices into ``trainer.train_dataset``).

    Returns:
        trl's output dict with as many rows as ``inputs``.

    trl's own per-batch metrics (``reward``, ``frac_reward_zero_std``, lengths, ...) are logged
    once per round, so they describe every group generated, the dropped ones included.
    """
    g = trainer.num_generations
    dataset = trainer.train_dataset

    def scored(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], Any]:
        batch = generate(rows)
        return batch, group_std(weighted_rewards(trainer).view(-1, g)).cpu().numpy()

    def draw(k: int) -> tuple[dict[str, Any], Any]:
        return scored([dict(dataset[i]) for i in stream.take(k) for _ in range(g)])

    first, first_stds = scored(inputs)
    threshold = std_filter.threshold
    result = fill_filtered_groups(
        first,
        first_stds,
        draw,
        threshold=threshold,
        max_rounds=trainer.args.std_filter_max_rounds,
        group_size=g,
        pad_token_id=trainer._tokenizer.pad_token_id,
    )
    std_filter.step(result.stds)
    metrics = trainer._metrics["train"]
    kept = result.stds.size if threshold is None else int((result.stds >= threshold).sum())
    metrics["std_filter/kept_frac"].append(kept / result.stds.size)
    if threshold is not None:
        metrics["std_filter/threshold"].append(threshold)
    metrics["std_filter/regen_rounds"].append(float(result.rounds))
    metrics["std_filter/generated_groups"].append(float(result.stds.size))
    metrics["std_filter/masked_groups"].append(float(result.masked_groups))
    return result.batch
