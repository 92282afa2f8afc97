"""TW-GRPO: token weights focus the update on the decision tokens; soft rewards keep groups alive.

Paper: "Reinforcing Video Reasoning with Focused Thinking" (TW-GRPO), arXiv 2505.24718.
Reproduced at toy scale (spec tw_grpo_temporal_r1.md §4 C1-C2, §6.2 S1): a tiny causal LM
(:mod:`varl.grpo.tiny`) answers the multi-answer task — every completion is a generic reasoning
block ``<think>ok</think>`` followed by ``<answer>A,C</answer>`` — and is trained with
:class:`varl.grpo.trl.VarlGRPOTrainer` in four arms: GRPO or TW-GRPO (α = 1.7) token weighting,
times a binary or soft multi-choice reward, all with token-mean aggregation and a format reward.

Hard claim: under TW-GRPO the mean token weight on answer tokens exceeds the mean on the prefix
tokens. Accuracy (strict set match and the soft score), reward std, the share of zero-std groups
and completion length are reported as measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from varl.experiments.result import ExperimentResult, Panel, ProgressBar, Series

DESCRIPTION = "TW-GRPO (2505.24718): token weights on answer vs prefix; soft vs binary reward"
PAPER = "Reinforcing Video Reasoning with Focused Thinking (TW-GRPO, arXiv 2505.24718)"
ARMS = {
    "GRPO+binary": ("none", "binary"),
    "GRPO+soft": ("none", "soft"),
    "TW-GRPO+binary": ("tw_grpo", "binary"),
    "TW-GRPO+soft": ("tw_grpo", "soft"),
}


@dataclass(frozen=True, kw_only=True)
class TwGrpoConfig:
    """Settings of the tiny multi-answer experiment."""

    steps: int = 40
    """GRPO steps per arm."""
    prompts_per_step: int = 4
    """Prompts per step; each gets ``group_size`` completions."""
    group_size: int = 8
    """G, completions per prompt (TW-GRPO uses 8)."""
    lr: float = 1e-3
    """Learning rate of the policy."""
    alpha: float = 1.7
    """TW-GRPO's largest token weight (the paper's script)."""
    warm_start_steps: int = 150
    """Supervised steps before RL (teaches the format)."""
    warm_start_correct: float = 0.6
    """Share of warm-start completions with the right answer (the rest are random answers)."""
    max_completion_length: int = 44
    """Generation limit in characters (the longest right completion is 37 plus EOS)."""
    seeds: int = 3
    """Number of seeds."""
    log_every: int = 5
    """Record metrics every this many steps."""


QUICK = TwGrpoConfig()
FULL = TwGrpoConfig(steps=300, prompts_per_step=8)


def _span_weights(
    trainer: Any, items: list[dict[str, Any]], cfg: TwGrpoConfig
) -> tuple[float, float]:
    """Mean TW-GRPO weight on prefix tokens and on answer-letter tokens of fresh rollouts.

    Each prompt gets G sampled completions; the weights come from the trained policy's logits.
    Prefix tokens are the characters of ``<think>ok</think><answer>`` in completions that start
    with it; answer tokens are the characters between ``<answer>`` and ``</answer>``.
    """
    import torch

    from varl.grpo.tiny import EOS_ID, PAD_ID, REASONING_PREFIX
    from varl.grpo.token_weights import tw_grpo_token_weights

    model, tok = trainer.model, trainer.processing_class
    head = REASONING_PREFIX + "<answer>"
    prefix_w: list[float] = []
    answer_w: list[float] = []
    model.eval()
    with torch.no_grad():
        for item in items:
            enc = tok([item["prompt"]], return_tensors="pt")
            out = model.generate(
                **enc,
                do_sample=True,
                max_new_tokens=cfg.max_completion_length,
                num_return_sequences=cfg.group_size,
                pad_token_id=PAD_ID,
            )
            completion = out[:, enc["input_ids"].shape[1] :]
            is_eos = completion == EOS_ID
            after_eos = (is_eos.cumsum(1) - is_eos.long()) > 0
            mask = (~after_eos & (completion != PAD_ID)).long()
            attn = torch.cat([enc["attention_mask"].expand(cfg.group_size, -1), mask], 1)
            logits = model(input_ids=out, attention_mask=attn).logits
            n = completion.shape[1]
            weights = tw_grpo_token_weights(logits[:, -n - 1 : -1], mask, alpha=cfg.alpha)
            for row, ids in enumerate(completion.tolist()):
                text = tok.decode(ids, skip_special_tokens=True)
                if not text.startswith(head) or "</answer>" not in text:
                    continue
                end = text.index("</answer>")
                prefix_w += weights[row, : len(head)].tolist()
                answer_w += weights[row, len(head) : end].tolist()
    return _mean(prefix_w), _mean(answer_w)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def warm_model(cfg: TwGrpoConfig, seed: int) -> tuple[Any, Any]:
    """The tiny model and tokenizer after the supervised warm start (shared by the four arms)."""
    import torch

    from varl.grpo.tiny import (
        build_char_tokenizer,
        build_tiny_model,
        multi_answer_task,
        warm_start,
        warm_start_pairs,
    )

    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=seed)
    pairs = warm_start_pairs(
        multi_answer_task(), correct_fraction=cfg.warm_start_correct, seed=seed
    )
    warm_start(model, tok, pairs, steps=cfg.warm_start_steps, batch_size=32, seed=seed)
    return model, tok


def run_arm(
    arm: str,
    cfg: TwGrpoConfig,
    seed: int,
    warm: tuple[Any, Any],
    progress: ProgressBar | None = None,
) -> dict[str, Any]:
    """Trains one arm with VarlGRPOTrainer from a copy of the warm model; returns its curves."""
    import copy
    import tempfile

    import datasets
    import torch
    from transformers import PrinterCallback, TrainerCallback

    from varl.grpo.tiny import QUIET_CPU_TRAINER_ARGS, multi_answer_task
    from varl.grpo.trl import VarlGRPOConfig, VarlGRPOTrainer
    from varl.rewards.text import MultiChoiceReward, tag_format

    torch.set_num_threads(1)
    weighting, reward = ARMS[arm]
    items = multi_answer_task()
    model, tok = copy.deepcopy(warm[0]), warm[1]

    class _Advance(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            if progress is not None:
                progress.update(1)

    soft = MultiChoiceReward(mode="soft", name="soft")
    binary = MultiChoiceReward(mode="binary", name="binary")
    with tempfile.TemporaryDirectory() as out_dir:
        args = VarlGRPOConfig(
            **QUIET_CPU_TRAINER_ARGS,
            output_dir=out_dir,
            per_device_train_batch_size=cfg.prompts_per_step * cfg.group_size,
            num_generations=cfg.group_size,
            max_completion_length=cfg.max_completion_length,
            learning_rate=cfg.lr,
            max_steps=cfg.steps,
            logging_steps=cfg.log_every,
            seed=seed,
            temperature=1.0,
            loss_aggregation="token_mean",
            token_weighting=weighting,
            tw_alpha=cfg.alpha,
            reward_weights=[
                1.0 if reward == "soft" else 0.0,
                1.0 if reward == "binary" else 0.0,
                1.0,
            ],
        )
        trainer = VarlGRPOTrainer(
            model=model,
            processing_class=tok,
            reward_funcs=[soft, binary, tag_format],
            args=args,
            train_dataset=datasets.Dataset.from_list(
                items * (cfg.steps * cfg.prompts_per_step // len(items) + 1)
            ),
            callbacks=[_Advance()],
        )
        trainer.remove_callback(PrinterCallback)  # the report shows the curves; keep stdout quiet
        trainer.train()
    logs = [h for h in trainer.state.log_history if "rewards/binary/mean" in h]
    curves = {
        "step": [float(h["step"]) for h in logs],
        "accuracy": [h["rewards/binary/mean"] for h in logs],
        "soft_score": [h["rewards/soft/mean"] for h in logs],
        "reward_std": [h["reward_std"] for h in logs],
        "frac_zero_std": [h["frac_reward_zero_std"] for h in logs],
        "length": [h["completions/mean_length"] for h in logs],
    }
    torch.manual_seed(seed)
    prefix_w, answer_w = _span_weights(trainer, items, cfg)
    return {"curves": curves, "prefix_weight": prefix_w, "answer_weight": answer_w}


def _series(label: str, runs: list[dict[str, Any]], key: str) -> Series:
    stacked = np.array([r["curves"][key] for r in runs], dtype=np.float64)
    return Series(
        label=label,
        x=runs[0]["curves"]["step"],
        mean=stacked.mean(0).tolist(),
        low=stacked.min(0).tolist(),
        high=stacked.max(0).tolist(),
    )


def run(
    *, full: bool = False, seeds: int | None = None, progress: ProgressBar | None = None
) -> ExperimentResult:
    """Runs the four arms over the seeds and judges the weight claim."""
    cfg = FULL if full else QUICK
    n_seeds = cfg.seeds if seeds is None else seeds
    if progress is not None:
        progress.reset(total=len(ARMS) * n_seeds * cfg.steps)
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for seed in range(n_seeds):
        warm = warm_model(cfg, seed)
        for arm in ARMS:
            runs[arm].append(run_arm(arm, cfg, seed, warm, progress))

    def final(arm: str, key: str) -> float:
        return float(np.mean([r["curves"][key][-1] for r in runs[arm]]))

    def early(arm: str, key: str) -> float:
        return float(
            np.mean(
                [np.mean(r["curves"][key][: max(1, len(r["curves"][key]) // 2)]) for r in runs[arm]]
            )
        )

    weights = {
        arm: (
            float(np.nanmean([r["prefix_weight"] for r in runs[arm]])),
            float(np.nanmean([r["answer_weight"] for r in runs[arm]])),
        )
        for arm in ("TW-GRPO+binary", "TW-GRPO+soft")
    }
    verdict = all(answer > prefix for prefix, answer in weights.values())
    metrics: dict[str, float] = {}
    for arm in ARMS:
        for key in ("accuracy", "soft_score", "reward_std", "frac_zero_std", "length"):
            metrics[f"{arm}/final_{key}"] = final(arm, key)
        metrics[f"{arm}/frac_zero_std_first_half"] = early(arm, "frac_zero_std")
    for arm, (prefix, answer) in weights.items():
        metrics[f"{arm}/prefix_weight"] = prefix
        metrics[f"{arm}/answer_weight"] = answer
    table = [
        [
            "arm",
            "final accuracy",
            "final soft score",
            "zero-std groups (1st half)",
            "length",
            "w prefix / w answer",
        ]
    ]
    for arm in ARMS:
        w = weights.get(arm)
        table.append(
            [
                arm,
                f"{final(arm, 'accuracy'):.3f}",
                f"{final(arm, 'soft_score'):.3f}",
                f"{early(arm, 'frac_zero_std'):.3f}",
                f"{final(arm, 'length'):.1f}",
                f"{w[0]:.3f} / {w[1]:.3f}" if w else "-",
            ]
        )
    panels = [
        Panel(
            title=title,
            xlabel="GRPO step",
            ylabel=ylabel,
            series=[_series(arm, runs[arm], key) for arm in ARMS],
        )
        for key, title, ylabel in (
            ("accuracy", "strict accuracy (exact set)", "accuracy"),
            ("soft_score", "soft multi-choice score", "score"),
            ("frac_zero_std", "zero-std groups", "fraction of groups"),
            ("reward_std", "training reward std (trl's batch std)", "std"),
            ("length", "completion length", "characters"),
        )
    ]
    weight_text = "; ".join(
        f"{arm}: prefix {p:.3f}, answer {a:.3f} (margin {a - p:.3f})"
        for arm, (p, a) in weights.items()
    )
    acc_text = ", ".join(f"{arm} {final(arm, 'accuracy'):.3f}" for arm in ARMS)
    return ExperimentResult(
        name="tw_grpo",
        paper=PAPER,
        claim="TW-GRPO gives the answer (decision) tokens a larger mean weight than the generic "
        "reasoning prefix; accuracy and variance effects are reported as measured.",
        verdict=verdict,
        verdict_text=f"Mean token weight {weight_text}. Final strict accuracy: {acc_text}.",
        metrics=metrics,
        table=table,
        panels=panels,
        settings={**asdict(cfg), "seeds": n_seeds, "full": full},
        seeds=list(range(n_seeds)),
        notes=[
            "Accuracy is the share of on-policy rollouts whose answer set equals the gold set; "
            "the training reward is the arm's accuracy reward plus a think/answer format reward.",
            "The spec's stricter form of the weight check asks for a margin of 0.3 once the prefix "
            "has collapsed; the verdict here is the issue's: answer weight above prefix weight.",
        ],
    )
