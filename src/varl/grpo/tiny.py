"""An offline tiny-LM setting: character tokenizer, tiny Qwen2 model and synthetic tasks.

Nothing here touches the Hugging Face Hub: the tokenizer is built with ``tokenizers`` from the
printable ASCII characters and the model from a ``Qwen2Config`` (2 layers, hidden 64, about 130k
parameters), following the recipe of ``specs/ecosystem.md`` §3.2. It is the embedded default of
``varl grpo train`` and of the ``tw_grpo`` experiment; users swap in a real model by name or path.

Tasks (lists of dicts with a ``prompt`` column and a ground-truth ``solution`` column):

- :func:`multi_answer_task`: "which of A-E are +? +-+-- " — the gold answer is the set of 1-3
  marked option letters. Completions are a generic reasoning block followed by
  ``<answer>A,C</answer>``; they exercise the soft multi-choice reward and TW-GRPO's focus on the
  answer tokens.
- :func:`arithmetic_task`: ``"12+7="`` with answer ``<answer>19</answer>``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
OPTIONS = "ABCDE"
REASONING_PREFIX = "<think>ok</think>"

# GRPOConfig settings every offline run on the tiny model shares (tests and experiments).
QUIET_CPU_TRAINER_ARGS: dict[str, Any] = {
    "use_cpu": True,
    "report_to": "none",
    "save_strategy": "no",
    "disable_tqdm": True,
    "beta": 0.0,
}
"""The CPU, no reporting integrations, no checkpoints, no progress bar, no KL term."""
"""The generic prefix every multi-answer completion starts with (TW-GRPO's "unfocused" tokens)."""


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer over printable ASCII plus ``<pad>``, ``<bos>``, ``<eos>``.

    It is a BPE model with no merges, so every character is one token, and it pads on the left as
    GRPO generation needs. ``decode(encode(s)) == s`` for printable ASCII ``s``.
    """
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *map(chr, range(32, 127))])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        padding_side="left",
    )


def build_tiny_model(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_positions: int = 256,
    seed: int = 0,
) -> Qwen2ForCausalLM:
    """A tiny Qwen2 causal LM built from a config (no download), seeded for reproducibility.

    Raises:
        ValueError: If ``hidden_size`` is not a multiple of ``num_heads`` or ``num_heads`` not a
            multiple of ``num_kv_heads``.
    """
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(
            f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads}), and "
            f"num_heads a multiple of num_kv_heads ({num_kv_heads})"
        )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID
    )
    return model


def multi_answer_task() -> list[dict[str, Any]]:
    """The multi-answer choice task: every 1-3 letter subset of A-E once (25 items).

    The prompt marks the options that belong to the answer, ``"which of A-E are +? +-+-- "``,
    and the gold (``solution``) is the set, ``"A,C"``. The right completion is
    ``REASONING_PREFIX + "<answer>A,C</answer>"``: a fixed, generic reasoning block followed by the
    decision tokens, the setting in which TW-GRPO should weight the answer over the prefix.
    """
    return [
        {
            "prompt": "which of A-E are +? "
            + "".join("+" if o in gold else "-" for o in OPTIONS)
            + " ",
            "solution": ",".join(gold),
        }
        for k in (1, 2, 3)
        for gold in itertools.combinations(OPTIONS, k)
    ]


def answer_completion(answer: str) -> str:
    """The completion template: the generic reasoning prefix, then ``<answer>answer</answer>``."""
    return f"{REASONING_PREFIX}<answer>{answer}</answer>"


def random_answer_completion(rng: random.Random) -> str:
    """A well-formed multi-answer completion with a random 1-3 letter answer."""
    k = rng.choice((1, 2, 3))
    return answer_completion(",".join(sorted(rng.sample(OPTIONS, k))))


def warm_start_pairs(
    items: Sequence[dict[str, Any]],
    *,
    correct_fraction: float,
    per_item: int = 8,
    seed: int = 0,
) -> list[tuple[str, str]]:
    """(prompt, completion) pairs for :func:`warm_start`: right answers with probability
    ``correct_fraction``, random well-formed ones otherwise, so the warm-started policy knows
    the format and part of the task, and RL has something to sharpen.

    Raises:
        ValueError: If ``correct_fraction`` is outside [0, 1] or ``per_item`` < 1.
    """
    if not 0.0 <= correct_fraction <= 1.0 or per_item < 1:
        raise ValueError(
            f"correct_fraction must lie in [0, 1] and per_item be >= 1, got {correct_fraction}, "
            f"{per_item}"
        )
    rng = random.Random(seed)
    return [
        (
            item["prompt"],
            answer_completion(item["solution"])
            if rng.random() < correct_fraction
            else random_answer_completion(rng),
        )
        for item in items
        for _ in range(per_item)
    ]


def arithmetic_task(
    n_items: int = 64, *, max_operand: int = 20, seed: int = 0
) -> list[dict[str, Any]]:
    """Additions ``"a+b="`` with ``solution`` ``str(a + b)``, operands in [0, max_operand].

    Raises:
        ValueError: If ``n_items`` < 1 or ``max_operand`` < 1.
    """
    if n_items < 1 or max_operand < 1:
        raise ValueError(
            f"n_items and max_operand: expected ints >= 1, got {n_items}, {max_operand}"
        )
    rng = random.Random(seed)
    items = []
    for _ in range(n_items):
        a, b = rng.randint(0, max_operand), rng.randint(0, max_operand)
        items.append({"prompt": f"{a}+{b}=", "solution": str(a + b)})
    return items


def warm_start(
    model: Qwen2ForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    pairs: Sequence[tuple[str, str]],
    *,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Supervised warm start: next-token cross-entropy on the completions of (prompt, completion).

    Only completion tokens (and the EOS after them) are scored, so the model learns the answer
    format without being taught to predict prompts.

    Args:
        model: The causal LM to train in place.
        tokenizer: Its tokenizer.
        pairs: (prompt, completion) texts.
        steps: Optimiser steps (Adam).
        batch_size: Pairs per step, drawn with replacement.
        lr: Learning rate.
        seed: Seed of the batch sampling.

    Returns:
        The loss at each step.

    Raises:
        ValueError: If ``pairs`` is empty or ``steps`` / ``batch_size`` < 1.
    """
    if not pairs or steps < 1 or batch_size < 1:
        raise ValueError("pairs must be non-empty and steps, batch_size >= 1")
    rng = random.Random(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    encoded = []
    for prompt, completion in pairs:
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [EOS_ID]
        encoded.append((p_ids, c_ids))
    model.train()
    losses = []
    for _ in range(steps):
        batch = [encoded[rng.randrange(len(encoded))] for _ in range(batch_size)]
        width = max(len(p) + len(c) for p, c in batch)
        ids = torch.full((batch_size, width), PAD_ID)
        labels = torch.full((batch_size, width), -100)
        attn = torch.zeros((batch_size, width), dtype=torch.long)
        for row, (p, c) in enumerate(batch):
            seq = p + c
            ids[row, width - len(seq) :] = torch.tensor(seq)  # left padding, as at generation
            labels[row, width - len(c) :] = torch.tensor(c)
            attn[row, width - len(seq) :] = 1
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses
