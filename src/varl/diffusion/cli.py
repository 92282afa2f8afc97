"""``varl diffusion alignprop|ddpo|ctrl-u``: train from a flat YAML config.

Each command reads an optional flat YAML mapping, applies ``--set key=value`` overrides (values
parsed as YAML, so ``--set sample_num_steps=10`` is an int and ``--set truncation=fixed:1`` a
string) and hands the result to the method's ``train_from_config``; with no config at all it
trains on the tiny embedded model. AlignProp and DDPO print the folder holding the LoRA weights
(load them with ``pipeline.load_lora_weights(folder)``); Ctrl-U prints its evaluation metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

COMMANDS = ("alignprop", "ddpo", "ctrl-u")


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A flat YAML mapping (empty without ``path``) with ``key=value`` overrides applied.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: On a file that is not a mapping or an override without ``=``.
    """
    values: Any = {}
    if path is not None:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ValueError(f"config: expected a flat YAML mapping in {path}, got {type(values)}")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set: expected KEY=VALUE, got {item!r}")
        values[key.strip()] = yaml.safe_load(raw)
    return dict(values)


def _trainer(command: str) -> Callable[[Mapping[str, Any]], Any]:
    # Imported on use: each pulls in diffusers and peft.
    if command == "alignprop":
        from varl.diffusion.alignprop import train_from_config as alignprop

        return alignprop
    if command == "ddpo":
        from varl.diffusion.ddpo import train_from_config as ddpo

        return ddpo
    if command == "ctrl-u":
        from varl.diffusion.controlnet import train_from_config as ctrl_u

        return ctrl_u
    raise ValueError(f"command: expected one of {COMMANDS}, got {command!r}")


def run(command: str, config_path: str | None, overrides: Sequence[str] = ()) -> int:
    """Trains with ``command``'s method and prints where the result went (or its metrics).

    Raises:
        ValueError: On an unknown command, a bad config file or a bad config value.
        FileNotFoundError: If ``config_path`` does not exist.
    """
    train = _trainer(command)
    result = train(load_config(config_path, overrides))
    if isinstance(result, Mapping):
        print(json.dumps(dict(result), indent=2, sort_keys=True))
    else:
        print(f"LoRA weights saved in {result} (pipeline.load_lora_weights loads them)")
    return 0
