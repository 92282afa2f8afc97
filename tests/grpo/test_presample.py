"""GVM pre-sampling: acceptance rates and embedding-gradient norms on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from varl.grpo.allocation import gvm_allocation  # noqa: E402
from varl.grpo.presample import estimate_acceptance_and_grad_norms  # noqa: E402
from varl.grpo.tiny import build_char_tokenizer, build_tiny_model  # noqa: E402

torch.set_num_threads(1)


def _accept_even(completions: list[str], **kwargs: object) -> list[float]:
    return [float(len(c) % 2 == 0) for c in completions]


def _accept_none(completions: list[str], **kwargs: object) -> list[float]:
    return [0.0] * len(completions)


def test_estimates_and_allocation() -> None:
    torch.manual_seed(0)
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    prompts = ["1+1=", "2+2=", "3+3="]
    p, g = estimate_acceptance_and_grad_norms(
        model, tok, prompts, _accept_even, samples=6, max_new_tokens=8
    )
    assert p.shape == g.shape == (3,)
    assert np.all((p >= 0) & (p <= 1)) and np.all(p * 6 == np.round(p * 6))
    assert np.all((g > 0) == (p > 0))  # a norm exactly where something was accepted
    assert all(torch.equal(q, before[n]) for n, q in model.named_parameters())
    assert all(q.grad is None for q in model.parameters())
    if p.sum() > 0:
        assert gvm_allocation(p, g, 24).sum() == 24
    p0, g0 = estimate_acceptance_and_grad_norms(
        model, tok, prompts, _accept_none, samples=2, max_new_tokens=4
    )
    assert p0.tolist() == [0.0, 0.0, 0.0] and g0.tolist() == [0.0, 0.0, 0.0]


def test_norm_is_the_embedding_gradient_of_the_summed_logprob() -> None:
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=1)
    torch.manual_seed(3)
    p, g = estimate_acceptance_and_grad_norms(
        model, tok, ["7="], lambda c, **k: [1.0] * len(c), samples=1, max_new_tokens=5
    )
    assert p.tolist() == [1.0]
    # Recompute by hand for the same sample.
    torch.manual_seed(3)
    enc = tok(["7="], return_tensors="pt", add_special_tokens=False)
    out = model.generate(**enc, do_sample=True, max_new_tokens=5, pad_token_id=tok.pad_token_id)
    comp = out[0, 2:]
    comp = comp[comp != tok.pad_token_id]
    logits = model(input_ids=out[:, : 2 + len(comp)]).logits[0, 1:-1]
    loss = -torch.log_softmax(logits, -1).gather(-1, comp[:, None]).sum()
    emb = model.get_input_embeddings().weight
    (grad,) = torch.autograd.grad(loss, [emb])
    assert g[0] == pytest.approx(float(grad.norm()), rel=1e-5)


def test_bad_input() -> None:
    tok = build_char_tokenizer()
    model = build_tiny_model(tok)
    with pytest.raises(ValueError, match="samples: expected an int >= 1"):
        estimate_acceptance_and_grad_norms(model, tok, ["x"], _accept_even, samples=0)
    with pytest.raises(ValueError, match="param_filter: no parameter name contains 'nope'"):
        estimate_acceptance_and_grad_norms(model, tok, ["x"], _accept_even, param_filter="nope")


def test_frozen_embedding_gives_the_same_norms_and_stays_frozen() -> None:
    # Under LoRA the base embedding is frozen; its gradient norm must still be measurable.
    tok = build_char_tokenizer()
    norms = []
    for freeze in (False, True):
        model = build_tiny_model(tok, seed=0)
        if freeze:
            model.requires_grad_(False)
        torch.manual_seed(0)
        _, g = estimate_acceptance_and_grad_norms(
            model, tok, ["1+1=", "2+2="], _accept_even, samples=4, max_new_tokens=6
        )
        norms.append(g)
        if freeze:
            assert not any(q.requires_grad for q in model.parameters())
    np.testing.assert_allclose(norms[0], norms[1], rtol=1e-6)
    assert norms[0].sum() > 0
