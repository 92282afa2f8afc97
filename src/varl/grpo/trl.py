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

import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer, TrlParser

from varl.grpo.advantages import group_std
from varl.grpo.losses import AGGREGATIONS
from varl.grpo.selection import RewardStdFilter
from varl.grpo.token_weights import tw_grpo_token_weights

__all__ = ["TrlParser", "VarlGRPOConfig", "VarlGRPOTrainer"]

TOKEN_WEIGHTINGS = ("none", "tw_grpo")
# The trl loss_type computing each varl aggregation (trl.GRPOTrainer._compute_loss).
TRL_LOSS_TYPE = {"seq_mean": "grpo", "token_mean": "bnpo", "fixed_length": "dr_grpo"}
VARL_STATE_FILE = "varl_state.json"  # varl's own state inside a trainer checkpoint folder
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

    Parameters that control the RLPR std filter (arXiv 2506.18254):
        std_filter: Zero the advantages of groups whose reward std is below
            ``std_filter_beta`` × EMA of the mean group std (:class:`~varl.grpo.selection.
            RewardStdFilter`); the filtered groups are masked, not regenerated.
        std_filter_beta, std_filter_ema_decay, std_filter_warmup_steps: Its settings.

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
    std_filter: bool = field(
        default=False,
        metadata={"help": "RLPR std filter: zero the advantages of low-variance groups."},
    )
    std_filter_beta: float = field(
        default=0.5, metadata={"help": "Keep a group when its reward std >= beta * EMA (> 0)."}
    )
    std_filter_ema_decay: float = field(
        default=0.99, metadata={"help": "EMA decay of the mean group std, in (0, 1)."}
    )
    std_filter_warmup_steps: int = field(
        default=5, metadata={"help": "Generation batches that only seed the EMA (>= 1)."}
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
        if self.std_filter:  # the filter validates its own settings
            RewardStdFilter(
                self.std_filter_beta, self.std_filter_ema_decay, self.std_filter_warmup_steps
            )
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
        self.std_filter: RewardStdFilter | None = None
        if self.args.std_filter:
            self.std_filter = RewardStdFilter(
                self.args.std_filter_beta,
                self.args.std_filter_ema_decay,
                self.args.std_filter_warmup_steps,
            )
        self._gathered_rewards: torch.Tensor | None = None

    # Extends trl.GRPOTrainer._calculate_rewards (trl 1.16): keep the gathered per-function
    # rewards, which the std filter needs after trl has computed the advantages.
    def _calculate_rewards(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        rewards_per_func: torch.Tensor = super()._calculate_rewards(*args, **kwargs)
        self._gathered_rewards = rewards_per_func
        return rewards_per_func

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
        if self.std_filter is not None and self.model.training:
            output["advantages"] = self._apply_std_filter(output)
        return output

    def _apply_std_filter(self, output: dict[str, Any]) -> torch.Tensor:
        """Zeroes the local advantages of the groups the RLPR std filter drops.

        The group stds come from the rewards gathered over all processes, so every process steps
        the same filter state; each then masks its own slice, as trl slices its advantages.
        """
        rpf = self._gathered_rewards
        if rpf is None:
            raise RuntimeError("std_filter: the gathered rewards of this batch are missing")
        weights = self.reward_weights.to(rpf.device).unsqueeze(0)
        rewards = (rpf * weights).nansum(dim=1)
        rewards[torch.isnan(rpf).all(dim=1)] = torch.nan
        g = self.num_generations
        stds = group_std(rewards.view(-1, g).float()).cpu().numpy()
        keep = torch.as_tensor(self.std_filter.step(stds), device=rpf.device)  # type: ignore[union-attr]
        n = output["completion_ids"].size(0)
        index = self.accelerator.process_index * n + torch.arange(n, device=rpf.device)
        local_keep = keep[index // g].to(output["advantages"].dtype)
        mode = "train"
        self._metrics[mode]["std_filter/kept_frac"].append(float(keep.float().mean()))
        threshold = self.std_filter.threshold  # type: ignore[union-attr]
        if threshold is not None:
            self._metrics[mode]["std_filter/threshold"].append(threshold)
        advantages: torch.Tensor = output["advantages"]
        return advantages * (local_keep[:, None] if advantages.dim() == 2 else local_keep)

    # Extends transformers.Trainer._save_checkpoint: the std filter's EMA state goes into the
    # checkpoint folder, so a resumed run filters exactly as the uninterrupted one would.
    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.std_filter is not None and self.args.should_save:
            folder = (
                Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            )
            state = {"std_filter": self.std_filter.state_dict()}
            (folder / VARL_STATE_FILE).write_text(json.dumps(state), encoding="utf-8")

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """``Trainer.train`` that also restores varl's state (the std filter) on resume."""
        path = resume_from_checkpoint
        if path is True:
            path = get_last_checkpoint(self.args.output_dir)
        if isinstance(path, str) and self.std_filter is not None:
            saved = Path(path) / VARL_STATE_FILE
            if not saved.is_file():
                raise ValueError(
                    f"resume_from_checkpoint: {path!r} has no {VARL_STATE_FILE} with the std "
                    "filter's state (was it written without std_filter?)"
                )
            self.std_filter.load_state_dict(json.loads(saved.read_text())["std_filter"])
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

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
