"""RLPR inside a GRPO trainer: splice the reference answer into each response and score it.

Paper: "RLPR: Extrapolating RLVR to General Domains without Verifiers", arXiv 2506.18254; the
procedure follows the reference code (spec gvm_rlpr.md §2.1-§2.2). For a prompt x and a response
o = z ‖ y (reasoning z, answer y):

1. find the answer span y with a pattern (default ``<answer>(.*?)</answer>``, last match);
2. replace it by the reference y*, keeping z, the tags and the whitespace the policy put around
   y, and cut the response after the span's closing tag: o' = z ‖ y* (then EOS);
3. one forward pass of the current policy over x ‖ o' gives the log-probabilities ℓ_t of y*'s
   tokens, located *in the spliced sequence* (through the tokenizer's character offsets, since
   the tokens of y* depend on their context);
4. the reward is ``(1 - c)·max(PR(o') - PR_0, 0) + c·format_ok`` with PR the aggregate of
   :func:`~varl.grpo.probability_reward.reference_answer_probability` and PR_0 the same
   aggregate for y* with no reasoning, computed once with the initial policy and cached per
   (prompt, reference) (:class:`NoReasoningCache`; it is part of every checkpoint, the fix the
   reference code needed in its PR #18).

A response whose answer span is missing or empty is malformed: it scores exactly 0 and is
counted (``malformed_frac``), whatever its format. The reference code gives it scoreB = 0, which
with its clip and a failed format check is 0 too.

Our decisions ([O], not the reference code's): the no-reasoning text is a template with an
``{answer}`` slot, ``"<answer>{answer}</answer>"`` by default, so y* is scored in the same tags
as in the spliced response; the reference code places ``" " + y* + " "`` directly after the
assistant header. The reference code's bf16 rounding of scoreB is not reproduced.

This module imports torch only; the tokenizer is any Hugging Face *fast* tokenizer (it must
return ``offset_mapping``) and the policy enters as a ``logprob_fn`` callable, so it is tested
without trl. :class:`varl.grpo.trl.VarlGRPOTrainer` wires it in with ``reward_mode="rlpr"``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from varl.grpo.probability_reward import AGGREGATES, reference_answer_probability, rlpr_reward
from varl.rewards.format import check_tags, tag_format_reward
from varl.rewards.parse import completion_text

__all__ = [
    "DEFAULT_ANSWER_PATTERN",
    "DEFAULT_NO_REASONING_TEMPLATE",
    "LogprobFn",
    "NoReasoningCache",
    "RlprScorer",
    "RlprScores",
    "ScoringBatch",
    "Splice",
    "build_scoring_batch",
    "compile_answer_pattern",
    "encode_splice",
    "no_reasoning_splice",
    "splice_reference",
]

DEFAULT_ANSWER_PATTERN = r"<answer>(.*?)</answer>"
DEFAULT_NO_REASONING_TEMPLATE = "<answer>{answer}</answer>"
ANSWER_SLOT = "{answer}"

LogprobFn = Callable[[Tensor, Tensor, int], Tensor]
"""``(input_ids [B, P+C], attention_mask [B, P+C], C) -> [B, C]``: the policy's log-probabilities
of the last C tokens of each row (the response part), no gradient."""


def compile_answer_pattern(pattern: str) -> re.Pattern[str]:
    """Compiles the answer-span pattern (``re.DOTALL``); group 1 must be the answer.

    Raises:
        TypeError: If ``pattern`` is not a string.
        ValueError: If it does not compile or has not exactly one capturing group.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"answer_pattern: expected a regular expression string, got {pattern!r}")
    try:
        compiled = re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise ValueError(f"answer_pattern: {pattern!r} is not a valid regex ({exc})") from exc
    if compiled.groups != 1:
        raise ValueError(
            f"answer_pattern: expected exactly one capturing group (the answer), got "
            f"{compiled.groups} in {pattern!r}"
        )
    return compiled


def check_no_reasoning_template(template: str) -> str:
    """Returns ``template`` if it holds the ``{answer}`` slot exactly once.

    Raises:
        ValueError: Otherwise.
    """
    if not isinstance(template, str) or template.count(ANSWER_SLOT) != 1:
        raise ValueError(
            f"no_reasoning_template: expected a string with '{ANSWER_SLOT}' exactly once, "
            f"got {template!r}"
        )
    return template


def _check_reference(reference: object) -> str:
    if isinstance(reference, bool) or not isinstance(reference, str | int | float):
        raise ValueError(f"reference: expected a string (or number), got {reference!r}")
    text = str(reference).strip()
    if not text:
        raise ValueError(f"reference: expected a non-empty answer, got {reference!r}")
    return text


@dataclass(frozen=True)
class Splice:
    """A response text with the reference answer at ``text[start:end]``."""

    text: str
    start: int
    end: int


def splice_reference(completion: str, reference: str, pattern: re.Pattern[str]) -> Splice | None:
    """Replaces the response's answer span by the reference answer (o = z ‖ y → z ‖ y*).

    The last match of ``pattern`` is the answer; its group 1 with surrounding whitespace stripped
    is replaced by the stripped reference, the whitespace the policy wrote around it is kept, and
    the text after the match (after ``</answer>``) is dropped.

    Args:
        completion: The response text.
        reference: The reference answer y* (a non-empty string; numbers are converted).
        pattern: From :func:`compile_answer_pattern`.

    Returns:
        The :class:`Splice`, or None when there is no match or the answer span is blank (a
        malformed response).

    Raises:
        ValueError: If ``reference`` is blank or not a string/number.

    Example:
        >>> p = compile_answer_pattern(DEFAULT_ANSWER_PATTERN)
        >>> s = splice_reference("<think>a b</think><answer> 7 </answer>!", "12", p)
        >>> s.text, s.text[s.start : s.end]
        ('<think>a b</think><answer> 12 </answer>', '12')
        >>> splice_reference("<think>a b</think>", "12", p) is None
        True
    """
    ref = _check_reference(reference)
    matches = list(pattern.finditer(completion))
    if not matches:
        return None
    match = matches[-1]
    span = match.group(1)
    if span is None or not span.strip():
        return None
    lead = len(span) - len(span.lstrip())
    trail = len(span) - len(span.rstrip())
    g_start, g_end = match.span(1)
    start = g_start + lead
    text = completion[:start] + ref + completion[g_end - trail : match.end()]
    return Splice(text=text, start=start, end=start + len(ref))


def no_reasoning_splice(reference: str, template: str = DEFAULT_NO_REASONING_TEMPLATE) -> Splice:
    """The no-reasoning response for PR_0: ``template`` with ``{answer}`` replaced by y*.

    Example:
        >>> s = no_reasoning_splice("12")
        >>> s.text, s.text[s.start : s.end]
        ('<answer>12</answer>', '12')
    """
    ref = _check_reference(reference)
    check_no_reasoning_template(template)
    start = template.index(ANSWER_SLOT)
    text = template[:start] + ref + template[start + len(ANSWER_SLOT) :]
    return Splice(text=text, start=start, end=start + len(ref))


def encode_splice(
    tokenizer: Any, splice: Splice, eos_id: int | None
) -> tuple[list[int], list[int]]:
    """Token ids of a spliced response (then EOS) and the mask of the reference-answer tokens.

    A token is on the mask when its character span overlaps ``[start, end)`` in the spliced
    text, so y*'s tokens are found in context (a token that merges the last tag character with
    the first answer character counts as an answer token).

    Args:
        tokenizer: A Hugging Face fast tokenizer (``return_offsets_mapping`` support).
        splice: From :func:`splice_reference` or :func:`no_reasoning_splice`.
        eos_id: Appended after the text (off the mask); None appends nothing.

    Returns:
        ``(ids, mask)``, two lists of equal length.

    Raises:
        TypeError: If the tokenizer cannot return character offsets.
    """
    try:
        enc = tokenizer(splice.text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError as exc:  # slow (Python) tokenizers
        raise TypeError("tokenizer: RLPR needs a fast tokenizer (offset_mapping)") from exc
    if "offset_mapping" not in enc:
        raise TypeError("tokenizer: RLPR needs a fast tokenizer (offset_mapping)")
    ids = list(enc["input_ids"])
    mask = [int(b > a and a < splice.end and b > splice.start) for a, b in enc["offset_mapping"]]
    if eos_id is not None:
        ids.append(int(eos_id))
        mask.append(0)
    return ids, mask


@dataclass(frozen=True)
class ScoringBatch:
    """Prompts left-padded, responses right-padded (trl's layout), with the answer mask.

    Attributes:
        input_ids: ``[B, P + C]``.
        attention_mask: ``[B, P + C]``.
        answer_mask: ``[B, C]``, 1 on the reference-answer tokens.
    """

    input_ids: Tensor
    attention_mask: Tensor
    answer_mask: Tensor


def build_scoring_batch(
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    answer_masks: Sequence[Sequence[int]],
    pad_id: int,
) -> ScoringBatch:
    """Pads prompts on the left and responses on the right into one ``[B, P + C]`` batch.

    Raises:
        ValueError: On mismatched lengths, an empty batch or an empty response.
    """
    n = len(prompt_ids)
    if n == 0 or len(response_ids) != n or len(answer_masks) != n:
        raise ValueError(
            f"prompt_ids, response_ids, answer_masks: expected equal non-zero lengths, got {n}, "
            f"{len(response_ids)}, {len(answer_masks)}"
        )
    if any(
        len(r) == 0 or len(r) != len(m) for r, m in zip(response_ids, answer_masks, strict=True)
    ):
        raise ValueError("response_ids, answer_masks: expected non-empty rows of equal length")
    width_p = max(len(p) for p in prompt_ids)
    width_c = max(len(r) for r in response_ids)
    ids = torch.full((n, width_p + width_c), int(pad_id), dtype=torch.long)
    attn = torch.zeros((n, width_p + width_c), dtype=torch.long)
    answer = torch.zeros((n, width_c), dtype=torch.long)
    for row, (p, r, m) in enumerate(zip(prompt_ids, response_ids, answer_masks, strict=True)):
        ids[row, width_p - len(p) : width_p] = torch.as_tensor(list(p), dtype=torch.long)
        ids[row, width_p : width_p + len(r)] = torch.as_tensor(list(r), dtype=torch.long)
        attn[row, width_p - len(p) : width_p + len(r)] = 1
        answer[row, : len(m)] = torch.as_tensor(list(m), dtype=torch.long)
    return ScoringBatch(input_ids=ids, attention_mask=attn, answer_mask=answer)


def _answer_probability(logprob_fn: LogprobFn, batch: ScoringBatch, aggregate: str) -> Tensor:
    """``[B]`` aggregated probability of the masked tokens under ``logprob_fn``."""
    n_response = batch.answer_mask.size(1)
    logps = logprob_fn(batch.input_ids, batch.attention_mask, n_response)
    logps = logps.detach().float().cpu()
    if tuple(logps.shape) != tuple(batch.answer_mask.shape):
        raise ValueError(
            f"logprob_fn: expected log-probs of shape {tuple(batch.answer_mask.shape)}, got "
            f"{tuple(logps.shape)}"
        )
    # A reduced-precision forward (bf16 autocast) can round a log-prob near 0 slightly above 0;
    # NaN survives the clamp and is rejected by reference_answer_probability.
    return reference_answer_probability(
        logps.clamp(max=0.0),
        batch.answer_mask,
        aggregate=aggregate,  # type: ignore[arg-type]
    )


def _prompt_key(prompt: object) -> object:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, default=str)


class NoReasoningCache:
    """PR_0: the probability of y* with no reasoning, per (prompt, reference), computed once.

    RLPR computes it with the initial policy before training and never updates it (spec §2.2;
    upstream issue #10); :meth:`state_dict` goes into each checkpoint so that a resumed run uses
    the same values instead of recomputing them with the trained policy (upstream PR #18).

    Args:
        aggregate: The aggregate of the scores (``"mean"``, ``"product"``, ``"geometric"``).
        template: The no-reasoning response with an ``{answer}`` slot.

    Attributes:
        values: key -> PR_0, the key being ``json.dumps([prompt, reference])``.
        computed: Entries this object computed with a policy (restored ones excluded).
    """

    def __init__(self, *, aggregate: str = "mean", template: str = DEFAULT_NO_REASONING_TEMPLATE):
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate: expected one of {AGGREGATES}, got {aggregate!r}")
        self.aggregate = aggregate
        self.template = check_no_reasoning_template(template)
        self.values: dict[str, float] = {}
        self.computed = 0

    @staticmethod
    def key(prompt: object, reference: object) -> str:
        """The cache key of one (prompt, reference) pair; prompts may be message lists."""
        return json.dumps([_prompt_key(prompt), _check_reference(reference)])

    def __len__(self) -> int:
        return len(self.values)

    def fill(
        self,
        prompts: Sequence[Any],
        prompt_ids: Sequence[Sequence[int]],
        references: Sequence[Any],
        *,
        tokenizer: Any,
        logprob_fn: LogprobFn,
        eos_id: int | None,
        pad_id: int,
        chunk_size: int = 64,
    ) -> int:
        """Computes PR_0 for the pairs not yet cached (each distinct pair once).

        Args:
            prompts: ``[N]`` prompts (strings or message lists), the cache keys.
            prompt_ids: ``[N]`` their token ids as the policy sees them.
            references: ``[N]`` reference answers.
            tokenizer: Fast tokenizer.
            logprob_fn: The policy (see :data:`LogprobFn`).
            eos_id: Appended after the no-reasoning response.
            pad_id: Padding id.
            chunk_size: Sequences per forward pass, >= 1.

        Returns:
            The number of entries computed.

        Raises:
            ValueError: On mismatched lengths or ``chunk_size`` < 1.
        """
        if not (len(prompts) == len(prompt_ids) == len(references)):
            raise ValueError(
                f"prompts, prompt_ids, references: expected equal lengths, got {len(prompts)}, "
                f"{len(prompt_ids)}, {len(references)}"
            )
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size: expected an int >= 1, got {chunk_size!r}")
        todo: dict[str, int] = {}
        for i, (prompt, reference) in enumerate(zip(prompts, references, strict=True)):
            key = self.key(prompt, reference)
            if key not in self.values and key not in todo:
                todo[key] = i
        keys = list(todo)
        for start in range(0, len(keys), int(chunk_size)):
            part = keys[start : start + int(chunk_size)]
            encoded = [
                encode_splice(
                    tokenizer, no_reasoning_splice(references[todo[k]], self.template), eos_id
                )
                for k in part
            ]
            batch = build_scoring_batch(
                [prompt_ids[todo[k]] for k in part],
                [ids for ids, _ in encoded],
                [mask for _, mask in encoded],
                pad_id,
            )
            probs = _answer_probability(logprob_fn, batch, self.aggregate)
            for k, value in zip(part, probs.tolist(), strict=True):
                self.values[k] = float(value)
        self.computed += len(keys)
        return len(keys)

    def lookup(self, prompts: Sequence[Any], references: Sequence[Any]) -> Tensor:
        """``[N]`` cached PR_0 values.

        Raises:
            ValueError: If a pair is not cached.
        """
        out = []
        for prompt, reference in zip(prompts, references, strict=True):
            key = self.key(prompt, reference)
            if key not in self.values:
                raise ValueError(f"no-reasoning cache: no entry for {key[:120]!r}")
            out.append(self.values[key])
        return torch.tensor(out, dtype=torch.float32)

    def state_dict(self) -> dict[str, Any]:
        """The settings and the values, JSON-serialisable (for checkpoints)."""
        return {"aggregate": self.aggregate, "template": self.template, "values": dict(self.values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output; ``computed`` is left as is.

        Raises:
            ValueError: On missing keys, settings that differ from this cache's (the values
                would mean something else), or non-finite values outside [0, 1].
        """
        missing = {"aggregate", "template", "values"} - set(state)
        if missing:
            raise ValueError(f"state: missing keys {sorted(missing)}")
        if state["aggregate"] != self.aggregate or state["template"] != self.template:
            raise ValueError(
                "state: the no-reasoning cache was computed with aggregate="
                f"{state['aggregate']!r}, template={state['template']!r}; this run uses "
                f"aggregate={self.aggregate!r}, template={self.template!r}"
            )
        values = {str(k): float(v) for k, v in state["values"].items()}
        if any(not (math.isfinite(v) and 0.0 <= v <= 1.0) for v in values.values()):
            raise ValueError("state: no-reasoning probabilities must be finite and in [0, 1]")
        self.values = values


@dataclass(frozen=True)
class RlprScores:
    """What :meth:`RlprScorer.score` computed for ``[B]`` responses.

    Attributes:
        rewards: ``[B]`` final rewards (0 for malformed responses).
        p: ``[B]`` PR of y* after the response's reasoning (0 when malformed).
        p_no_reasoning: ``[B]`` cached PR_0.
        format_ok: ``[B]`` 1.0 when the response has the required tag format.
        valid: ``[B]`` False for malformed responses (no answer span).
        computed_no_reasoning: PR_0 entries computed during this call (0 once the cache is full).
    """

    rewards: Tensor
    p: Tensor
    p_no_reasoning: Tensor
    format_ok: Tensor
    valid: Tensor
    computed_no_reasoning: int

    def metrics(self) -> dict[str, float]:
        """Scalars to log: mean PR (valid responses), mean PR_0, malformed and format shares."""
        valid = self.valid
        return {
            "p_mean": float(self.p[valid].mean()) if bool(valid.any()) else 0.0,
            "p_no_reasoning_mean": float(self.p_no_reasoning.mean()),
            "malformed_frac": float((~valid).float().mean()),
            "format_frac": float(self.format_ok.mean()),
            "no_reasoning_computed": float(self.computed_no_reasoning),
        }


class RlprScorer:
    """RLPR's reward for a batch of responses, with the no-reasoning cache it owns.

    Args:
        tokenizer: Fast tokenizer of the policy.
        answer_pattern: Regex whose group 1 is the answer span (default ``<answer>(.*?)</answer>``).
        aggregate: ``"mean"`` (RLPR), ``"product"`` (likelihood, VeriFree) or ``"geometric"``.
        format_weight: c in ``(1 - c)·max(Δ, 0) + c·format_ok``, in [0, 1] (RLPR: 0.1).
        format_tags: The tag blocks the format check requires, in order
            (:func:`~varl.rewards.format.tag_format_reward`; RLPR's R1 format: think, answer).
        no_reasoning_template: The PR_0 response with an ``{answer}`` slot.

    Raises:
        ValueError: On invalid settings.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        answer_pattern: str = DEFAULT_ANSWER_PATTERN,
        aggregate: str = "mean",
        format_weight: float = 0.1,
        format_tags: Sequence[str] = ("think", "answer"),
        no_reasoning_template: str = DEFAULT_NO_REASONING_TEMPLATE,
    ) -> None:
        self.pattern = compile_answer_pattern(answer_pattern)
        c = float(format_weight)
        if not (math.isfinite(c) and 0.0 <= c <= 1.0):
            raise ValueError(f"format_weight: expected a number in [0, 1], got {format_weight!r}")
        self.format_weight = c
        self.format_tags = check_tags(format_tags)
        self.cache = NoReasoningCache(aggregate=aggregate, template=no_reasoning_template)
        self.tokenizer = tokenizer
        self.eos_id: int | None = getattr(tokenizer, "eos_token_id", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad if pad is not None else (self.eos_id or 0))

    @property
    def aggregate(self) -> str:
        """The aggregate of PR and PR_0."""
        return self.cache.aggregate

    def fill_cache(
        self,
        prompts: Sequence[Any],
        prompt_ids: Sequence[Sequence[int]],
        references: Sequence[Any],
        logprob_fn: LogprobFn,
        *,
        chunk_size: int = 64,
    ) -> int:
        """Computes the missing PR_0 entries (see :meth:`NoReasoningCache.fill`)."""
        return self.cache.fill(
            prompts,
            prompt_ids,
            references,
            tokenizer=self.tokenizer,
            logprob_fn=logprob_fn,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            chunk_size=chunk_size,
        )

    def score(
        self,
        prompts: Sequence[Any],
        prompt_ids: Sequence[Sequence[int]],
        completions: Sequence[Any],
        references: Sequence[Any],
        logprob_fn: LogprobFn,
    ) -> RlprScores:
        """Scores ``[B]`` responses with one forward pass of the policy over the spliced ones.

        PR_0 entries missing from the cache (prompts outside the training set, or an
        ``IterableDataset`` that could not be cached ahead) are computed now with the current
        policy and counted in ``computed_no_reasoning``.

        Args:
            prompts: ``[B]`` prompts (cache keys).
            prompt_ids: ``[B]`` their token ids, as generation saw them.
            completions: ``[B]`` responses (strings or trl's message lists).
            references: ``[B]`` reference answers y*.
            logprob_fn: The current policy (see :data:`LogprobFn`).

        Returns:
            The :class:`RlprScores`.

        Raises:
            ValueError: On mismatched lengths or a blank reference.
        """
        n = len(completions)
        if not (len(prompts) == len(prompt_ids) == len(references) == n) or n == 0:
            raise ValueError(
                f"prompts, prompt_ids, completions, references: expected equal non-zero lengths, "
                f"got {len(prompts)}, {len(prompt_ids)}, {n}, {len(references)}"
            )
        computed = self.fill_cache(prompts, prompt_ids, references, logprob_fn)
        p0 = self.cache.lookup(prompts, references)
        texts = [completion_text(c) for c in completions]
        splices = [
            None if t is None else splice_reference(t, str(r), self.pattern)
            for t, r in zip(texts, references, strict=True)
        ]
        valid = torch.tensor([s is not None for s in splices], dtype=torch.bool)
        format_ok = torch.tensor(
            [0.0 if t is None else tag_format_reward(t, self.format_tags) for t in texts]
        )
        p = torch.zeros(n)
        kept = [(i, s) for i, s in enumerate(splices) if s is not None]
        rows = [i for i, _ in kept]
        if rows:
            encoded = [encode_splice(self.tokenizer, s, self.eos_id) for _, s in kept]
            batch = build_scoring_batch(
                [prompt_ids[i] for i in rows],
                [ids for ids, _ in encoded],
                [mask for _, mask in encoded],
                self.pad_id,
            )
            p[rows] = _answer_probability(logprob_fn, batch, self.aggregate)
        rewards = rlpr_reward(
            p, p0, format_ok, w_probability=1.0 - self.format_weight, w_format=self.format_weight
        )
        rewards = torch.where(valid, rewards, torch.zeros_like(rewards))
        return RlprScores(
            rewards=rewards,
            p=p,
            p_no_reasoning=p0,
            format_ok=format_ok,
            valid=valid,
            computed_no_reasoning=computed,
        )
