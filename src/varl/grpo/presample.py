"""GVM's pre-sampling phase: estimate each prompt's acceptance rate and gradient norm.

Paper: GVM-RAFT, arXiv 2505.02391 (spec gvm_rlpr.md §1.3). For every prompt the current model
draws N' completions (8 in the paper, temperature 1); a completion is accepted when its reward
exceeds a threshold (0.5: "correct"). Then

    p_i = accepted / N'
    G_i = mean over accepted completions y of ||∇_E (−Σ_t log π(y_t | x, y_<t))||

where the gradient is taken with respect to the parameters whose name contains
``param_filter`` only (the input embedding matrix, ``embed_tokens``, as in the reference), which
keeps the estimate cheap; the log-probability is summed, not length-normalised. G_i = 0 when
nothing was accepted. The outputs feed :func:`varl.grpo.allocation.gvm_allocation`.

This module imports torch lazily, so :mod:`varl.grpo.allocation` stays numpy-only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from varl._checks import FloatArray


def estimate_acceptance_and_grad_norms(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    reward_fn: Callable[..., list[float | None]],
    columns: Mapping[str, Sequence[Any]] | None = None,
    *,
    samples: int = 8,
    threshold: float = 0.5,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    param_filter: str = "embed_tokens",
    add_special_tokens: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Acceptance rates ``[N]`` and mean accepted-sample gradient norms ``[N]``.

    Args:
        model: A causal LM (``generate`` and a forward returning ``logits``).
        tokenizer: Its tokenizer, padding on the left.
        prompts: N plain-string prompts.
        reward_fn: TRL-signature reward deciding acceptance.
        columns: Dataset columns for ``reward_fn``, one value per prompt.
        samples: N', completions per prompt (>= 1).
        threshold: A completion is accepted when its reward is > this.
        max_new_tokens: Generation limit.
        temperature: Sampling temperature.
        param_filter: Substring selecting the parameters of the gradient norm. A frozen one
            (e.g. the base embedding under LoRA) gets requires_grad for the duration of the
            call only, so the norm is the same whether or not the parameter is trained.
        add_special_tokens: Passed to the tokenizer: True to encode prompts the way trl's
            GRPOTrainer does (with BOS where the tokenizer adds one), False for raw prompts.

    Returns:
        ``(accept_rate, grad_norm)``; the model's parameters are left unchanged and its gradients
        cleared.

    Raises:
        ValueError: If ``samples`` < 1 or no parameter name contains ``param_filter``.
    """

    if samples < 1:
        raise ValueError(f"samples: expected an int >= 1, got {samples}")
    params = [p for n, p in model.named_parameters() if param_filter in n]
    if not params:
        raise ValueError(f"param_filter: no parameter name contains {param_filter!r}")
    frozen = [p for p in params if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        return _estimate(
            model,
            tokenizer,
            prompts,
            reward_fn,
            dict(columns or {}),
            params,
            samples=samples,
            threshold=threshold,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            add_special_tokens=add_special_tokens,
        )
    finally:
        for p in frozen:
            p.requires_grad_(False)


def _estimate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    reward_fn: Callable[..., list[float | None]],
    columns: dict[str, Sequence[Any]],
    params: list[Any],
    *,
    samples: int,
    threshold: float,
    max_new_tokens: int,
    temperature: float,
    add_special_tokens: bool,
) -> tuple[FloatArray, FloatArray]:
    import torch

    rates = np.zeros(len(prompts))
    norms = np.zeros(len(prompts))
    was_training = model.training
    model.eval()
    for i, prompt in enumerate(prompts):
        enc = tokenizer([prompt], return_tensors="pt", add_special_tokens=add_special_tokens).to(
            model.device
        )
        with torch.no_grad():
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                num_return_sequences=samples,
                pad_token_id=tokenizer.pad_token_id,
            )
        completion_ids = out[:, enc["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        row = {k: [v[i]] * samples for k, v in columns.items()}
        rewards = reward_fn(texts, **row)
        accepted = [j for j, r in enumerate(rewards) if r is not None and r > threshold]
        rates[i] = len(accepted) / samples
        sample_norms = []
        for j in accepted:
            ids = out[j : j + 1]
            keep = completion_ids[j] != tokenizer.pad_token_id
            n_prompt = enc["input_ids"].shape[1]
            length = int(keep.sum())
            logits = model(input_ids=ids[:, : n_prompt + length]).logits[0, n_prompt - 1 : -1]
            target = ids[0, n_prompt : n_prompt + length]
            loss = -torch.log_softmax(logits.float(), -1).gather(-1, target[:, None]).sum()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            sq = sum(float((g.float() ** 2).sum()) for g in grads if g is not None)
            sample_norms.append(sq**0.5)
        norms[i] = float(np.mean(sample_norms)) if sample_norms else 0.0
    model.train(was_training)
    return rates, norms
