"""RAFT: rejection-sampling fine-tuning, with uniform or GVM per-prompt sample allocation.

Paper: "Optimizing Chain-of-Thought Reasoners via Gradient Variance Minimization in Rejection
Sampling and RL" (GVM-RAFT), arXiv 2505.02391, Algorithm 1 (spec gvm_rlpr.md §1.1-§1.5). One
iteration of :func:`raft_train` over m prompts with a budget of N samples:

1. (GVM only, every ``refresh`` iterations) pre-sample N' completions per prompt and estimate the
   acceptance rate p_i and the accepted-sample gradient norm G_i
   (:func:`varl.grpo.presample.estimate_acceptance_and_grad_norms`);
2. allocate the budget: n_i = N/m (uniform, "best-of-n" RAFT) or
   n_i = :func:`varl.grpo.allocation.gvm_allocation` (p, G, N);
3. E-step: draw n_i completions of prompt i; keep the accepted ones D_i (reward > threshold);
4. M-step: ``epochs`` optimiser steps on the NLL of the accepted samples,

       L(θ) = −(1/m) Σ_i (1/|D_i|) Σ_{y ∈ D_i} Σ_t log π_θ(y_t | x_i, y_<t),

   a per-prompt mean (prompts with D_i = ∅ contribute 0), the sequence log-probability summed
   over tokens as in the reference code.

Every drawn completion is counted: ``samples_drawn`` includes the pre-samples, so GVM's extra
cost is visible; ``train_samples_drawn`` counts the budget only (the paper's step-matched
accounting).

Our decisions ([O]): all m prompts take part in every iteration (one "EM shard"); when no prompt
has both p_i > 0 and G_i > 0, GVM falls back to the uniform allocation for that iteration (the
reference skips such a batch, which would stall a loop whose estimates never change); accuracy is
measured by greedy decoding and costs no budget.

This is an adapter-level module: it drives ``transformers`` model objects with torch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from varl._checks import check_int, check_nonnegative, check_positive
from varl._progress import ProgressBar
from varl.grpo.allocation import gvm_allocation, integerise_preserving_sum
from varl.grpo.presample import estimate_acceptance_and_grad_norms

RewardFn = Callable[..., list[float | None]]
ALLOCATIONS = ("uniform", "gvm")
CHECKPOINT_NAME = "raft_state.pt"


@dataclass(frozen=True, kw_only=True)
class RaftConfig:
    """Settings of :func:`raft_train` (defaults follow the paper's run script where it has one).

    Raises:
        ValueError: On any out-of-range field, naming it.
    """

    allocation: str = "gvm"
    """``"uniform"`` (vanilla RAFT, n_i = N/m) or ``"gvm"`` (GVM-RAFT)."""
    steps: int = 10
    """Iterations (each: optional pre-sampling, E-step, M-step)."""
    budget: int = 64
    """N, completions drawn per iteration for training (the paper: 8 per prompt)."""
    presamples: int = 8
    """N', pre-samples per prompt for the GVM estimates (8 in the paper)."""
    refresh: int = 1
    """Re-estimate p_i, G_i every this many iterations (the paper: once per EM shard)."""
    lr: float = 1e-3
    """Adam learning rate of the M-step."""
    epochs: int = 1
    """Full-batch optimiser steps on the accepted samples per iteration."""
    max_new_tokens: int = 32
    """Generation limit per completion."""
    temperature: float = 1.0
    """Sampling temperature (1.0 in the paper)."""
    threshold: float = 0.5
    """A completion is accepted when its reward is > this (the reference's 0.5)."""
    alpha: float = 1e-3
    """GVM regulariser α."""
    beta: float = 2.0
    """GVM exponent β."""
    param_filter: str = "embed_tokens"
    """Parameters whose gradient norm defines G_i (the input embeddings, as in the reference)."""
    eval_every: int = 1
    """Measure greedy accuracy every this many iterations (and before the first); 0: never."""
    seed: int = 0
    """Seed of the sampling RNG (torch's global generator, which ``generate`` uses)."""

    def __post_init__(self) -> None:
        if self.allocation not in ALLOCATIONS:
            raise ValueError(f"allocation: expected one of {ALLOCATIONS}, got {self.allocation!r}")
        for name, minimum in (
            ("steps", 1),
            ("budget", 1),
            ("presamples", 1),
            ("refresh", 1),
            ("epochs", 1),
            ("max_new_tokens", 1),
            ("eval_every", 0),
            ("seed", 0),
        ):
            check_int(getattr(self, name), name, minimum=minimum)
        check_positive(self.lr, "lr")
        check_positive(self.temperature, "temperature")
        check_nonnegative(self.alpha, "alpha")
        check_positive(self.beta, "beta")
        if not np.isfinite(float(self.threshold)):
            raise ValueError(f"threshold: expected a finite number, got {self.threshold!r}")
        if not isinstance(self.param_filter, str) or not self.param_filter:
            raise ValueError(f"param_filter: expected a non-empty str, got {self.param_filter!r}")


@dataclass
class RaftHistory:
    """What :func:`raft_train` measured, one entry per iteration (``eval_*``: per evaluation).

    Attributes:
        step: Iteration index (0-based).
        presamples: Completions drawn for the GVM estimates in this iteration.
        allocation: n_i per prompt in this iteration.
        accepted: Accepted completions per prompt in this iteration.
        fallback: True where GVM had nothing to allocate and used the uniform allocation.
        loss: M-step loss of the first epoch (0.0 when nothing was accepted).
        samples_drawn: Cumulative completions drawn after this iteration, pre-samples included.
        train_samples_drawn: Cumulative completions drawn for training (the budget only).
        eval_step: Iterations completed at each evaluation (0: before training).
        eval_samples_drawn: ``samples_drawn`` at each evaluation.
        eval_train_samples_drawn: ``train_samples_drawn`` at each evaluation.
        accuracy: Greedy accuracy at each evaluation.
    """

    step: list[int] = field(default_factory=list)
    presamples: list[int] = field(default_factory=list)
    allocation: list[list[int]] = field(default_factory=list)
    accepted: list[list[int]] = field(default_factory=list)
    fallback: list[bool] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    samples_drawn: list[int] = field(default_factory=list)
    train_samples_drawn: list[int] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval_samples_drawn: list[int] = field(default_factory=list)
    eval_train_samples_drawn: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def _encode(tokenizer: Any, text: str) -> list[int]:
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"prompts: the prompt {text!r} encodes to no tokens")
    return ids


def _cut(ids: list[int], eos_id: int | None, pad_id: int | None) -> list[int]:
    """A generated row up to and including its first EOS, padding removed."""
    out: list[int] = []
    for t in ids:
        if t == eos_id:
            out.append(t)
            break
        if t != pad_id:
            out.append(t)
    return out


def sample_completions(
    model: Any,
    tokenizer: Any,
    prompt_ids: Sequence[Sequence[int]],
    counts: Sequence[int],
    *,
    max_new_tokens: int,
    temperature: float | None,
) -> list[list[list[int]]]:
    """Draws ``counts[i]`` completions of prompt i in one left-padded ``generate`` call.

    Args:
        model: A causal LM with ``generate``.
        tokenizer: Its tokenizer (``pad_token_id``, ``eos_token_id``).
        prompt_ids: m prompts as token ids.
        counts: ``[m]`` completions per prompt (0 allowed).
        max_new_tokens: Generation limit.
        temperature: Sampling temperature, or None for greedy decoding.

    Returns:
        Per prompt, ``counts[i]`` completions as token ids, cut after the first EOS (kept).
    """
    rows = [i for i, n in enumerate(counts) for _ in range(int(n))]
    result: list[list[list[int]]] = [[] for _ in prompt_ids]
    if not rows:
        return result
    pad = tokenizer.pad_token_id
    width = max(len(prompt_ids[i]) for i in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(rows):
        p = prompt_ids[i]
        ids[r, width - len(p) :] = torch.tensor(p)
        mask[r, width - len(p) :] = 1
    sampling: dict[str, Any] = (
        {"do_sample": False}
        if temperature is None
        else {"do_sample": True, "temperature": temperature}
    )
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            **sampling,
        )
    model.train(was_training)
    for r, i in enumerate(rows):
        result[i].append(_cut(out[r, width:].tolist(), tokenizer.eos_token_id, pad))
    return result


def sequence_logprobs(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    *,
    pad_id: int,
) -> torch.Tensor:
    """Summed log-probabilities log π(y_b | x_b) ``[B]`` of completions given their prompts.

    Sequences are right-padded, so token positions equal those of unpadded generation.

    Args:
        model: A causal LM returning ``logits`` ``[B, T, V]``.
        prompt_ids: B prompts as token ids (non-empty).
        completions: B completions as token ids (non-empty).
        pad_id: Padding token id.

    Returns:
        ``[B]`` summed completion-token log-probabilities (with a gradient).
    """
    seqs = [list(p) + list(c) for p, c in zip(prompt_ids, completions, strict=True)]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    target = torch.zeros((len(seqs), width - 1), dtype=torch.bool)
    for r, (p, s) in enumerate(zip(prompt_ids, seqs, strict=True)):
        ids[r, : len(s)] = torch.tensor(s)
        mask[r, : len(s)] = 1
        target[r, len(p) - 1 : len(s) - 1] = True
    ids, mask, target = ids.to(model.device), mask.to(model.device), target.to(model.device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (logp * target).sum(-1)


def raft_loss(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    accepted: Sequence[Sequence[Sequence[int]]],
    *,
    pad_id: int,
) -> torch.Tensor:
    """GVM-RAFT's M-step loss −(1/m) Σ_i (1/|D_i|) Σ_{y∈D_i} log π(y | x_i) (spec §1.1).

    Args:
        model: A causal LM returning ``logits`` ``[B, T, V]``.
        prompt_ids: m prompts as token ids.
        accepted: Per prompt, its accepted completions D_i as token ids (may be empty).
        pad_id: Padding token id.

    Returns:
        The scalar loss (a tensor with a gradient); 0 when nothing was accepted.
    """
    pairs = [(i, c) for i, comps in enumerate(accepted) for c in comps if c]
    if not pairs:
        return torch.zeros(())
    seq_logp = sequence_logprobs(
        model, [prompt_ids[i] for i, _ in pairs], [c for _, c in pairs], pad_id=pad_id
    )
    sizes = torch.tensor([len([c for c in accepted[i] if c]) for i, _ in pairs], dtype=torch.float)
    return -(seq_logp / sizes).sum() / len(prompt_ids)


def greedy_accuracy(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    columns: Mapping[str, Sequence[Any]] | None = None,
    *,
    max_new_tokens: int = 32,
    threshold: float = 0.5,
) -> float:
    """Share of prompts whose greedy completion has a reward > ``threshold``."""
    prompt_ids = [_encode(tokenizer, p) for p in prompts]
    comps = sample_completions(
        model,
        tokenizer,
        prompt_ids,
        [1] * len(prompts),
        max_new_tokens=max_new_tokens,
        temperature=None,
    )
    texts = [tokenizer.decode(c[0], skip_special_tokens=True) for c in comps]
    rewards = reward_fn(texts, **{k: list(v) for k, v in (columns or {}).items()})
    return float(np.mean([r is not None and r > threshold for r in rewards]))


def _check_columns(columns: Mapping[str, Sequence[Any]] | None, n: int, name: str) -> None:
    for key, values in (columns or {}).items():
        if len(values) != n:
            raise ValueError(f"{name}[{key!r}]: expected {n} values (one per prompt)")


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def raft_train(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    config: RaftConfig,
    *,
    columns: Mapping[str, Sequence[Any]] | None = None,
    eval_fn: Callable[[Any], float] | None = None,
    progress: ProgressBar | bool = False,
    checkpoint_dir: str | Path | None = None,
) -> RaftHistory:
    """Trains ``model`` in place with (GVM-)RAFT; see the module docstring for the iteration.

    Args:
        model: A causal LM (``generate``, ``named_parameters``, forward returning ``logits``).
        tokenizer: Its tokenizer with ``pad_token_id`` and ``eos_token_id``.
        prompts: m plain-string prompts.
        reward_fn: TRL-signature reward ``(completions, **columns) -> list[float | None]``;
            ``None`` counts as rejected.
        config: The :class:`RaftConfig`.
        columns: Dataset columns for ``reward_fn``, one value per prompt (e.g. ``solution``).
        eval_fn: ``eval_fn(model) -> accuracy``; the default is :func:`greedy_accuracy` on
            ``prompts``. It must not draw from torch's global RNG (or resumed runs diverge).
        progress: True for a tqdm bar over the iterations, or a bar advanced by 1 per iteration
            (it is not reset, so experiments can share one bar between runs).
        checkpoint_dir: If given, the full state (model, optimiser, step, GVM estimates, RNG,
            history) is saved there after every iteration, and a run finding a checkpoint there
            resumes from it; a resumed run matches an uninterrupted one exactly on CPU.

    Returns:
        The :class:`RaftHistory`.

    Raises:
        ValueError: If ``prompts`` is empty, ``budget`` < m for GVM, a column has the wrong
            length, or a checkpoint was written with a different configuration.
    """
    from tqdm.auto import tqdm

    m = len(prompts)
    if m == 0:
        raise ValueError("prompts: expected at least one prompt")
    if config.allocation == "gvm" and config.budget < m:
        raise ValueError(
            f"budget: GVM needs at least one sample per prompt, expected >= {m}, "
            f"got {config.budget}"
        )
    _check_columns(columns, m, "columns")
    columns = {k: list(v) for k, v in (columns or {}).items()}
    if eval_fn is None:

        def eval_fn(model: Any) -> float:
            return greedy_accuracy(
                model,
                tokenizer,
                prompts,
                reward_fn,
                columns,
                max_new_tokens=config.max_new_tokens,
                threshold=config.threshold,
            )

    prompt_ids = [_encode(tokenizer, p) for p in prompts]
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history = RaftHistory()
    rates: list[float] | None = None
    norms: list[float] | None = None
    start = 0
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    if path is not None and path.is_file():
        state = torch.load(path, weights_only=True)
        saved = {k: v for k, v in state["config"].items() if k != "steps"}
        if saved != {k: v for k, v in dataclasses.asdict(config).items() if k != "steps"}:
            raise ValueError(
                f"checkpoint_dir: {path} was written with a different configuration "
                f"({state['config']}); only `steps` may change on resume"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, rates, norms = state["step"], state["rates"], state["norms"]
        history = RaftHistory(**state["history"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    else:
        torch.manual_seed(config.seed)

    def evaluate(done: int) -> None:
        history.eval_step.append(done)
        history.eval_samples_drawn.append(history.samples_drawn[-1] if history.step else 0)
        history.eval_train_samples_drawn.append(
            history.train_samples_drawn[-1] if history.step else 0
        )
        history.accuracy.append(float(eval_fn(model)))

    bar: Any = progress
    if progress is True:
        bar = tqdm(total=config.steps, initial=start, desc=f"raft ({config.allocation})")
    if start == 0 and config.eval_every:
        evaluate(0)
    for step in range(start, config.steps):
        presampled = 0
        if config.allocation == "gvm" and (rates is None or step % config.refresh == 0):
            p, g = estimate_acceptance_and_grad_norms(
                model,
                tokenizer,
                prompts,
                reward_fn,
                columns,
                samples=config.presamples,
                threshold=config.threshold,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                param_filter=config.param_filter,
            )
            rates, norms = p.tolist(), g.tolist()
            presampled = config.presamples * m
        fallback = False
        if config.allocation == "gvm":
            assert rates is not None and norms is not None
            if any(r > 0 and n > 0 for r, n in zip(rates, norms, strict=True)):
                counts = gvm_allocation(
                    rates, norms, config.budget, alpha=config.alpha, beta=config.beta
                )
            else:
                fallback = True
        if config.allocation == "uniform" or fallback:
            counts = integerise_preserving_sum(np.full(m, 1.0 / m), config.budget)
        comps = sample_completions(
            model,
            tokenizer,
            prompt_ids,
            counts.tolist(),
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
        )
        accepted: list[list[list[int]]] = []
        for i, group in enumerate(comps):
            if not group:
                accepted.append([])
                continue
            texts = [tokenizer.decode(c, skip_special_tokens=True) for c in group]
            rewards = reward_fn(texts, **{k: [v[i]] * len(group) for k, v in columns.items()})
            accepted.append(
                [
                    c
                    for c, r in zip(group, rewards, strict=True)
                    if r is not None and r > config.threshold
                ]
            )
        first_loss = 0.0
        if any(accepted):
            model.train()
            for epoch in range(config.epochs):
                loss = raft_loss(model, prompt_ids, accepted, pad_id=tokenizer.pad_token_id)
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                if epoch == 0:
                    first_loss = float(loss.detach())
            optimizer.zero_grad()
            model.eval()
        previous = history.samples_drawn[-1] if history.step else 0
        previous_train = history.train_samples_drawn[-1] if history.step else 0
        history.step.append(step)
        history.presamples.append(presampled)
        history.allocation.append([int(n) for n in counts])
        history.accepted.append([len(a) for a in accepted])
        history.fallback.append(fallback)
        history.loss.append(first_loss)
        history.samples_drawn.append(previous + presampled + int(counts.sum()))
        history.train_samples_drawn.append(previous_train + int(counts.sum()))
        if config.eval_every and ((step + 1) % config.eval_every == 0 or step + 1 == config.steps):
            evaluate(step + 1)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _save(
                path,
                {
                    "config": dataclasses.asdict(config),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step + 1,
                    "rates": rates,
                    "norms": norms,
                    "history": dataclasses.asdict(history),
                    "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                },
            )
        if bar is not False:
            bar.update(1)
    if progress is True:
        bar.close()
    return history
