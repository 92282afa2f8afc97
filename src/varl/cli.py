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

    env = sub.add_parser("env", help="print versions for bug reports")
    env.set_defaults(func=_cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``varl`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
