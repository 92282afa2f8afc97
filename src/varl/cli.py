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
    from varl.grpo.train import prepare

    try:
        trainer, resume_from = prepare(args.trainer_args)
    except ValueError as exc:  # bad config, model, dataset or reward arguments: no traceback
        args.parser.error(str(exc))
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(trainer.args.output_dir)
    return 0


def _cmd_control_train(args: argparse.Namespace) -> int:
    from varl.control.cli import train

    try:
        return train(
            env_id=args.env,
            steps=args.steps,
            seed=args.seed,
            config_path=args.config,
            preset=args.preset,
            out=args.out,
            resume=args.resume,
            save_buffer=not args.no_buffer,
            progress=not args.no_progress,
        )
    except (ValueError, FileNotFoundError) as exc:
        args.parser.error(str(exc))
        return 2


def _cmd_control_eval(args: argparse.Namespace) -> int:
    from varl.control.cli import evaluate

    try:
        return evaluate(args.run_dir, episodes=args.episodes)
    except (ValueError, FileNotFoundError) as exc:
        args.parser.error(str(exc))
        return 2


def _cmd_game_solve(args: argparse.Namespace) -> int:
    from varl.games.cli import solve_command

    try:
        text = solve_command(
            args.game,
            concept=args.concept,
            gamma=args.gamma,
            tau=args.tau,
            iterations=args.iterations,
            method=args.method,
            as_json=args.json,
        )
    except (ValueError, FileNotFoundError) as exc:
        args.parser.error(str(exc))
    print(text)
    return 0


def _cmd_game_psro(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from varl.games.cli import psro_command

    bar = tqdm(total=args.iterations, desc="PSRO", unit="iter", disable=args.json)
    try:
        text = psro_command(
            args.env,
            meta_solver=args.meta_solver,
            gamma=args.gamma,
            iterations=args.iterations,
            seed=args.seed,
            sims_per_entry=args.sims_per_entry,
            symmetric=args.symmetric,
            risk_neutral_oracle=args.risk_neutral_oracle,
            oracle=args.oracle,
            checkpoint=args.checkpoint,
            resume=args.resume,
            as_json=args.json,
            progress=bar,
        )
    except (ValueError, FileNotFoundError) as exc:
        bar.close()
        args.parser.error(str(exc))
    bar.close()
    print(text)
    return 0


def _cmd_diffusion(args: argparse.Namespace) -> int:
    from varl.diffusion.cli import run

    try:
        return run(args.diffusion_name, args.config, args.overrides)
    except (ValueError, TypeError, FileNotFoundError) as exc:
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
    select = grpo_sub.add_parser(
        "select",
        help="keep the items whose K rollouts disagree (Temporal-R1 data selection)",
        add_help=False,
    )
    select.set_defaults(parser=select)

    control = sub.add_parser("control", help="DSAC-T for gymnasium continuous control")
    control_sub = control.add_subparsers(dest="control_command", metavar="COMMAND", required=True)
    ctrain = control_sub.add_parser(
        "train",
        help="train DSAC-T and write checkpoints and evaluations to a run folder",
        description="Train DSAC-T (arXiv 2310.05858). --config is a flat YAML of DSACTConfig "
        "fields applied over --preset; the run folder gets checkpoint.pt, config.yaml and "
        "evaluations.csv (TensorBoard scalars too when tensorboard is installed).",
    )
    ctrain.add_argument("--env", default="Pendulum-v1", help="gymnasium id (default: %(default)s)")
    ctrain.add_argument("--steps", type=int, default=20_000, help="total env steps")
    ctrain.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    ctrain.add_argument("--config", default=None, help="flat YAML of DSACTConfig fields")
    ctrain.add_argument(
        "--preset",
        choices=("paper", "small"),
        default="paper",
        help="base config: the paper's defaults or the small-budget preset (UTD 1, 2x128)",
    )
    ctrain.add_argument("--out", default=None, help="run folder (default: runs/ENV-sSEED)")
    ctrain.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    ctrain.add_argument(
        "--no-buffer", action="store_true", help="do not store the replay buffer in checkpoints"
    )
    ctrain.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ctrain.set_defaults(func=_cmd_control_train, parser=ctrain)
    ceval = control_sub.add_parser("eval", help="evaluate a trained run's deterministic policy")
    ceval.add_argument("run_dir", metavar="RUN_DIR", help="folder written by `control train`")
    ceval.add_argument("--episodes", type=int, default=10, help="episodes (default: 10)")
    ceval.set_defaults(func=_cmd_control_eval, parser=ceval)

    game = sub.add_parser("game", help="risk-averse equilibria (RAE), Nash and PSRO for games")
    game_sub = game.add_subparsers(dest="game_command", metavar="COMMAND", required=True)
    gsolve = game_sub.add_parser(
        "solve",
        help="solve a .json or Gambit .nfg game for an RAE or a Nash equilibrium",
        description="Print each player's strategy, mean, variance and the gap (RAE gap or "
        "NashConv). RAE: mean-variance equilibrium of arXiv 2205.15434 (our reconstruction) "
        "by smooth fictitious play.",
    )
    gsolve.add_argument("game", metavar="GAME", help="game file (.json or .nfg)")
    gsolve.add_argument("--concept", choices=("rae", "nash"), default="rae")
    gsolve.add_argument("--gamma", type=float, default=0.5, help="risk aversion (default: 0.5)")
    gsolve.add_argument(
        "--tau", type=float, default=1e-3, help="SFP temperature, relative to the payoff scale"
    )
    gsolve.add_argument("--iterations", type=int, default=2000, help="SFP iterations")
    gsolve.add_argument(
        "--method",
        default="lemke_howson",
        help="Nash method: lemke_howson, support_enumeration, vertex_enumeration or sfp",
    )
    gsolve.add_argument("--json", action="store_true", help="print JSON instead of a table")
    gsolve.set_defaults(func=_cmd_game_solve, parser=gsolve)
    gpsro = game_sub.add_parser(
        "psro",
        help="run PSRO with an RAE, Nash or uniform meta-solver",
        description="PSRO on a gridworld stag hunt, a two-way road toy or a matrix game, with "
        "exact best-response oracles; prints a table of the final meta-strategy.",
    )
    gpsro.add_argument("--env", required=True, help="stag_hunt, two_way or matrix:FILE")
    gpsro.add_argument("--meta-solver", choices=("rae", "nash", "uniform"), default="rae")
    gpsro.add_argument(
        "--gamma",
        type=float,
        default=None,
        help="risk aversion (default: 0.5 with --meta-solver rae, 0 otherwise)",
    )
    gpsro.add_argument("--iterations", type=int, default=10, help="PSRO iterations")
    gpsro.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    gpsro.add_argument(
        "--sims-per-entry", type=int, default=None, help="episodes per entry (default: exact)"
    )
    gpsro.add_argument(
        "--symmetric", action="store_true", help="one population shared by both players"
    )
    gpsro.add_argument(
        "--oracle",
        choices=("exact", "pg"),
        default="exact",
        help="exact best responses, or torch policy gradient (Markov games)",
    )
    gpsro.add_argument(
        "--risk-neutral-oracle", action="store_true", help="plain best responses (no variance)"
    )
    gpsro.add_argument("--checkpoint", default=None, metavar="DIR", help="save state every step")
    gpsro.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    gpsro.add_argument("--json", action="store_true", help="print JSON instead of a table")
    gpsro.set_defaults(func=_cmd_game_psro, parser=gpsro)

    diffusion = sub.add_parser(
        "diffusion", help="AlignProp, DDPO and Ctrl-U fine-tuning of diffusers models"
    )
    diffusion_sub = diffusion.add_subparsers(
        dest="diffusion_command", metavar="COMMAND", required=True
    )
    helps = {
        "alignprop": "reward backpropagation through the denoising chain (LoRA)",
        "ddpo": "PPO on per-step DDIM log-probabilities (LoRA), AlignProp's baseline",
        "ctrl-u": "uncertainty-weighted reward loss for a ControlNet (toy label-map world)",
    }
    for name, text in helps.items():
        dcmd = diffusion_sub.add_parser(
            name,
            help=text,
            description=f"{text}. Without --config: the tiny embedded model and defaults.",
        )
        dcmd.add_argument("--config", default=None, metavar="YAML", help="flat YAML config")
        dcmd.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one config key (repeatable)",
        )
        dcmd.set_defaults(func=_cmd_diffusion, parser=dcmd, diffusion_name=name)

    env = sub.add_parser("env", help="print versions for bug reports")
    env.set_defaults(func=_cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``varl`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["grpo", "select"]:
        from varl.grpo.select import main as select_main

        try:
            return select_main(argv[2:])
        except ValueError as exc:
            parser.parse_args(["grpo", "select"]).parser.error(str(exc))
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
