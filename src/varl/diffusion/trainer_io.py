"""Plumbing shared by the LoRA diffusion trainers (AlignProp and DDPO): files, RNGs, config.

:class:`~varl.diffusion.alignprop.AlignPropTrainer` and :class:`~varl.diffusion.ddpo.DDPOTrainer`
differ in their algorithm only; what they do around it lives here, once:

- checkpoints: ``logdir/checkpoints/checkpoint_{epoch}/trainer_state.pt`` (plus the LoRA file
  the trainer writes beside it), found, resolved (``"latest"``), pruned, written atomically and
  read back with ``torch.load(weights_only=True)`` — no pickled code is ever executed, so the
  state must hold tensors and plain Python containers/scalars only
  (:func:`global_rng_state` stores the NumPy RNG in such a form);
- the global RNGs (Python's ``random``, NumPy's legacy ``np.random``, torch's CPU RNG), saved
  with the trainer so a ``prompt_function`` drawing from them resumes exactly;
- logging: ``metrics.csv``, optional TensorBoard scalars and PNG grids of the images;
- the command-line entry (``varl diffusion alignprop|ddpo``): loading the pipeline, the extra
  config keys, prompts and rewards by name. Logs go to ``logdir`` (TRL's default ``"logs"``, in
  the current folder); when the config gives ``output_dir`` but not ``logdir``, they go to
  ``output_dir/logs`` instead (:func:`split_trainer_config`), so one run writes one folder.
"""

from __future__ import annotations

import csv
import dataclasses
import random
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from varl._progress import ProgressBar

STATE_FILE = "trainer_state.pt"
"""Name of the trainer-state file inside a checkpoint folder."""
CHECKPOINT_PREFIX = "checkpoint_"
"""Checkpoint folders are named ``checkpoint_{epoch}``."""
RewardFunction = Callable[[Tensor, tuple[str, ...], tuple[Any, ...]], tuple[Any, Any]]

# ---- checkpoints --------------------------------------------------------------------------


def list_checkpoints(folder: str | Path) -> list[Path]:
    """The ``checkpoint_N`` sub-folders of ``folder`` that hold a state file, oldest (lowest N)
    first; empty when ``folder`` does not exist.

    Example:
        >>> list_checkpoints("/nonexistent")
        []
    """
    folder = Path(folder)
    found = []
    for child in folder.iterdir() if folder.is_dir() else []:
        match = re.fullmatch(rf"{CHECKPOINT_PREFIX}(\d+)", child.name)
        if match and (child / STATE_FILE).exists():
            found.append((int(match.group(1)), child))
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest checkpoint directly in ``folder`` or, failing that, in ``folder/checkpoints``
    (a trainer's ``logdir``); None when there is none."""
    folder = Path(folder)
    for candidate in (folder, folder / "checkpoints"):
        found = list_checkpoints(candidate)
        if found:
            return found[-1]
    return None


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint ``path`` names: itself if it holds a state file, else the latest
    ``checkpoint_N`` in it or in its ``checkpoints/``.

    Raises:
        ValueError: If no checkpoint is found there.
    """
    p = Path(path)
    if (p / STATE_FILE).exists():
        return p
    latest = latest_checkpoint(p)
    if latest is None:
        raise ValueError(f"resume_from: no checkpoint ({STATE_FILE}) found in {str(p)!r}")
    return latest


def resume_target(resume_from: str, logdir: Path | None) -> Path | None:
    """The checkpoint a trainer's ``resume_from`` setting asks for, or None to start fresh.

    ``""``: none; ``"latest"``: the newest checkpoint under ``logdir`` if there is one (a fresh
    start otherwise, so one command both starts and resumes a run); anything else: the
    checkpoint :func:`resolve_checkpoint` finds there.

    Raises:
        ValueError: If an explicit ``resume_from`` holds no checkpoint.
    """
    if not resume_from:
        return None
    if resume_from == "latest":
        return latest_checkpoint(logdir) if logdir is not None else None
    return resolve_checkpoint(resume_from)


def checkpoint_dir(directory: str | Path | None, logdir: Path | None, epoch: int) -> Path:
    """``directory``, or by default ``logdir/checkpoints/checkpoint_{epoch}``.

    Raises:
        ValueError: If neither ``directory`` nor ``logdir`` is given.
    """
    if directory is not None:
        return Path(directory)
    if logdir is None:
        raise ValueError("directory: needed when config.logdir is None")
    return logdir / "checkpoints" / f"{CHECKPOINT_PREFIX}{epoch}"


def save_trainer_state(state: Mapping[str, Any], directory: str | Path) -> Path:
    """Write ``state`` to ``directory/trainer_state.pt`` atomically (a temporary file renamed
    over the old one, so an interrupted save never leaves a half-written state).

    ``state`` must hold only tensors and plain containers/scalars (what
    ``torch.load(weights_only=True)`` accepts); a NumPy array or an arbitrary object raises
    here rather than when resuming.

    Returns:
        The state file's path.

    Raises:
        ValueError: If ``state`` holds something ``load_trainer_state`` could not read back.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _check_loadable(state, "state")
    tmp = out / (STATE_FILE + ".tmp")
    torch.save(dict(state), tmp)
    tmp.replace(out / STATE_FILE)
    return out / STATE_FILE


def _check_loadable(value: Any, where: str) -> None:
    # exact scalar types: a NumPy scalar (a float subclass) would not load with weights_only
    if value is None or type(value) in (bool, int, float, str, bytes):
        return
    if isinstance(value, Tensor | torch.dtype | torch.device):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_loadable(key, f"{where} key")
            _check_loadable(item, f"{where}[{key!r}]")
        return
    if isinstance(value, list | tuple | set):
        for i, item in enumerate(value):
            _check_loadable(item, f"{where}[{i}]")
        return
    raise ValueError(
        f"{where}: expected tensors and plain Python values (loadable with weights_only=True), "
        f"got {type(value).__name__}"
    )


def load_trainer_state(directory: str | Path) -> dict[str, Any]:
    """Read ``directory/trainer_state.pt`` onto the CPU with ``weights_only=True`` (tensors and
    plain containers only; a checkpoint cannot run code when loaded).

    Raises:
        FileNotFoundError: If there is no state file.
    """
    state: dict[str, Any] = torch.load(
        Path(directory) / STATE_FILE, map_location="cpu", weights_only=True
    )
    return state


def prune_checkpoints(directory: Path, limit: int) -> None:
    """Keep the newest ``limit`` checkpoints beside ``directory`` (0: keep all).

    Only prunes when ``directory`` sits in a folder named ``checkpoints`` (a trainer's default
    place), so an explicit save elsewhere never deletes the user's folders.
    """
    if limit and directory.parent.name == "checkpoints":
        for old in list_checkpoints(directory.parent)[:-limit]:
            shutil.rmtree(old)


def write_checkpoint(
    directory: str | Path | None,
    *,
    logdir: Path | None,
    epoch: int,
    state: Mapping[str, Any],
    save_lora: Callable[[Path], Any],
    limit: int,
) -> Path:
    """Save a trainer checkpoint: the state file (:func:`save_trainer_state`), then the LoRA
    file (``save_lora(folder)``), then prune to the newest ``limit`` (:func:`prune_checkpoints`).

    Args:
        directory: The folder; default ``logdir/checkpoints/checkpoint_{epoch}``.
        logdir: The trainer's log folder (None: ``directory`` is required).
        epoch: Names the default folder.
        state: The trainer's ``state_dict()`` (tensors and plain values only).
        save_lora: Writes the adapter into the folder it is given.
        limit: Checkpoints kept under ``checkpoints/`` (0: all).

    Returns:
        The checkpoint folder.

    Raises:
        ValueError: If neither ``directory`` nor ``logdir`` is given, or ``state`` holds
            something ``weights_only=True`` cannot load.
    """
    out = checkpoint_dir(directory, logdir, epoch)
    save_trainer_state(state, out)
    save_lora(out)
    prune_checkpoints(out, limit)
    return out


def draw_prompts(
    prompt_function: Callable[[], Any], n: int
) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """Call ``prompt_function`` ``n`` times; returns the ``n`` prompts and their metadata.

    Raises:
        ValueError: If a call does not return a ``(prompt: str, metadata)`` pair.
    """
    pairs = [prompt_function() for _ in range(n)]
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ValueError(
                f"prompt_function: expected to return (prompt: str, metadata), got {pair!r}"
            )
    return tuple(p for p, _ in pairs), tuple(m for _, m in pairs)


# ---- global RNG states --------------------------------------------------------------------


def global_rng_state() -> dict[str, Any]:
    """The states of Python's ``random``, NumPy's global RNG and torch's CPU RNG, as
    ``{"python_rng", "numpy_rng", "torch_rng"}`` holding only tuples, lists, ints, floats,
    strings and a uint8 tensor (NumPy's key array is stored as a list), so that it loads with
    ``weights_only=True``."""
    kind, keys, *rest = np.random.get_state(legacy=True)
    return {
        "python_rng": random.getstate(),
        "numpy_rng": [kind, np.asarray(keys).tolist(), *rest],
        "torch_rng": torch.get_rng_state(),
    }


def set_global_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`global_rng_state` returned (extra keys are ignored)."""
    random.setstate(state["python_rng"])
    kind, keys, *rest = state["numpy_rng"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch_rng"])


def seed_global_rngs(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs with ``seed`` (as TRL's ``set_seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---- logging ------------------------------------------------------------------------------


def open_tensorboard(logdir: Path) -> Any:
    """A TensorBoard ``SummaryWriter`` on ``logdir/tensorboard``, or None when tensorboard is
    not installed (the trainers then log to ``metrics.csv`` only)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(logdir / "tensorboard"))


def log_metrics(
    logdir: Path, metrics: Mapping[str, float], *, writer: Any, tag: str, step: int
) -> None:
    """Append ``metrics`` as one row of ``logdir/metrics.csv`` (header on the first row) and, if
    ``writer`` is a ``SummaryWriter``, add each metric but ``epoch`` as scalar ``{tag}/{key}``
    at ``step``."""
    logdir.mkdir(parents=True, exist_ok=True)
    path = logdir / "metrics.csv"
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=list(metrics))
        if new:
            out.writeheader()
        out.writerow(dict(metrics))
    if writer is not None:
        for key, value in metrics.items():
            if key != "epoch":
                writer.add_scalar(f"{tag}/{key}", value, step)


def save_image_grid(images: Tensor, path: Path, *, columns: int = 8) -> Path:
    """Tile ``[B, C, H, W]`` images in [0, 1] (C = 1 or 3) into one PNG, ``columns`` per row
    (row-major, the last row padded with black); values are clamped to [0, 1].

    Returns:
        ``path`` (its parent folders are created).
    """
    from PIL import Image

    b, c, h, w = images.shape
    cols = min(columns, b)
    rows = -(-b // cols)
    grid = torch.zeros(c, rows * h, cols * w)
    for k in range(b):
        r, q = divmod(k, cols)
        grid[:, r * h : (r + 1) * h, q * w : (q + 1) * w] = images[k].detach().float().cpu()
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[..., 0] if c == 1 else array).save(path)
    return path


def progress_bar(
    progress: bool | ProgressBar, total: int, *, desc: str, unit: str
) -> tuple[Any, bool]:
    """``(bar, owned)``: a new tqdm bar when ``progress`` is True (owned: the caller closes it),
    None when False, or the given :class:`ProgressBar` reset to ``total`` (not owned)."""
    if progress is False:
        return None, False
    if progress is True:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit), True
    progress.reset(total=total)
    return progress, False


# ---- the command-line entry ---------------------------------------------------------------

CLI_KEYS: dict[str, Any] = {
    "model": "tiny",
    "reward": "brightness",
    "prompts": None,
    "pretrain_steps": None,
    "output_dir": None,
}
"""Keys a trainer's ``train_from_config`` takes beyond its config's fields, with defaults."""


def split_trainer_config(
    cfg: Mapping[str, Any], config_cls: type, tiny_defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a flat CLI mapping into ``config_cls`` field values and the :data:`CLI_KEYS`.

    Config values are, in increasing priority, ``config_cls``'s own defaults, ``tiny_defaults``
    (only when ``model`` is ``"tiny"``) and ``cfg``. When ``cfg`` sets ``output_dir`` but not
    ``logdir``, ``logdir`` becomes ``output_dir/logs`` (the logs land beside the LoRA instead of
    in ``./logs``); an explicit ``logdir`` (None included) is kept.

    Returns:
        ``(values, extra)``: keyword arguments for ``config_cls`` and every :data:`CLI_KEYS`
        key (defaults filled in).

    Raises:
        ValueError: On a key that is neither a field nor a :data:`CLI_KEYS` key.
    """
    config_keys = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(cfg) - config_keys - set(CLI_KEYS))
    if unknown:
        raise ValueError(
            f"cfg: unknown key(s) {unknown}; expected keys from {sorted(config_keys)} or "
            f"{sorted(CLI_KEYS)}"
        )
    extra = {**CLI_KEYS, **{k: v for k, v in cfg.items() if k in CLI_KEYS}}
    defaults = tiny_defaults if str(extra["model"]) == "tiny" else {}
    values = {**defaults, **{k: v for k, v in cfg.items() if k in config_keys}}
    if extra["output_dir"] and "logdir" not in cfg and "logdir" in config_keys:
        values["logdir"] = str(Path(extra["output_dir"]) / "logs")
    return values, extra


def lora_output_dir(output_dir: Any, logdir: str | None) -> Path:
    """Where ``train_from_config`` saves the final LoRA: ``output_dir``, else ``logdir/lora``,
    else ``./lora``."""
    if output_dir:
        return Path(output_dir)
    return Path(logdir) / "lora" if logdir else Path("lora")


def uniform_prompt_function(prompts: Sequence[str] | None) -> Callable[[], tuple[str, Any]]:
    """A ``prompt_function`` drawing uniformly from ``prompts`` (default: the tiny model's
    four) with Python's global ``random``, which the trainers seed and checkpoint.

    Raises:
        ValueError: If ``prompts`` is empty or holds a non-string.
    """
    from varl.diffusion.tiny import PROMPTS

    chosen: list[str] = list(prompts or PROMPTS)
    if not chosen or not all(isinstance(p, str) for p in chosen):
        raise ValueError(f"prompts: expected a non-empty list of strings, got {chosen!r}")

    def prompt_function() -> tuple[str, dict[str, Any]]:
        return random.choice(chosen), {}

    return prompt_function


def load_pipeline(model: str, pretrain_steps: Any = None) -> Any:
    """The pipeline ``model`` names: ``"tiny"`` (:func:`varl.diffusion.tiny.tiny_pipeline`,
    with ``pretrain_steps`` if given) or a local diffusers pipeline folder, loaded with
    ``DiffusionPipeline.from_pretrained(local_files_only=True)`` and given a ``DDIMScheduler``
    built from its scheduler's config.

    Raises:
        ValueError: If ``model`` is neither ``"tiny"`` nor an existing folder.
    """
    if model == "tiny":
        from varl.diffusion.tiny import TinyDiffusionConfig, tiny_pipeline

        tiny_cfg = TinyDiffusionConfig()
        if pretrain_steps is not None:
            tiny_cfg = dataclasses.replace(tiny_cfg, pretrain_steps=int(pretrain_steps))
        return tiny_pipeline(tiny_cfg)
    path = Path(model)
    if not path.is_dir():
        raise ValueError(
            f"model: expected 'tiny' or a local diffusers pipeline folder, got {model!r}"
        )
    import diffusers

    loader: Any = diffusers.DiffusionPipeline.from_pretrained
    pipeline = loader(str(path), local_files_only=True)
    ddim: Any = diffusers.DDIMScheduler.from_config
    pipeline.scheduler = ddim(pipeline.scheduler.config)
    return pipeline


def reward_by_name(name: str, pipeline: Any = None, *, seed: int = 0) -> RewardFunction:
    """The reward called ``name``.

    ``brightness``; ``redness`` (−distance to pure red); ``tv`` (−total variation, a JPEG-size
    proxy); ``jpeg`` (a :class:`~varl.diffusion.rewards.JpegSizeSurrogate` fitted on 256 images
    sampled from ``pipeline``); ``aesthetic`` is not built in (it needs CLIP and LAION head
    weights: pass a dotted path to your own ``AestheticReward``); anything with a ``:`` or
    ``.`` is imported as ``package.module:attribute`` (a callable, or a zero-argument factory
    named ``make_*``).

    Raises:
        ValueError: On an unknown name or an import failure.
    """
    from varl.diffusion import rewards

    table: dict[str, Callable[[], RewardFunction]] = {
        "brightness": lambda: rewards.brightness_reward,
        "redness": lambda: rewards.colour_reward((1.0, 0.0, 0.0)),
        "tv": lambda: rewards.compressibility_reward,
        "jpeg": lambda: _fitted_jpeg_reward(pipeline, seed),
    }
    if name in table:
        return table[name]()
    if name == "aesthetic":
        raise ValueError(
            "reward: 'aesthetic' needs CLIP and aesthetic-head weights, which varl does not "
            "download; build varl.diffusion.rewards.AestheticReward in your own module and pass "
            "its dotted path (package.module:attribute)"
        )
    if ":" in name or "." in name:
        import importlib

        module_name, _, attr = name.rpartition(":") if ":" in name else name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"reward: cannot import {name!r} ({exc})") from exc
        if attr.startswith("make_"):
            obj = obj()
        if not callable(obj):
            raise ValueError(f"reward: {name!r} is not callable")
        fn: RewardFunction = obj
        return fn
    raise ValueError(
        f"reward: expected one of {[*sorted(table), 'aesthetic']} or a dotted path, got {name!r}"
    )


def _fitted_jpeg_reward(pipeline: Any, seed: int) -> RewardFunction:
    from varl.diffusion.rewards import JpegSizeSurrogate
    from varl.diffusion.sampling import sample_images
    from varl.diffusion.tiny import PROMPTS

    if pipeline is None:
        raise ValueError("reward: 'jpeg' needs the pipeline to sample training images from")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        images = torch.cat(
            [
                sample_images(
                    pipeline, list(PROMPTS) * 8, num_steps=10, eta=1.0, generator=gen
                ).images
                for _ in range(8)
            ]
        )
    surrogate = JpegSizeSurrogate(images.shape[1])
    surrogate.fit(images.float(), steps=200, seed=seed)
    reward: RewardFunction = surrogate.reward
    return reward
