"""DAPO-style dynamic sampling for the RLPR std filter: replace filtered groups by fresh ones.

RLPR (arXiv 2506.18254, spec gvm_rlpr.md §2.3) drops every GRPO group whose reward std is below
β·EMA and keeps generating new prompt batches until the training batch holds only groups that
passed (verl's DAPO recipe, ``filter_groups``). Here a generation batch of P groups is filled the
same way, with two choices of ours ([O]):

- each extra round generates exactly as many fresh groups as are still missing, so no surplus
  is ever generated (RLPR caches surplus prompts for later instead);
- the rounds are capped (``max_rounds``). Groups still missing after the cap are filled with the
  last round's filtered groups, their advantages zeroed: the fallback is the masking mode.

The filter's threshold is fixed for the whole step (the EMA before this step); its EMA is then
updated once with the stds of every group generated during the step, the dropped ones included
(spec §2.3: "of all generated prompts, including ones the filter then drops").

Batches are the dicts of tensors trl's ``_generate_and_score_completions`` returns; this module
only imports torch and numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

__all__ = ["FillResult", "RefillStream", "concat_rows", "fill_filtered_groups"]

# Tensors padded on the left (prompts); every other [R, T] tensor is padded on the right.
_LEFT_PADDED = ("prompt_ids", "prompt_mask")
# Padding value per key: the pad token for the ids, 1 for trl's tool mask, 0 otherwise.
_PAD_VALUES = {"tool_mask": 1, "importance_sampling_ratio": 1}


def _pad_to(t: torch.Tensor, width: int, value: float, left: bool) -> torch.Tensor:
    extra = width - t.size(1)
    if extra == 0:
        return t
    fill = t.new_full((t.size(0), extra, *t.shape[2:]), value)
    return torch.cat([fill, t] if left else [t, fill], dim=1)


def concat_rows(
    pieces: Sequence[tuple[dict[str, Any], torch.Tensor]], *, pad_token_id: int
) -> dict[str, Any]:
    """Concatenates the selected rows of several trl batches into one batch.

    Args:
        pieces: ``(batch, rows)`` pairs: a trl output dict and the ``[k]`` row indices to take.
            Tensors whose first dimension is the batch's row count are sliced and concatenated,
            ``[R, T]`` ones re-padded to the widest piece (prompts on the left, completions and
            per-token values on the right). ``num_items_in_batch`` is recomputed as the number
            of loss tokens of the result (completion mask times tool mask).
        pad_token_id: The padding id of ``prompt_ids`` / ``completion_ids``.

    Returns:
        The merged batch.

    Raises:
        ValueError: If ``pieces`` is empty, the batches have different keys, or a batch holds
            multimodal inputs (images are not merged).
    """
    if not pieces:
        raise ValueError("pieces: expected at least one (batch, rows) pair")
    keys = set(pieces[0][0])
    for batch, _ in pieces:
        if set(batch) != keys:
            raise ValueError(f"pieces: batches with different keys: {sorted(set(batch) ^ keys)}")
    image_keys = keys & {"pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask"}
    if image_keys:
        raise ValueError(f"pieces: multimodal batches cannot be merged (keys {sorted(image_keys)})")
    merged: dict[str, Any] = {}
    for key in keys - {"num_items_in_batch"}:
        parts = []
        for batch, rows in pieces:
            value = batch[key]
            n_rows = batch["completion_ids"].size(0)
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.size(0) != n_rows:
                raise ValueError(f"pieces: {key!r} is not a per-row tensor and cannot be merged")
            parts.append(value[rows.to(value.device)])
        if parts[0].dim() >= 2:
            width = max(p.size(1) for p in parts)
            ids = key in ("prompt_ids", "completion_ids")
            value = pad_token_id if ids else _PAD_VALUES.get(key, 0)
            parts = [_pad_to(p, width, value, key in _LEFT_PADDED) for p in parts]
        merged[key] = torch.cat(parts)
    mask = merged["completion_mask"]
    if "tool_mask" in merged:
        mask = mask * merged["tool_mask"]
    merged["num_items_in_batch"] = mask.sum()
    return merged


@dataclass(frozen=True)
class FillResult:
    """What :func:`fill_filtered_groups` returns.

    Attributes:
        batch: The merged batch: P groups of G rows; the rows of fallback groups have advantage 0.
        stds: ``[M]`` std of every group generated this step (M >= P), in generation order.
        rounds: Extra generation rounds used (<= ``max_rounds``).
        masked_groups: Groups still filtered after the cap, kept with zero advantage.
    """

    batch: dict[str, Any]
    stds: NDArray[np.float64]
    rounds: int
    masked_groups: int


def fill_filtered_groups(
    first: dict[str, Any],
    first_stds: NDArray[np.float64],
    draw: Callable[[int], tuple[dict[str, Any], NDArray[np.float64]]],
    *,
    threshold: float | None,
    max_rounds: int,
    group_size: int,
    pad_token_id: int,
) -> FillResult:
    """Replaces the groups below ``threshold`` by freshly drawn ones, at most ``max_rounds`` times.

    Args:
        first: The generated batch (P groups of ``group_size`` consecutive rows).
        first_stds: ``[P]`` reward std of its groups.
        draw: ``draw(k)`` generates k fresh groups and returns ``(batch, [k] stds)``.
        threshold: Keep a group when its std >= threshold; None keeps everything (warm-up).
        max_rounds: Most calls of ``draw``, >= 0.
        group_size: Rows per group, G >= 1.
        pad_token_id: Padding id, for :func:`concat_rows`.

    Returns:
        A :class:`FillResult` whose batch holds exactly P groups.

    Raises:
        ValueError: On a bad ``max_rounds`` / ``group_size``, or when a batch or its stds do not
            hold the number of groups asked for.
    """
    if isinstance(max_rounds, bool) or int(max_rounds) != max_rounds or max_rounds < 0:
        raise ValueError(f"max_rounds: expected an int >= 0, got {max_rounds!r}")
    if isinstance(group_size, bool) or int(group_size) != group_size or group_size < 1:
        raise ValueError(f"group_size: expected an int >= 1, got {group_size!r}")

    def kept(batch: dict[str, Any], stds: NDArray[np.float64], k: int) -> NDArray[np.bool_]:
        stds = np.asarray(stds, dtype=np.float64)
        if stds.shape != (k,) or batch["completion_ids"].size(0) != k * group_size:
            raise ValueError(
                f"draw: expected {k} groups of {group_size} rows and {k} stds, got "
                f"{batch['completion_ids'].size(0)} rows and stds of shape {stds.shape}"
            )
        keep: NDArray[np.bool_] = (
            np.ones(k, dtype=np.bool_) if threshold is None else stds >= threshold
        )
        return keep

    def rows(groups: NDArray[np.int64]) -> torch.Tensor:
        g = torch.as_tensor(groups, dtype=torch.long)
        return (g[:, None] * group_size + torch.arange(group_size)).reshape(-1)

    n_groups = len(first_stds)
    keep = kept(first, first_stds, n_groups)
    pieces = [(first, rows(np.flatnonzero(keep)))]
    all_stds = [np.asarray(first_stds, dtype=np.float64)]
    last, last_dropped = first, np.flatnonzero(~keep)
    missing, rounds = int((~keep).sum()), 0
    while missing > 0 and rounds < max_rounds:
        batch, stds = draw(missing)
        rounds += 1
        keep = kept(batch, stds, missing)
        pieces.append((batch, rows(np.flatnonzero(keep))))
        all_stds.append(np.asarray(stds, dtype=np.float64))
        last, last_dropped = batch, np.flatnonzero(~keep)
        missing = int((~keep).sum())
    n_kept = sum(len(r) for _, r in pieces)
    if missing:
        pieces.append((last, rows(last_dropped)))
    merged = concat_rows([p for p in pieces if len(p[1])], pad_token_id=pad_token_id)
    if missing:  # the fallback groups are the last rows: mask them
        merged["advantages"][n_kept:] = 0
    return FillResult(merged, np.concatenate(all_stds), rounds, missing)


class RefillStream:
    """An endless, seeded stream of dataset indices for the fresh groups (checkpointable).

    Each pass over the dataset is a new permutation (seeded by the seed and the pass number), so
    a resumed run continues with exactly the indices the uninterrupted one would have drawn.

    Args:
        size: Dataset length, >= 1.
        seed: Base seed of the permutations.

    Example:
        >>> stream = RefillStream(3, seed=0)
        >>> first = stream.take(2) + stream.take(2)  # crosses into the second permutation
        >>> sorted(first[:3]), len(first)
        ([0, 1, 2], 4)
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        if isinstance(size, bool) or int(size) != size or size < 1:
            raise ValueError(f"size: expected an int >= 1, got {size!r}")
        self.size, self.seed = int(size), int(seed)
        self.epoch, self.position = 0, 0

    def _order(self) -> list[int]:
        # Mixed so that the stream never replays trl's own sampler, which seeds a generator with
        # the same training seed: fresh groups should not be the prompts just filtered.
        gen = torch.Generator().manual_seed((self.seed + 1) * 1_000_003 + self.epoch)
        order: list[int] = torch.randperm(self.size, generator=gen).tolist()
        return order

    def take(self, k: int) -> list[int]:
        """The next ``k`` indices (``k >= 0``)."""
        if isinstance(k, bool) or int(k) != k or k < 0:
            raise ValueError(f"k: expected an int >= 0, got {k!r}")
        out: list[int] = []
        while len(out) < k:
            order = self._order()
            step = min(k - len(out), self.size - self.position)
            out += order[self.position : self.position + step]
            self.position += step
            if self.position == self.size:
                self.epoch, self.position = self.epoch + 1, 0
        return out

    def state_dict(self) -> dict[str, int]:
        """The stream's full state."""
        return {
            "size": self.size,
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output.

        Raises:
            ValueError: If a key is missing or the dataset size differs.
        """
        missing = {"size", "seed", "epoch", "position"} - set(state)
        if missing:
            raise ValueError(f"state: missing keys {sorted(missing)}")
        if int(state["size"]) != self.size:
            raise ValueError(
                f"state: saved for a dataset of {state['size']} rows, this one has {self.size}"
            )
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])
        self.position = int(state["position"])
