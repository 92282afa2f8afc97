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
- ``reward_mode="rlpr"``: RLPR (arXiv 2506.18254) adds a reward column ``rlpr`` computed with the
  policy itself (:mod:`varl.grpo.rlpr_scoring`): the answer span is replaced by the dataset's
  reference answer and one extra forward pass scores it; the no-reasoning probabilities are
  computed once, with the initial policy, and saved in every checkpoint.
- ``std_filter=True``: RLPR's EMA std filter; ``std_filter_mode="mask"`` zeroes the advantages of
  the filtered groups, ``"regenerate"`` replaces them by groups of fresh prompts (DAPO-style,
  at most ``std_filter_max_rounds`` extra rounds, then masking; :mod:`varl.grpo.regenerate`).
- ``sample_allocation="gvm"``: GVM (arXiv 2505.02391) splits each generation batch's budget of
  completions among its prompts from pre-sampled acceptance rates and gradient norms, refreshed
  every ``gvm_refresh_steps`` steps, and generates exactly that many; the advantages are computed
  over the variable-size groups (:mod:`varl.grpo.trainer_sampling`).

Metrics: trl's own names, plus ``tw/weight_mean`` and ``tw/weight_max`` over completion tokens
and ``rlpr/p_mean``, ``rlpr/p_no_reasoning_mean``, ``rlpr/malformed_frac``, ``rlpr/format_frac``,
``std_filter/*`` (``kept_frac``, ``threshold``; with regeneration ``regen_rounds``,
``generated_groups``, ``masked_groups``) and ``gvm/*`` (``presampled_prompts``,
``presample_completions``, ``count_max``, ``zero_count_frac``, ``singleton_frac``,
``uniform_fallback``). Everything in ``varl_state.json`` (filter EMA, refill stream, GVM
estimates, RLPR cache) is restored when training resumes from a checkpoint.
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
from varl.grpo.gvm_sampling import GVMEstimates
from varl.grpo.losses import AGGREGATIONS
from varl.grpo.regenerate import RefillStream
from varl.grpo.rlpr_scoring import (
    DEFAULT_ANSWER_PATTERN,
    DEFAULT_NO_REASONING_TEMPLATE,
    RlprScorer,
)
from varl.grpo.selection import RewardStdFilter
from varl.grpo.token_weights import tw_grpo_token_weights
from varl.grpo.trainer_sampling import (
    check_sampling_config,
    check_sampling_trainer,
    gvm_generate_and_score,
    regenerate_and_score,
)

__all__ = ["TrlParser", "VarlGRPOConfig", "VarlGRPOTrainer"]

TOKEN_WEIGHTINGS = ("none", "tw_grpo")
REWARD_MODES = ("verifier", "rlpr")
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


def _rlpr_settings(args: Any) -> dict[str, Any]:
    """The :class:`~varl.grpo.rlpr_scoring.RlprScorer` settings of a :class:`VarlGRPOConfig`."""
    return {
        "answer_pattern": args.rlpr_answer_pattern,
        "aggregate": args.rlpr_aggregate,
        "format_weight": args.rlpr_format_weight,
        "format_tags": args.rlpr_format_tags,
        "no_reasoning_template": args.rlpr_no_reasoning_template,
    }


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
            RewardStdFilter`).
        std_filter_beta, std_filter_ema_decay, std_filter_warmup_steps: Its settings.
        std_filter_mode: ``"mask"`` (zero the filtered groups' advantages) or ``"regenerate"``
            (replace them by groups of fresh prompts until the batch is full, DAPO-style).
        std_filter_max_rounds: Most extra generation rounds per batch when regenerating (>= 0;
            our default 4, [O]: RLPR has no cap); groups still filtered are then masked.

    Parameters that control GVM sample allocation (arXiv 2505.02391, spec gvm_rlpr.md §1):
        sample_allocation: ``"uniform"`` (num_generations per prompt) or ``"gvm"``: the same
            budget per generation batch, split by GVM among its prompts.
        gvm_refresh_steps: Steps a prompt's pre-sampled estimates stay in use (>= 1; the
            reference re-estimates once per EM iteration of about 9 steps).
        gvm_presample_count: N', completions per prompt in pre-sampling (8), >= 1.
        gvm_accept_threshold: A pre-sample is accepted when its weighted reward is > this (0.5).
        gvm_alpha, gvm_beta: GVM's α (1e-3) and β (2.0).
        gvm_param_filter: Parameters of the gradient norm G_i ("embed_tokens", as the reference).

    Parameters that control the reward (RLPR, arXiv 2506.18254; :mod:`varl.grpo.rlpr_scoring`):
        reward_mode: ``"verifier"`` (only ``reward_funcs``) or ``"rlpr"``: add the ``rlpr``
            column (weight 1), the policy's debiased probability of the reference answer.
        rlpr_reference_column: Dataset column holding the reference answer y*.
        rlpr_answer_pattern: Regex whose group 1 is the answer span to replace.
        rlpr_aggregate: ``"mean"`` per-token probability (RLPR), ``"product"`` (likelihood) or
            ``"geometric"``.
        rlpr_format_weight: c in ``(1 - c)·max(PR - PR_0, 0) + c·format_ok`` (0.1), in [0, 1].
        rlpr_format_tags: Tag blocks the format check requires, in order.
        rlpr_no_reasoning_template: The no-reasoning response for PR_0, with ``{answer}``.

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
    reward_mode: str = field(
        default="verifier", metadata={"help": "'verifier' or 'rlpr' (add RLPR's reward column)."}
    )
    rlpr_reference_column: str = field(
        default="solution", metadata={"help": "RLPR: dataset column with the reference answer."}
    )
    rlpr_answer_pattern: str = field(
        default=DEFAULT_ANSWER_PATTERN, metadata={"help": "RLPR: regex, group 1 = answer span."}
    )
    rlpr_aggregate: str = field(
        default="mean", metadata={"help": "RLPR: 'mean', 'product' or 'geometric'."}
    )
    rlpr_format_weight: float = field(
        default=0.1, metadata={"help": "RLPR: weight c of the format reward, in [0, 1]."}
    )
    rlpr_format_tags: list[str] = field(
        default_factory=lambda: ["think", "answer"],
        metadata={"help": "RLPR: tag blocks of the format check, in order."},
    )
    rlpr_no_reasoning_template: str = field(
        default=DEFAULT_NO_REASONING_TEMPLATE,
        metadata={"help": "RLPR: no-reasoning response with an {answer} slot."},
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
    std_filter_mode: str = field(
        default="mask", metadata={"help": "Filtered groups: 'mask' or 'regenerate' (DAPO-style)."}
    )
    std_filter_max_rounds: int = field(
        default=4, metadata={"help": "Most extra generation rounds per batch (>= 0)."}
    )
    sample_allocation: str = field(
        default="uniform", metadata={"help": "'uniform' or 'gvm' (GVM per-prompt counts)."}
    )
    gvm_refresh_steps: int = field(
        default=10, metadata={"help": "GVM: steps a prompt's estimates stay in use (>= 1)."}
    )
    gvm_presample_count: int = field(
        default=8, metadata={"help": "GVM: pre-sampled completions per prompt, N' (>= 1)."}
    )
    gvm_accept_threshold: float = field(
        default=0.5, metadata={"help": "GVM: a pre-sample is accepted when reward > this."}
    )
    gvm_alpha: float = field(default=1e-3, metadata={"help": "GVM: regulariser alpha (>= 0)."})
    gvm_beta: float = field(default=2.0, metadata={"help": "GVM: exponent beta (> 0)."})
    gvm_param_filter: str = field(
        default="embed_tokens", metadata={"help": "GVM: parameters of the gradient norm."}
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
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(
                f"reward_mode: expected one of {REWARD_MODES}, got {self.reward_mode!r}"
            )
        if not (isinstance(self.rlpr_reference_column, str) and self.rlpr_reference_column):
            raise ValueError("rlpr_reference_column: expected a column name")
        RlprScorer(None, **_rlpr_settings(self))  # the scorer validates its own settings
        if self.std_filter:  # the filter validates its own settings
            RewardStdFilter(
                self.std_filter_beta, self.std_filter_ema_decay, self.std_filter_warmup_steps
            )
        super().__post_init__()
        check_sampling_config(self)
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
        self.rlpr: RlprScorer | None = None
        if self.args.reward_mode == "rlpr":
            # RLPR's reward is one more reward column, which trl calls like any reward function.
            self.rlpr = RlprScorer(self._tokenizer, **_rlpr_settings(self.args))
            self.reward_funcs.append(self._rlpr_reward)
            self.reward_func_names.append("rlpr")
            self.reward_processing_classes.append(None)
            self.reward_weights = torch.cat([self.reward_weights, torch.ones(1)])
        check_sampling_trainer(self)
        self.gvm_estimates: GVMEstimates | None = None
        if self.args.sample_allocation == "gvm":
            self.gvm_estimates = GVMEstimates(self.args.gvm_refresh_steps)
        self.refill: RefillStream | None = None  # the fresh prompts of std-filter regeneration
        if self.args.std_filter and self.args.std_filter_mode == "regenerate":
            self.refill = RefillStream(len(self.train_dataset), seed=self.args.seed)

    def _rlpr_reward(
        self, prompts: list[Any], completions: list[Any], **kwargs: Any
    ) -> list[float]:
        """The ``rlpr`` reward column: splice y* in, score it with the current policy."""
        column = self.args.rlpr_reference_column
        if column not in kwargs:
            raise ValueError(f"rlpr_reference_column: the dataset has no column {column!r}")
        prompt_ids = self._tokenize_prompts(prompts)[0]
        scorer: RlprScorer = self.rlpr  # type: ignore[assignment]
        scores = scorer.score(prompts, prompt_ids, completions, kwargs[column], self._policy_logps)
        for name, value in scores.metrics().items():
            kwargs["log_metric"](f"rlpr/{name}", value)
        rewards: list[float] = scores.rewards.tolist()
        return rewards

    @torch.no_grad()
    def _policy_logps(self, ids: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
        """Log-probs ``[B, n]`` of the last n tokens under the current policy (trl's forward)."""
        device = self.accelerator.device
        logps, _, _ = self._get_per_token_logps_and_entropies(
            self.model,
            ids.to(device),
            mask.to(device),
            n,
            batch_size=self.args.per_device_train_batch_size,
        )
        return logps

    def _rlpr_fill_cache(self) -> None:
        """Computes the no-reasoning probabilities of the whole training set with this policy."""
        data, column = self.train_dataset, self.args.rlpr_reference_column
        if not hasattr(data, "column_names") or not hasattr(data, "__len__"):
            return  # an IterableDataset: the scorer fills the cache on first sight instead
        if column not in data.column_names:
            raise ValueError(f"rlpr_reference_column: the dataset has no column {column!r}")
        step = 64
        for start in range(0, len(data), step):
            rows = data[start : start + step]
            prompt_ids = self._tokenize_prompts(rows["prompt"])[0]
            self.rlpr.fill_cache(rows["prompt"], prompt_ids, rows[column], self._policy_logps)  # type: ignore[union-attr]

    # Extends trl.GRPOTrainer._calculate_rewards (trl 1.16): keep the gathered per-function
    # rewards, which the std filter needs after trl has computed the advantages.
    def _calculate_rewards(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        rewards_per_func: torch.Tensor = super()._calculate_rewards(*args, **kwargs)
        self._gathered_rewards = rewards_per_func
        return rewards_per_func

    # Extends trl.GRPOTrainer._generate_and_score_completions (trl 1.16): GVM allocation or
    # std-filter regeneration call trl's method once per group layout / round and merge; after
    # trl has generated, scored and computed the (local) advantages, scale them token by token.
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        generate = super()._generate_and_score_completions
        output: dict[str, Any]
        if self.model.training and self.gvm_estimates is not None:
            output = gvm_generate_and_score(self, inputs, generate, self.gvm_estimates)
        elif self.model.training and self.refill is not None:
            assert self.std_filter is not None  # regeneration is a std-filter mode
            output = regenerate_and_score(self, inputs, generate, self.std_filter, self.refill)
        else:
            output = generate(inputs)
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
        if self.std_filter is not None and self.model.training and self.refill is None:
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

    # Extends transformers.Trainer._save_checkpoint: the std filter's EMA state and RLPR's
    # no-reasoning cache go into the checkpoint folder, so a resumed run filters and scores
    # exactly as the uninterrupted one would.
    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        state: dict[str, Any] = {}
        if self.std_filter is not None:
            state["std_filter"] = self.std_filter.state_dict()
        if self.rlpr is not None:
            state["rlpr_no_reasoning"] = self.rlpr.cache.state_dict()
        if self.gvm_estimates is not None:
            state["gvm_estimates"] = self.gvm_estimates.state_dict()
        if self.refill is not None:
            state["std_filter_refill"] = self.refill.state_dict()
        if state and self.args.should_save:
            folder = (
                Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            )
            (folder / VARL_STATE_FILE).write_text(json.dumps(state), encoding="utf-8")

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """``Trainer.train`` that restores varl's state on resume (std filter, RLPR cache).

        A fresh RLPR run computes the no-reasoning probabilities here, before the first update.
        """
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
        sampling = {"gvm_estimates": self.gvm_estimates, "std_filter_refill": self.refill}
        for key, part in sampling.items():  # GVM's estimates, the regeneration prompt stream
            if part is not None and isinstance(path, str):
                saved = Path(path) / VARL_STATE_FILE
                state = json.loads(saved.read_text()) if saved.is_file() else {}
                if key not in state:
                    raise ValueError(
                        f"resume_from_checkpoint: {path!r} has no {key!r} in {VARL_STATE_FILE}"
                    )
                part.load_state_dict(state[key])
        if self.rlpr is not None:  # restore RLPR's no-reasoning cache, or compute it now
            state_file = Path(path) / VARL_STATE_FILE if isinstance(path, str) else None
            state = (
                json.loads(state_file.read_text()) if state_file and state_file.is_file() else {}
            )
            if "rlpr_no_reasoning" in state:
                self.rlpr.cache.load_state_dict(state["rlpr_no_reasoning"])
            elif state_file is not None:
                raise ValueError(
                    f"resume_from_checkpoint: {path!r} has no RLPR no-reasoning cache in "
                    f"{VARL_STATE_FILE} (was it written without reward_mode='rlpr'?)"
                )
            else:  # a fresh run: the initial policy, before any update
                # Under the same autocast as the live scores (bf16 on by default), so that the
                # debiasing p - p0 compares numbers computed at one precision.
                with self.accelerator.autocast():
                    self._rlpr_fill_cache()
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
