"""RLPR: the policy's own probability of the reference answer as a verifier-free reward.

Paper: "RLPR: Extrapolating RLVR to General Domains without Verifiers", arXiv 2506.18254.
Reproduced at toy scale (spec gvm_rlpr.md §4.3 RLPR-1 and RLPR-3, §6.4 S1-S3) on additions
``"a+b="`` answered as ``<think>a+b=z</think><answer>y</answer>``: the tiny causal LM of
:mod:`varl.grpo.tiny` is warm-started on such completions, where the reasoning z is right with
probability ``warm_start_correct`` (else off by a small amount), the answer copies z, and with
probability ``synonym_rate`` the answer carries a leading zero ("07"), an equivalent form the
reference ("7") does not use. Then:

1. Reward quality. Responses sampled at temperature 1 are labelled by exact match of the answer's
   integer value; PR (the mean per-token probability of y* spliced after the response's own
   reasoning, :mod:`varl.grpo.rlpr_scoring`) and the likelihood (the product) are scored by the
   same policy, and their AUC for telling correct from incorrect responses is compared.
2. Std filter. At the warm policy, GRPO batches with the RLPR reward are drawn through
   :class:`varl.grpo.trl.VarlGRPOTrainer`; on each batch the policy gradient is computed twice,
   with all groups and with only the groups RLPR's std filter keeps
   (:class:`~varl.grpo.selection.RewardStdFilter`, its EMA seeded on the first batches), so both
   gradients see the same samples (a paired comparison).
3. Training. GRPO from the warm model in two arms: the RLPR reward with no verifier
   (``reward_mode="rlpr"``; the verifier only *logs* accuracy, weight 0) and the exact-match
   verifier (0.9·correct + 0.1·format, RLPR's format weighting).

Claims judged (decided before running): AUC(mean) >= AUC(product) - 0.01 (spec §6.4 S1), and the
std filter lowers the gradient-norm noise: the coefficient of variation (std/mean, scale-free)
of the per-batch gradient norm is lower with the filter than without, on the same batches. The
filter *masks* the dropped groups (no regeneration; RLPR refills the batch), so a batch whose
groups are all dropped has gradient 0 and counts as noise. Accuracy after training
(verifier-free vs verifier) is reported as measured.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from varl.experiments.result import ExperimentResult, Panel, ProgressBar, Series
from varl.rewards.parse import completion_text, extract_tag

DESCRIPTION = "RLPR (2506.18254): mean vs product probability reward (AUC), std filter, no verifier"
PAPER = "RLPR: Extrapolating RLVR to General Domains without Verifiers (arXiv 2506.18254)"
ARMS = ("RLPR", "verifier")


@dataclass(frozen=True, kw_only=True)
class RlprConfig:
    """Settings of the tiny arithmetic experiment."""

    max_operand: int = 20
    """Operands a, b in [0, max_operand] (answers of 1 or 2 digits)."""
    n_items: int = 96
    """Training prompts."""
    warm_start_steps: int = 300
    """Supervised steps before RL."""
    warm_start_correct: float = 0.6
    """Share of warm-start completions whose reasoning (and so answer) is right."""
    synonym_rate: float = 0.2
    """Share of warm-start answers written with a leading zero ("07" for 7)."""
    auc_prompts: int = 64
    """Prompts sampled for the AUC (each ``group_size`` times)."""
    steps: int = 20
    """GRPO steps per arm."""
    prompts_per_step: int = 4
    """Prompts per GRPO step; each gets ``group_size`` completions."""
    group_size: int = 8
    """G, completions per prompt."""
    lr: float = 3e-4
    """Learning rate of the policy (1e-3 lowered the accuracy of both arms in 20 steps)."""
    std_filter_beta: float = 0.5
    """RLPR's β for Qwen2.5-7B."""
    std_filter_warmup_steps: int = 3
    """Batches that seed the filter's EMA (RLPR: 5 steps)."""
    noise_batches: int = 10
    """Batches of the paired filtered / unfiltered gradient comparison (after the warm-up)."""
    eval_prompts: int = 32
    """Prompts of the final accuracy check (each sampled ``group_size`` times)."""
    max_completion_length: int = 44
    """Generation limit in characters (the longest warm-start completion has 43, then EOS)."""
    seeds: int = 1
    """Number of seeds."""


QUICK = RlprConfig()
FULL = RlprConfig(
    n_items=256,
    warm_start_steps=600,
    auc_prompts=128,
    steps=120,
    prompts_per_step=8,
    noise_batches=40,
    seeds=3,
)


def _operands(prompt: str) -> tuple[int, int]:
    a, b = prompt.rstrip("=").split("+")
    return int(a), int(b)


def completion(a: int, b: int, claimed: int, *, leading_zero: bool = False) -> str:
    """``<think>a+b=claimed</think><answer>claimed</answer>``, optionally answered as "0claimed".

    Example:
        >>> completion(3, 4, 7, leading_zero=True)
        '<think>3+4=7</think><answer>07</answer>'
    """
    answer = f"0{claimed}" if leading_zero else str(claimed)
    return f"<think>{a}+{b}={claimed}</think><answer>{answer}</answer>"


def warm_start_pairs(
    items: list[dict[str, Any]], cfg: RlprConfig, seed: int, per_item: int = 8
) -> list[tuple[str, str]]:
    """(prompt, completion) pairs: right reasoning with probability ``warm_start_correct``,
    otherwise z off by 1, 2 or 10 (kept >= 0); the answer always copies z."""
    rng = random.Random(seed)
    pairs = []
    for item in items:
        a, b = _operands(item["prompt"])
        for _ in range(per_item):
            claimed = a + b
            if rng.random() >= cfg.warm_start_correct:
                claimed += rng.choice([d for d in (-10, -2, -1, 1, 2, 10) if claimed + d >= 0])
            leading_zero = rng.random() < cfg.synonym_rate
            pairs.append((item["prompt"], completion(a, b, claimed, leading_zero=leading_zero)))
    return pairs


def exact_match(completions: list[Any], solution: list[Any], **kwargs: Any) -> list[float]:
    """Verifier: 1.0 when the ``<answer>`` block is an integer equal to ``solution``.

    Example:
        >>> exact_match(["<answer>07</answer>", "<answer>8</answer>", "7"], ["7", "7", "7"])
        [1.0, 0.0, 0.0]
    """
    out = []
    for c, s in zip(completions, solution, strict=True):
        text = completion_text(c)
        answer = None if text is None else extract_tag(text, "answer")
        try:
            out.append(float(answer is not None and int(answer.strip()) == int(s)))
        except ValueError:
            out.append(0.0)
    return out


def auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2.

    Returns NaN when one class is absent.

    Example:
        >>> auc([0.9, 0.2, 0.5, 0.5], [1, 0, 1, 0])
        0.875
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def warm_model(cfg: RlprConfig, seed: int) -> tuple[Any, Any, list[dict[str, Any]]]:
    """The tiny model and tokenizer after the warm start, and the training items."""
    import torch

    from varl.grpo.tiny import arithmetic_task, build_char_tokenizer, build_tiny_model, warm_start

    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=seed)
    items = arithmetic_task(cfg.n_items, max_operand=cfg.max_operand, seed=seed)
    pairs = warm_start_pairs(items, cfg, seed)
    warm_start(model, tok, pairs, steps=cfg.warm_start_steps, batch_size=32, seed=seed)
    return model, tok, items


def _logprob_fn(model: Any) -> Any:
    """A :data:`~varl.grpo.rlpr_scoring.LogprobFn` over a plain causal LM (temperature 1)."""
    import torch

    def fn(ids: Any, mask: Any, n: int) -> Any:
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits[:, -n - 1 : -1].float()
        return torch.log_softmax(logits, -1).gather(-1, ids[:, -n:, None])[..., 0]

    return fn


def sample(
    model: Any, tok: Any, items: list[dict[str, Any]], n: int, max_new: int, seed: int
) -> list[tuple[dict[str, Any], list[int], str]]:
    """``n`` responses per item at temperature 1: (item, prompt ids, response text).

    One batched ``generate`` call over the left-padded prompts.
    """
    import torch

    from varl.grpo.tiny import PAD_ID

    torch.manual_seed(seed)
    model.eval()
    enc = tok([item["prompt"] for item in items], return_tensors="pt", padding=True)
    with torch.no_grad():
        gen = model.generate(
            **enc,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            max_new_tokens=max_new,
            num_return_sequences=n,
            pad_token_id=PAD_ID,
        )
    width = enc["input_ids"].shape[1]
    out = []
    for row, ids in enumerate(gen[:, width:].tolist()):
        item = items[row // n]
        prompt_ids = tok(item["prompt"])["input_ids"]
        out.append((item, prompt_ids, tok.decode(ids, skip_special_tokens=True)))
    return out


def reasoning_correct(prompts: list[str], completions: list[str]) -> list[float]:
    """1.0 when the response's reasoning is exactly ``<think>a+b=(a+b)</think>`` for its prompt.

    RLPR's reward replaces the generated answer by the reference, so it judges the reasoning
    only; this is the quantity it optimises, reported beside the answer's exact match.

    Example:
        >>> reasoning_correct(["3+4=", "3+4="], ["<think>3+4=7</think><answer>8</answer>", "7"])
        [1.0, 0.0]
    """
    out = []
    for prompt, text in zip(prompts, completions, strict=True):
        a, b = _operands(prompt)
        out.append(float(extract_tag(text, "think") == f"{a}+{b}={a + b}"))
    return out


def accuracy(
    model: Any, tok: Any, items: list[dict[str, Any]], cfg: RlprConfig, seed: int
) -> tuple[float, float]:
    """Exact-match accuracy of the answers, and the share of right reasoning, over
    ``group_size`` sampled responses to each of the first ``eval_prompts`` prompts."""
    drawn = sample(
        model,
        tok,
        items[: cfg.eval_prompts],
        cfg.group_size,
        cfg.max_completion_length,
        seed + 1000,
    )
    texts = [d[2] for d in drawn]
    answers = exact_match(texts, [d[0]["solution"] for d in drawn])
    reasoning = reasoning_correct([d[0]["prompt"] for d in drawn], texts)
    return float(np.mean(answers)), float(np.mean(reasoning))


def reward_quality(
    model: Any, tok: Any, items: list[dict[str, Any]], cfg: RlprConfig, seed: int
) -> dict[str, float]:
    """AUC of PR (mean), likelihood (product) and geometric mean against exact match."""
    from varl.grpo.rlpr_scoring import RlprScorer

    drawn = sample(
        model, tok, items[: cfg.auc_prompts], cfg.group_size, cfg.max_completion_length, seed
    )
    prompts = [d[0]["prompt"] for d in drawn]
    refs = [d[0]["solution"] for d in drawn]
    texts = [d[2] for d in drawn]
    labels = np.array(exact_match(texts, refs)) > 0.5
    out: dict[str, float] = {"accuracy": float(labels.mean()), "n": float(len(texts))}
    for aggregate in ("mean", "product", "geometric"):
        scorer = RlprScorer(tok, aggregate=aggregate)
        scores = scorer.score(prompts, [d[1] for d in drawn], texts, refs, _logprob_fn(model))
        valid = scores.valid.numpy()
        out[f"auc_{aggregate}"] = auc(scores.p.numpy()[valid], labels[valid])
        out[f"auc_{aggregate}_debiased"] = auc(scores.rewards.numpy()[valid], labels[valid])
        out["malformed_frac"] = float((~valid).mean())
    return out


def _trainer(
    arm: str, cfg: RlprConfig, seed: int, warm: tuple[Any, Any, list[dict[str, Any]]], **extra: Any
) -> Any:
    """A VarlGRPOTrainer over a copy of the warm model: RLPR reward or exact-match verifier."""
    import copy
    import tempfile

    import datasets
    from transformers import PrinterCallback

    from varl.grpo.tiny import QUIET_CPU_TRAINER_ARGS
    from varl.grpo.trl import VarlGRPOConfig, VarlGRPOTrainer
    from varl.rewards.text import tag_format

    model, tok, items = copy.deepcopy(warm[0]), warm[1], warm[2]
    rlpr = arm == "RLPR"
    args = VarlGRPOConfig(
        **QUIET_CPU_TRAINER_ARGS,
        output_dir=tempfile.mkdtemp(prefix="varl-rlpr-"),
        per_device_train_batch_size=cfg.prompts_per_step * cfg.group_size,
        num_generations=cfg.group_size,
        max_completion_length=cfg.max_completion_length,
        learning_rate=cfg.lr,
        max_steps=cfg.steps,
        logging_steps=1,
        seed=seed,
        temperature=1.0,
        bf16=False,  # float32 on the CPU: exact, and faster than bf16 autocast there
        loss_aggregation="token_mean",
        reward_mode="rlpr" if rlpr else "verifier",
        # exact match only logs in the RLPR arm; the verifier arm mirrors RLPR's 0.9 / 0.1
        reward_weights=[0.0, 0.0] if rlpr else [0.9, 0.1],
    )
    repeats = max(cfg.steps, cfg.std_filter_warmup_steps + cfg.noise_batches)
    trainer = VarlGRPOTrainer(
        model=model,
        processing_class=tok,
        reward_funcs=[exact_match, tag_format],
        args=args,
        train_dataset=datasets.Dataset.from_list(
            items * (repeats * cfg.prompts_per_step // len(items) + 1)
        ),
        **extra,
    )
    trainer.remove_callback(PrinterCallback)  # the report shows the curves; keep stdout quiet
    return trainer


def run_arm(
    arm: str,
    cfg: RlprConfig,
    seed: int,
    warm: tuple[Any, Any, list[dict[str, Any]]],
    progress: ProgressBar | None = None,
) -> dict[str, Any]:
    """Trains one arm from a copy of the warm model; returns its curves and final accuracy."""
    import shutil

    import torch
    from transformers import TrainerCallback

    torch.set_num_threads(1)

    class _Advance(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            if progress is not None:
                progress.update(1)

    trainer = _trainer(arm, cfg, seed, warm, callbacks=[_Advance()])
    try:
        trainer.train()
    finally:
        shutil.rmtree(trainer.args.output_dir, ignore_errors=True)
    logs = [h for h in trainer.state.log_history if "grad_norm" in h]
    curves = {
        "step": [float(h["step"]) for h in logs],
        "accuracy": [h["rewards/exact_match/mean"] for h in logs],
        "grad_norm": [h["grad_norm"] for h in logs],
        "frac_zero_std": [h["frac_reward_zero_std"] for h in logs],
    }
    final, reasoning = accuracy(trainer.model, warm[1], warm[2], cfg, seed)
    return {"curves": curves, "final_accuracy": final, "final_reasoning": reasoning}


def filter_noise(
    cfg: RlprConfig, seed: int, warm: tuple[Any, Any, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Per-batch policy-gradient norms at the warm policy, with and without the std filter.

    Each batch is generated and scored (RLPR reward) once; the loss gradient is then taken with
    trl's advantages and with the advantages of the groups the filter drops set to 0. The first
    ``std_filter_warmup_steps`` batches only seed the filter's EMA.
    """
    import shutil

    import torch

    from varl.grpo.selection import RewardStdFilter, group_std

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    trainer = _trainer("RLPR", cfg, seed, warm)
    model = trainer.model
    try:
        trainer._rlpr_fill_cache()  # PR_0 of the initial policy, as train() would
        trainer.current_gradient_accumulation_steps = 1
        model.train()
        filt = RewardStdFilter(cfg.std_filter_beta, warmup_steps=cfg.std_filter_warmup_steps)
        loader = iter(trainer.get_train_dataloader())
        norms: dict[str, list[float]] = {"unfiltered": [], "filtered": []}
        kept: list[float] = []
        for b in range(cfg.std_filter_warmup_steps + cfg.noise_batches):
            out = trainer._generate_and_score_completions(next(loader))
            rewards = (trainer._gathered_rewards * trainer.reward_weights).nansum(1)
            keep = filt.step(group_std(rewards.view(-1, cfg.group_size).numpy()))
            if b < cfg.std_filter_warmup_steps:
                continue
            kept.append(float(keep.mean()))
            rows = torch.as_tensor(keep).repeat_interleave(cfg.group_size).float()
            for name, adv in (
                ("unfiltered", out["advantages"]),
                ("filtered", out["advantages"] * rows),
            ):
                model.zero_grad()
                trainer._compute_loss(model, {**out, "advantages": adv}).backward()
                grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
                norms[name].append(float(torch.cat(grads).norm()) if grads else 0.0)
    finally:
        shutil.rmtree(trainer.args.output_dir, ignore_errors=True)
    return {**norms, "kept_frac": float(np.mean(kept))}


def noise(norms: list[float]) -> tuple[float, float]:
    """(std, coefficient of variation std/mean) of gradient norms; NaN when undefined.

    Example:
        >>> noise([1.0, 2.0, 3.0])
        (1.0, 0.5)
    """
    g = np.asarray(norms, dtype=np.float64)
    std = float(g.std(ddof=1)) if g.size > 1 else float("nan")
    mean = float(g.mean()) if g.size else float("nan")
    return std, std / mean if mean > 0 else float("nan")


def _series(label: str, runs: list[dict[str, Any]], key: str) -> Series:
    stacked = np.array([r["curves"][key] for r in runs], dtype=np.float64)
    return Series(
        label=label,
        x=runs[0]["curves"]["step"],
        mean=stacked.mean(0).tolist(),
        low=stacked.min(0).tolist(),
        high=stacked.max(0).tolist(),
    )


def _norm_series(label: str, measured: list[dict[str, Any]], key: str) -> Series:
    stacked = np.array([m[key] for m in measured], dtype=np.float64)
    return Series(
        label=label,
        x=[float(b) for b in range(1, stacked.shape[1] + 1)],
        mean=stacked.mean(0).tolist(),
        low=stacked.min(0).tolist(),
        high=stacked.max(0).tolist(),
    )


def run(
    *, full: bool = False, seeds: int | None = None, progress: ProgressBar | None = None
) -> ExperimentResult:
    """Runs the reward-quality check, the paired filter comparison and the two training arms."""
    cfg = FULL if full else QUICK
    n_seeds = cfg.seeds if seeds is None else seeds
    if progress is not None:
        progress.reset(total=len(ARMS) * n_seeds * cfg.steps)
    quality: list[dict[str, float]] = []
    initial: list[tuple[float, float]] = []
    measured: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for seed in range(n_seeds):
        warm = warm_model(cfg, seed)
        quality.append(reward_quality(warm[0], warm[1], warm[2], cfg, seed))
        initial.append(accuracy(warm[0], warm[1], warm[2], cfg, seed))
        measured.append(filter_noise(cfg, seed, warm))
        for arm in ARMS:
            runs[arm].append(run_arm(arm, cfg, seed, warm, progress))

    def q(key: str) -> float:
        return float(np.nanmean([r[key] for r in quality]))

    cv = {
        k: float(np.nanmean([noise(m[k])[1] for m in measured])) for k in ("unfiltered", "filtered")
    }
    sd = {
        k: float(np.nanmean([noise(m[k])[0] for m in measured])) for k in ("unfiltered", "filtered")
    }
    mean_norm = {
        k: float(np.mean([np.mean(m[k]) for m in measured])) for k in ("unfiltered", "filtered")
    }
    kept = float(np.mean([m["kept_frac"] for m in measured]))
    final_acc = {arm: float(np.mean([r["final_accuracy"] for r in runs[arm]])) for arm in ARMS}
    final_why = {arm: float(np.mean([r["final_reasoning"] for r in runs[arm]])) for arm in ARMS}
    init_acc = float(np.mean([a for a, _ in initial]))
    init_why = float(np.mean([w for _, w in initial]))
    auc_holds = q("auc_mean") >= q("auc_product") - 0.01
    filter_holds = cv["filtered"] < cv["unfiltered"]
    metrics: dict[str, float] = {
        "auc_mean": q("auc_mean"),
        "auc_product": q("auc_product"),
        "auc_geometric": q("auc_geometric"),
        "auc_mean_debiased": q("auc_mean_debiased"),
        "auc_product_debiased": q("auc_product_debiased"),
        "sampled_accuracy_for_auc": q("accuracy"),
        "malformed_frac_for_auc": q("malformed_frac"),
        "initial_accuracy": init_acc,
        "initial_reasoning_accuracy": init_why,
        "std_filter_kept_frac": kept,
    }
    for k in ("unfiltered", "filtered"):
        metrics[f"grad_norm_cv/{k}"] = cv[k]
        metrics[f"grad_norm_std/{k}"] = sd[k]
        metrics[f"grad_norm_mean/{k}"] = mean_norm[k]
    for arm in ARMS:
        metrics[f"{arm}/final_accuracy"] = final_acc[arm]
        metrics[f"{arm}/final_reasoning_accuracy"] = final_why[arm]
        for seed, r in enumerate(runs[arm]):
            metrics[f"{arm}/final_accuracy/seed{seed}"] = r["final_accuracy"]
            metrics[f"{arm}/final_reasoning_accuracy/seed{seed}"] = r["final_reasoning"]
    for seed, r in enumerate(quality):
        metrics[f"auc_mean/seed{seed}"] = r["auc_mean"]
        metrics[f"auc_product/seed{seed}"] = r["auc_product"]
    for seed, m in enumerate(measured):
        metrics[f"grad_norm_cv/unfiltered/seed{seed}"] = noise(m["unfiltered"])[1]
        metrics[f"grad_norm_cv/filtered/seed{seed}"] = noise(m["filtered"])[1]
    table = [
        ["measure", "value"],
        ["AUC PR (mean prob) / likelihood (product) / geometric",
         f"{q('auc_mean'):.3f} / {q('auc_product'):.3f} / {q('auc_geometric'):.3f}"],
        ["AUC of the debiased rewards, mean / product",
         f"{q('auc_mean_debiased'):.3f} / {q('auc_product_debiased'):.3f}"],
        ["grad-norm CV, all groups / std-filtered (same batches)",
         f"{cv['unfiltered']:.3f} / {cv['filtered']:.3f}"],
        ["grad-norm mean ± std, all groups",
         f"{mean_norm['unfiltered']:.4f} ± {sd['unfiltered']:.4f}"],
        ["grad-norm mean ± std, std-filtered",
         f"{mean_norm['filtered']:.4f} ± {sd['filtered']:.4f} (kept {kept:.2f} of groups)"],
        ["answer exact match: warm start / " + " / ".join(ARMS),
         f"{init_acc:.3f} / " + " / ".join(f"{final_acc[a]:.3f}" for a in ARMS)],
        ["right reasoning: warm start / " + " / ".join(ARMS),
         f"{init_why:.3f} / " + " / ".join(f"{final_why[a]:.3f}" for a in ARMS)],
    ]  # fmt: skip
    panels = [
        Panel(
            title=title,
            xlabel="GRPO step",
            ylabel=ylabel,
            series=[_series(arm, runs[arm], key) for arm in ARMS],
        )
        for key, title, ylabel in (
            ("accuracy", "exact-match accuracy of training rollouts", "accuracy"),
            ("grad_norm", "gradient norm per training step", "norm"),
        )
    ]
    panels.append(
        Panel(
            title="policy-gradient norm per batch at the warm policy (RLPR reward)",
            xlabel="batch",
            ylabel="norm",
            series=[
                _norm_series("all groups", measured, "unfiltered"),
                _norm_series("std filter", measured, "filtered"),
            ],
        )
    )
    verdict_text = (
        f"AUC mean {q('auc_mean'):.3f} vs product {q('auc_product'):.3f} "
        f"({'holds' if auc_holds else 'fails'}: mean >= product - 0.01); gradient-norm CV on "
        f"the same batches {cv['filtered']:.3f} with the std filter vs {cv['unfiltered']:.3f} "
        f"without ({'lower' if filter_holds else 'not lower'}). Answer exact match "
        f"{init_acc:.3f} at the warm start -> RLPR (no verifier) {final_acc['RLPR']:.3f}, "
        f"verifier {final_acc['verifier']:.3f}; right reasoning {init_why:.3f} -> "
        f"{final_why['RLPR']:.3f} / {final_why['verifier']:.3f}."
    )
    return ExperimentResult(
        name="rlpr",
        paper=PAPER,
        claim="The mean per-token probability of the reference answer separates correct from "
        "incorrect reasoning at least as well as the likelihood (AUC), and the std filter "
        "lowers the gradient-norm noise; verifier-free training is compared with the verifier.",
        verdict=bool(auc_holds and filter_holds),
        verdict_text=verdict_text,
        metrics=metrics,
        table=table,
        panels=panels,
        settings={**asdict(cfg), "seeds": n_seeds, "full": full},
        seeds=list(range(n_seeds)),
        notes=[
            "Correctness is the exact match of the answer's integer value (leading zeros "
            "allowed); PR and the likelihood are scored by the warm-started policy itself.",
            "The std filter masks dropped groups instead of regenerating them (RLPR refills the "
            "batch); the noise measure is std/mean of the per-batch gradient norm, filtered and "
            "unfiltered gradients taken on the same batches at the warm policy.",
            "Accuracy is measured on sampled responses (temperature 1) to the first "
            "eval_prompts training prompts after training; it is not part of the verdict.",
            "RLPR's reward replaces the generated answer by the reference, so it scores the "
            "reasoning only and never the answer the policy wrote: 'right reasoning' is what "
            "it optimises, and nothing ties the written answer to it but the warm start.",
        ],
    )
