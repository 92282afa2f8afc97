"""VarlGRPOTrainer / VarlGRPOConfig: TRL's GRPOTrainer with varl's variance-aware pieces.

This is the only varl module that imports ``trl``. Everything trl-private that varl relies on is
overridden here and nowhere else, each override naming the trl method it extends; the pin is
``trl>=1.16,<1.17`` because those private methods change between minor releases.

What it adds (off by default, so with defaults it *is* ``trl.GRPOTrainer``):

- ``token_weighting="tw_grpo"``: TW-GRPO (arXiv 2505.24718) token weights from the intra-group
  divergence of the policy's next-token distributions (:mod:`varl.grpo.token_weights`) multiply
  the per-token advantages. trl 1.16 accepts ``[B, T]`` advantages in its loss, so the clipped
  surrogate, the KL term, vLLM corrections and multi-process reductions stay trl's own.
- ``loss_aggregation``: "seq_mean" | "token_mean" | "fixed_length" names the aggregation of
  :func:`varl.grpo.losses.aggregate` and sets trl's ``loss_type`` to the variant computing it
  ("grpo", "bnpo", "dr_grpo"). Token weighting and aggregation are independent switches.

Metrics: trl's own names, plus ``tw/weight_mean`` and ``tw/weight_max`` over completion tokens.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from trl import GRPOConfig, GRPOTrainer, TrlParser

from varl.grpo.losses import AGGREGATIONS
from varl.grpo.token_weights import tw_grpo_token_weights

__all__ = ["TrlParser", "VarlGRPOConfig", "VarlGRPOTrainer"]

TOKEN_WEIGHTINGS = ("none", "tw_grpo")
# The trl loss_type computing each varl aggregation (trl.GRPOTrainer._compute_loss).
TRL_LOSS_TYPE = {"seq_mean": "grpo", "token_mean": "bnpo", "fixed_length": "dr_grpo"}
# Most logits (floats) one weighting forward pass may produce: 2**26 floats = 256 MiB in float32.
_LOGITS_BUDGET = 2**26
# Inputs a vision-language model's forward needs besides the token ids (trl 1.16 output keys).
_MULTIMODAL_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "pixel_attention_mask",
    "spatial_shapes",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


@dataclass
class VarlGRPOConfig(GRPOConfig):
    """``trl.GRPOConfig`` plus varl's switches (all off by default).

    Parameters that control TW-GRPO token weighting:
        token_weighting: ``"none"`` or ``"tw_grpo"``.
        tw_alpha: Largest token weight α >= 1 (1.7 in the TW-GRPO script).
        tw_chunk_size: Completion positions per chunk when computing the weights (bounds memory
            at chunk × G × V floats), >= 1.
        tw_normalize_over: ``"all"`` positions (reference) or ``"valid"`` ones for the min-max.

    Parameters that control the loss:
        loss_aggregation: None keeps trl's ``loss_type``; ``"seq_mean"``, ``"token_mean"`` or
            ``"fixed_length"`` set it to trl's ``"grpo"``, ``"bnpo"`` or ``"dr_grpo"``.
    """

    token_weighting: str = field(
        default="none", metadata={"help": "Token weighting: 'none' or 'tw_grpo' (TW-GRPO)."}
    )
    tw_alpha: float = field(default=1.7, metadata={"help": "TW-GRPO maximum token weight (>= 1)."})
    tw_chunk_size: int = field(
        default=64, metadata={"help": "Positions per chunk for the TW-GRPO weights (>= 1)."}
    )
    tw_normalize_over: str = field(
        default="all", metadata={"help": "TW-GRPO min-max over 'all' or 'valid' positions."}
    )
    loss_aggregation: str | None = field(
        default=None,
        metadata={"help": "None (keep loss_type) or 'seq_mean', 'token_mean', 'fixed_length'."},
    )

    def __post_init__(self) -> None:
        if self.token_weighting not in TOKEN_WEIGHTINGS:
            raise ValueError(
                f"token_weighting: expected one of {TOKEN_WEIGHTINGS}, got {self.token_weighting!r}"
            )
        if not (math.isfinite(self.tw_alpha) and self.tw_alpha >= 1.0):
            raise ValueError(f"tw_alpha: expected a finite number >= 1, got {self.tw_alpha!r}")
        chunk = self.tw_chunk_size
        if isinstance(chunk, bool) or int(chunk) != chunk or chunk < 1:
            raise ValueError(f"tw_chunk_size: expected an int >= 1, got {chunk!r}")
        if self.tw_normalize_over not in ("all", "valid"):
            raise ValueError(
                f"tw_normalize_over: expected 'all' or 'valid', got {self.tw_normalize_over!r}"
            )
        if self.loss_aggregation is not None:
            if self.loss_aggregation not in AGGREGATIONS:
                raise ValueError(
                    f"loss_aggregation: expected None or one of {AGGREGATIONS}, "
                    f"got {self.loss_aggregation!r}"
                )
            self.loss_type = TRL_LOSS_TYPE[self.loss_aggregation]
        super().__post_init__()
        if self.token_weighting == "tw_grpo":
            # The weights compare the G completions of a prompt, so each process must generate
            # whole groups (trl only requires the global batch to hold whole groups).
            local = self.per_device_train_batch_size * self.steps_per_generation
            if local % self.num_generations:
                raise ValueError(
                    "token_weighting='tw_grpo' needs whole groups on each process: "
                    f"per_device_train_batch_size * steps_per_generation = {local} is not a "
                    f"multiple of num_generations = {self.num_generations}"
                )


class VarlGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` with TW-GRPO token weighting (see the module docstring).

    Construct it exactly like ``GRPOTrainer``, with a :class:`VarlGRPOConfig` as ``args``.
    """

    _tag_names: ClassVar[list[str]] = ["trl", "grpo", "varl", "tw-grpo"]
    _name: ClassVar[str] = "VarlGRPO"
    _paper: ClassVar[dict[str, str]] = {
        "title": "Reinforcing Video Reasoning with Focused Thinking",
        "id": "2505.24718",
        "citation": textwrap.dedent("""\
            @misc{twgrpo2025,
                title        = {{Reinforcing Video Reasoning with Focused Thinking}},
                year         = 2025,
                eprint       = {arXiv:2505.24718},
            }"""),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, VarlGRPOConfig):
            raise TypeError(
                f"args: expected a VarlGRPOConfig, got {type(self.args).__name__} "
                "(use trl.GRPOTrainer for a plain GRPOConfig)"
            )

    # Extends trl.GRPOTrainer._generate_and_score_completions (trl 1.16): after trl has generated,
    # scored and computed the (local) advantages, scale them token by token.
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output: dict[str, Any] = super()._generate_and_score_completions(inputs)
        if self.args.token_weighting == "tw_grpo":
            mode = "train" if self.model.training else "eval"
            weights = self._tw_grpo_weights(output, mode)
            output["advantages"] = output["advantages"][:, None] * weights
            mask = output["completion_mask"].to(weights.dtype)
            mean = (weights * mask).sum() / mask.sum().clamp(min=1.0)
            gathered_mean = self.accelerator.gather(mean.detach()).mean().item()
            gathered_max = self.accelerator.gather(weights.max().detach()).max().item()
            self._metrics[mode]["tw/weight_mean"].append(gathered_mean)
            self._metrics[mode]["tw/weight_max"].append(gathered_max)
        return output

    @torch.no_grad()
    def _completion_logits(self, output: dict[str, Any], rows: slice) -> torch.Tensor:
        """The policy's logits ``[n, T, V]`` at the completion positions of ``rows``.

        Mirrors how trl's ``_get_per_token_logps_and_entropies`` aligns logits with tokens
        (drop the last position, keep the last T, divide by the sampling temperature).
        """
        prompt_ids, completion_ids = output["prompt_ids"][rows], output["completion_ids"][rows]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat(
            [output["prompt_mask"][rows], output["completion_mask"][rows]], dim=1
        )
        n_completion = completion_ids.size(1)
        extra = {key: output[key] for key in _MULTIMODAL_KEYS if key in output}
        with self.accelerator.autocast():  # the mixed precision of trl's own forward passes
            logits = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                logits_to_keep=n_completion + 1,
                use_cache=False,
                **extra,
            ).logits.float()
        # In place on the view of the float32 copy: no further copy of the logits.
        return logits[:, :-1, :][:, -n_completion:, :].div_(self.temperature)

    def _tw_grpo_weights(self, output: dict[str, Any], mode: str) -> torch.Tensor:
        """TW-GRPO weights ``[B, T]`` for the local batch, computed over whole groups of G."""
        n = output["completion_ids"].size(0)
        group = self.num_generations if mode == "train" else self.num_generations_eval
        if n % group:
            raise ValueError(
                f"token_weighting='tw_grpo' needs whole groups: the local batch holds {n} "
                f"completions, not a multiple of the group size {group}"
            )
        mask = output["completion_mask"]
        multimodal = any(key in output for key in _MULTIMODAL_KEYS)
        # A vision-language batch runs as one forward pass over the local batch, so its image
        # tensors need no slicing (its full logits exist at once). A text batch runs as many whole
        # groups per forward as fit in _LOGITS_BUDGET floats (one group at least: the G × T × V
        # logits of a group are always materialised), so small models avoid many tiny passes.
        # The vocabulary size comes from the config: a ZeRO-3 partitioned weight has shape 0.
        config = self.accelerator.unwrap_model(self.model).config
        vocab = config.get_text_config().vocab_size
        per_group = group * mask.size(1) * vocab
        step = n if multimodal else group * max(1, _LOGITS_BUDGET // per_group)
        weights = []
        for start in range(0, n, step):
            logits = self._completion_logits(output, slice(start, start + step))
            rows = slice(start, start + step)
            g_logits = logits.view(-1, group, *logits.shape[1:])
            g_mask = mask[rows].view(-1, group, mask.size(1))
            w = tw_grpo_token_weights(
                g_logits,
                g_mask,
                alpha=self.args.tw_alpha,
                chunk_size=self.args.tw_chunk_size,
                normalize_over=self.args.tw_normalize_over,  # type: ignore[arg-type]
            )
            weights.append(w.reshape(-1, mask.size(1)))
        return torch.cat(weights).to(output["advantages"].dtype)
