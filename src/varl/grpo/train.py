"""``varl grpo train``: VarlGRPOTrainer from a flat YAML config and command-line flags.

The YAML file is a flat mapping of :class:`~varl.grpo.trl.VarlGRPOConfig` fields (TRL's and
varl's) plus the script fields of :class:`GrpoScriptArguments`; flags override the file, as with
``trl grpo``. With no ``model`` the embedded tiny setting runs: the character-level tiny Qwen2 is
warm-started on the multi-answer task and trained on it with the soft multi-choice and format
rewards, on the CPU, in a minute or two.

Example::

    varl grpo train --config cfg.yaml --token_weighting tw_grpo --max_steps 200
    varl grpo train --output_dir runs/tiny --resume      # continue from the last checkpoint
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from varl.grpo.trl import TrlParser, VarlGRPOConfig, VarlGRPOTrainer

DEFAULT_REWARDS = ["varl.rewards.text.multi_choice", "varl.rewards.text.tag_format"]
# Defaults that suit the tiny model; they apply only when no model is given, and a YAML file or a
# flag still overrides each of them.
TINY_DEFAULTS: dict[str, Any] = {
    "max_completion_length": 44,
    "per_device_train_batch_size": 32,
    "num_generations": 8,
    "learning_rate": 1e-3,
    "max_steps": 100,
    "logging_steps": 5,
    "save_steps": 25,
    "report_to": "none",
    "beta": 0.0,
    "loss_aggregation": "token_mean",
    "output_dir": "runs/grpo-tiny",
}


@dataclass
class GrpoScriptArguments:
    """What to train and on which data (the fields that are not trainer settings)."""

    model: str | None = field(
        default=None,
        metadata={"help": "Model name or local path; default: the embedded tiny model."},
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "A .jsonl/.json/.csv file or a saved dataset folder with a 'prompt' column; "
            "default: the multi-answer task."
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: list(DEFAULT_REWARDS),
        metadata={"help": "Reward functions as dotted import paths."},
    )
    resume: bool = field(
        default=False, metadata={"help": "Continue from the last checkpoint in output_dir."}
    )
    warm_start_steps: int = field(
        default=150, metadata={"help": "Supervised warm-start steps of the tiny model."}
    )


def import_reward(path: str) -> Callable[..., Any]:
    """Imports a reward function from a dotted path such as ``varl.rewards.text.multi_choice``.

    Raises:
        ValueError: If the module or attribute cannot be imported, or is not callable.
    """
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"reward_funcs: {path!r} is not a dotted path like 'package.module.func'")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"reward_funcs: cannot import {path!r}: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"reward_funcs: {path!r} is not callable")
    return fn  # type: ignore[no-any-return]


def load_dataset_arg(path: str | None) -> Any:
    """The training dataset: a local file or saved folder, or the multi-answer task by default.

    Raises:
        ValueError: If the path does not exist or has an unsupported extension.
    """
    import datasets

    if path is None:
        from varl.grpo.tiny import multi_answer_task

        return datasets.Dataset.from_list(multi_answer_task() * 8)
    p = Path(path)
    if p.is_dir():
        return datasets.load_from_disk(str(p))
    if not p.is_file():
        raise ValueError(f"dataset: no such file or folder {path!r}")
    kinds = {".jsonl": "json", ".json": "json", ".csv": "csv"}
    if p.suffix not in kinds:
        raise ValueError(f"dataset: expected a .jsonl, .json or .csv file, got {path!r}")
    return datasets.load_dataset(kinds[p.suffix], data_files=str(p), split="train")


def check_columns(dataset: Any, rewards: Sequence[Callable[..., Any]]) -> None:
    """Fails clearly when the dataset lacks ``prompt`` or a column a varl reward reads.

    Raises:
        ValueError: Naming the missing column and the reward that needs it.
    """
    columns = set(dataset.column_names)
    if "prompt" not in columns:
        raise ValueError(f"dataset: needs a 'prompt' column, has {sorted(columns)}")
    for reward in rewards:
        needed = getattr(reward, "column", None)
        if isinstance(needed, str) and needed not in columns:
            raise ValueError(
                f"dataset: reward {getattr(reward, '__name__', reward)!r} reads the column "
                f"{needed!r}, which the dataset lacks (columns: {sorted(columns)})"
            )


def load_model(name: str | None, *, seed: int, warm_start_steps: int = 0) -> tuple[Any, Any]:
    """The model and tokenizer: ``name`` loaded with transformers, or with None the tiny model,
    warm-started on the multi-answer task for ``warm_start_steps`` steps.

    Raises:
        ValueError: If ``name`` is a missing local folder or cannot be loaded.
    """
    if name is None:
        from varl.grpo.tiny import (
            build_char_tokenizer,
            build_tiny_model,
            multi_answer_task,
            warm_start,
            warm_start_pairs,
        )

        tok = build_char_tokenizer()
        model = build_tiny_model(tok, seed=seed)
        if warm_start_steps > 0:
            pairs = warm_start_pairs(multi_answer_task(), correct_fraction=0.6, seed=seed)
            warm_start(model, tok, pairs, steps=warm_start_steps, seed=seed)
        return model, tok
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():
        raise ValueError(f"model: no such local folder {name!r}")
    try:
        tok = AutoTokenizer.from_pretrained(name, padding_side="left")
        model = AutoModelForCausalLM.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"model: cannot load {name!r} ({exc}); pass an existing local folder, or a hub name "
            "with network access"
        ) from exc
    return model, tok


def last_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-N`` folder in ``output_dir``, or None."""
    folders = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return str(max(folders, key=lambda p: int(p.name.split("-")[-1]))) if folders else None


def prepare(argv: Sequence[str]) -> tuple[Any, str | None]:
    """Parses ``argv`` (YAML + flags), checks everything and builds the trainer.

    Returns:
        The trainer and the checkpoint to resume from (None for a fresh run).

    Raises:
        ValueError: On a bad config value, model, dataset, reward path or missing checkpoint.
    """
    argv = list(argv)
    parser = TrlParser((GrpoScriptArguments, VarlGRPOConfig))
    if not _names_a_model(argv):
        parser.set_defaults(**TINY_DEFAULTS)
    import torch

    if not torch.cuda.is_available():
        # trl defaults to bf16 on an accelerator and refuses to start without one; default to the
        # CPU here (a YAML value or --use_cpu false still wins).
        parser.set_defaults(use_cpu=True)
    script, args = parser.parse_args_and_config(argv)
    resume_from = None
    if script.resume:
        resume_from = last_checkpoint(args.output_dir)
        if resume_from is None:
            raise ValueError(f"--resume: no checkpoint-* folder in {args.output_dir!r}")
    rewards = [import_reward(path) for path in script.reward_funcs]
    dataset = load_dataset_arg(script.dataset)
    check_columns(dataset, rewards)
    # A resumed run loads its weights from the checkpoint: no warm start then.
    warm = 0 if script.resume else script.warm_start_steps
    model, tok = load_model(script.model, seed=args.seed, warm_start_steps=warm)
    trainer = VarlGRPOTrainer(
        model=model, processing_class=tok, reward_funcs=rewards, args=args, train_dataset=dataset
    )
    return trainer, resume_from


def main(argv: Sequence[str] | None = None) -> int:
    """Builds the trainer from ``argv`` (see :func:`prepare`), trains and saves; returns 0."""
    trainer, resume_from = prepare(list(argv) if argv is not None else [])
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(trainer.args.output_dir)
    return 0


def _flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``--flag value`` or ``--flag=value`` in ``argv`` (None when absent)."""
    for i, arg in enumerate(argv):
        if arg == flag:
            return argv[i + 1] if i + 1 < len(argv) else ""
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
    return None


def _names_a_model(argv: Sequence[str]) -> bool:
    """Whether ``--model`` is given on the command line or in the ``--config`` YAML file."""
    if _flag_value(argv, "--model") is not None:
        return True
    path = _flag_value(argv, "--config")
    if path is not None:
        import yaml

        if not Path(path).is_file():
            raise ValueError(f"--config: no such file {path!r}")
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
        return isinstance(config, dict) and config.get("model") is not None
    return False
