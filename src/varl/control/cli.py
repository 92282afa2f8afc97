"""What ``varl control train`` and ``varl control eval`` do (the parser lives in ``varl.cli``).

A run folder holds ``checkpoint.pt`` (networks, optimisers, σ̄, α, counters, RNG states and, by
default, the replay buffer), ``config.yaml`` (the effective config) and ``evaluations.csv``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from varl.control.dsac_t import DSACT, SMALL_BUDGET, DSACTConfig

CHECKPOINT = "checkpoint.pt"


def load_config(path: str | Path | None, preset: str = "paper") -> DSACTConfig:
    """The preset (``paper`` defaults or ``small``) with a flat YAML file's fields applied.

    Raises:
        ValueError: On an unknown preset, a non-mapping file or an unknown field.
        FileNotFoundError: If ``path`` does not exist.
    """
    presets = {"paper": DSACTConfig(), "small": SMALL_BUDGET}
    if preset not in presets:
        raise ValueError(f"preset: expected one of {sorted(presets)}, got {preset!r}")
    base = dataclasses.asdict(presets[preset])
    if path is None:
        return DSACTConfig.from_dict(base)
    text = Path(path).read_text(encoding="utf-8")
    values: Any = yaml.safe_load(text) or {}
    if not isinstance(values, dict):
        raise ValueError(f"config: expected a flat YAML mapping in {path}, got {type(values)}")
    return DSACTConfig.from_dict({**base, **values})


def train(
    *,
    env_id: str,
    steps: int,
    seed: int = 0,
    config_path: str | None = None,
    preset: str = "paper",
    out: str | None = None,
    resume: str | None = None,
    save_buffer: bool = True,
    progress: bool = True,
) -> int:
    """Trains (or resumes) a run until ``steps`` env steps in total, checkpointing as it goes.

    A checkpoint is written at every evaluation and at the end, so a killed run continues from
    its last checkpoint with ``resume`` (the environment starts a fresh episode there).

    With ``resume`` the saved run's environment, seed and config win. ``config_path`` or ``out``
    that disagree with the saved run are an error (the parser gives them no default, so they
    were asked for); ``env_id``, ``seed`` and ``preset`` always carry the parser's defaults, so
    a difference from the saved run is reported on stderr and ignored.

    Returns:
        0 on success.

    Raises:
        ValueError: On bad arguments or config.
        FileNotFoundError: If ``resume`` has no checkpoint.
    """
    import torch

    if steps < 1:
        raise ValueError(f"steps: expected >= 1, got {steps}")
    torch.set_num_threads(int(os.environ.get("VARL_TORCH_THREADS", "1")))
    if resume is not None:
        run_dir = Path(resume)
        ckpt = run_dir / CHECKPOINT
        if not ckpt.is_file():
            raise FileNotFoundError(f"resume: no {CHECKPOINT} in {run_dir}")
        agent = DSACT.load(ckpt, log_dir=run_dir)
        _check_resume_args(agent, run_dir, env_id, seed, config_path, preset, out)
    else:
        config = load_config(config_path, preset)
        run_dir = Path(out) if out is not None else Path("runs") / f"{env_id}-s{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(
            yaml.safe_dump({**dataclasses.asdict(config), "hidden": list(config.hidden)}),
            encoding="utf-8",
        )
        agent = DSACT(env_id, config, seed=seed, log_dir=run_dir)
    remaining = steps - agent.num_timesteps
    n_evals = len(agent.evaluations)

    def checkpoint_on_eval(a: DSACT) -> None:
        nonlocal n_evals
        if len(a.evaluations) != n_evals:
            n_evals = len(a.evaluations)
            a.save(run_dir / CHECKPOINT, include_buffer=save_buffer)

    if remaining > 0:
        agent.learn(remaining, callback=checkpoint_on_eval, progress_bar=progress)
    agent.save(run_dir / CHECKPOINT, include_buffer=save_buffer)
    last = agent.evaluations[-1]["return_mean"] if agent.evaluations else float("nan")
    print(
        f"trained {agent.num_timesteps} steps ({agent.num_updates} updates); "
        f"last eval return {last:.1f}; run folder {run_dir}"
    )
    agent.close()
    return 0


def _check_resume_args(
    agent: DSACT,
    run_dir: Path,
    env_id: str,
    seed: int,
    config_path: str | None,
    preset: str,
    out: str | None,
) -> None:
    """Rejects an explicit ``--config``/``--out`` that disagrees with the resumed run and
    reports ignored ``--env``/``--seed``/``--preset`` values (the saved ones win)."""
    if out is not None and Path(out).resolve() != run_dir.resolve():
        agent.close()
        raise ValueError(f"--out {out} differs from the resumed run folder {run_dir}; drop --out")
    if config_path is not None:
        asked = load_config(config_path, preset)
        if asked != agent.config:
            diff = sorted(
                f.name
                for f in dataclasses.fields(asked)
                if getattr(asked, f.name) != getattr(agent.config, f.name)
            )
            agent.close()
            raise ValueError(
                f"--config {config_path} (over --preset {preset}) differs from the run saved in "
                f"{run_dir} in {diff}; a resumed run keeps its saved config, drop --config"
            )
    ignored = []
    if env_id != agent.env_id:
        ignored.append(f"--env {env_id} (saved {agent.env_id})")
    if seed != agent.seed:
        ignored.append(f"--seed {seed} (saved {agent.seed})")
    if config_path is None and load_config(None, preset) != agent.config:
        ignored.append(f"--preset {preset} (the saved config is kept)")
    if ignored:
        print(
            f"resume: the run saved in {run_dir} keeps its settings; ignoring "
            + ", ".join(ignored),
            file=sys.stderr,
        )


def evaluate(run_dir: str, *, episodes: int = 10) -> int:
    """Prints the deterministic policy's mean ± std return over ``episodes`` episodes.

    Raises:
        FileNotFoundError: If ``run_dir`` has no checkpoint.
        ValueError: If ``episodes`` < 1.
    """
    import torch

    torch.set_num_threads(1)
    ckpt = Path(run_dir) / CHECKPOINT
    if not ckpt.is_file():
        raise FileNotFoundError(f"RUN_DIR: no {CHECKPOINT} in {run_dir}")
    if episodes < 1:
        raise ValueError(f"episodes: expected >= 1, got {episodes}")
    agent = DSACT.load(ckpt)
    mean, std = agent.evaluate(episodes)
    print(f"{agent.env_id}: return {mean:.2f} ± {std:.2f} over {episodes} episodes")
    agent.close()
    return 0
