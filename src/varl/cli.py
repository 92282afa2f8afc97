"""The ``varl`` command.

Subcommands:
    reproduce   run the paper-claim experiments and write a report (``varl reproduce --list``)
    env         print the versions of varl and its optional frameworks, for bug reports
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from collections.abc import Sequence

from varl import __version__

_OPTIONAL_PACKAGES = (
    "numpy",
    "scipy",
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "peft",
    "datasets",
    "diffusers",
    "gymnasium",
    "mujoco",
    "open-spiel",
    "nashpy",
)


def _cmd_env(args: argparse.Namespace) -> int:
    print(f"varl: {__version__}")
    print(f"python: {platform.python_version()} ({platform.platform()})")
    for name in _OPTIONAL_PACKAGES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        print(f"{name}: {version}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from varl.experiments.runner import check_request, list_experiments, reproduce

    if args.list:
        for name, description in list_experiments():
            print(f"{name:24s} {description}")
        return 0
    try:
        check_request(args.names, args.seeds)
    except ValueError as exc:
        args.parser.error(str(exc))  # exits with status 2 and the usage line
    results = reproduce(
        args.names or None,
        full=args.full,
        seeds=args.seeds,
        out_dir=args.out,
        progress=True,
        resume=args.resume,
    )
    held = sum(r.verdict for r in results)
    print(f"{held}/{len(results)} claims held; report written to {args.out}/report.md")
    return 0


def _cmd_grpo_train(args: argparse.Namespace) -> int:
    from varl.grpo.train import main as train_main

    try:
        return train_main(args.trainer_args)
    except ValueError as exc:  # raised for bad config, model, dataset or reward arguments
        args.parser.error(str(exc))
        return 2


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser for the ``varl`` command (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="varl",
        description="Variance-aware reinforcement learning: reproduce paper claims, train, solve.",
    )
    parser.add_argument("--version", action="version", version=f"varl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    rep = sub.add_parser(
        "reproduce",
        help="run the paper-claim experiments and write reports/latest/",
        description="Run each experiment (quick form by default) and write report.md, "
        "report.html, one PNG per experiment and results.json.",
    )
    rep.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all)")
    rep.add_argument("--full", action="store_true", help="run the larger settings")
    rep.add_argument(
        "--seeds", type=int, default=None, help="number of seeds (default: each experiment's own)"
    )
    rep.add_argument("--out", default="reports/latest", help="output folder (default: %(default)s)")
    rep.add_argument("--list", action="store_true", help="list the experiments and exit")
    rep.add_argument(
        "--resume",
        action="store_true",
        help="reuse experiments already finished in --out with the same settings",
    )
    rep.set_defaults(func=_cmd_reproduce, parser=rep)

    grpo = sub.add_parser("grpo", help="GRPO training with varl's variance-aware pieces (TRL)")
    grpo_sub = grpo.add_subparsers(dest="grpo_command", metavar="COMMAND", required=True)
    train = grpo_sub.add_parser(
        "train",
        help="train VarlGRPOTrainer (default: the embedded tiny model and task)",
        description="Flat YAML of VarlGRPOConfig fields plus model, dataset, reward_funcs "
        "(dotted paths) and resume; every field is also a flag that overrides the file "
        "(e.g. --config cfg.yaml --token_weighting tw_grpo --max_steps 50). "
        "See varl.grpo.train for the fields.",
        add_help=False,
    )
    train.add_argument("trainer_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    train.set_defaults(func=_cmd_grpo_train, parser=train)

    env = sub.add_parser("env", help="print versions for bug reports")
    env.set_defaults(func=_cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``varl`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["grpo", "train"]:
        # Everything after `grpo train` belongs to the trainer's own parser (TRL's TrlParser,
        # one flag per config field), which argparse subparsers cannot pass through intact.
        train = parser.parse_args(["grpo", "train"])
        train.trainer_args = argv[2:]
        return int(train.func(train))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
