"""VarlGRPOTrainer inside real trl: equal to GRPOTrainer when off, TW-GRPO weights when on."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

trl = pytest.importorskip("trl")
torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from varl.grpo.losses import aggregate, clipped_policy_loss  # noqa: E402
from varl.grpo.tiny import (  # noqa: E402
    QUIET_CPU_TRAINER_ARGS,
    build_char_tokenizer,
    build_tiny_model,
    multi_answer_task,
    warm_start,
    warm_start_pairs,
)
from varl.grpo.token_weights import tw_grpo_token_weights  # noqa: E402
from varl.grpo.trl import VarlGRPOConfig, VarlGRPOTrainer  # noqa: E402
from varl.rewards.text import multi_choice  # noqa: E402

torch.set_num_threads(1)
G = 4


@pytest.fixture(scope="module")
def warm_model() -> tuple[Any, Any]:
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, seed=0)
    pairs = warm_start_pairs(multi_answer_task(), correct_fraction=0.5, per_item=2)
    warm_start(model, tok, pairs, steps=40, batch_size=16)
    return model, tok


def _kwargs(tmp_path: Path) -> dict[str, Any]:
    return dict(
        **QUIET_CPU_TRAINER_ARGS,
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=G,
        max_completion_length=44,
        learning_rate=1e-3,
        max_steps=2,
        logging_steps=1,
        seed=0,
        loss_type="bnpo",
    )


def _config(tmp_path: Path, **kwargs: Any) -> VarlGRPOConfig:
    return VarlGRPOConfig(**(_kwargs(tmp_path) | kwargs))


def char_sum(completions: list[str], **kwargs: Any) -> list[float]:
    """A reward that varies within every group, so each step has non-zero advantages."""
    return [float(sum(map(ord, c)) % 7) for c in completions]


def _trainer(cls: type, model: Any, tok: Any, args: Any) -> Any:
    data = datasets.Dataset.from_list(multi_answer_task()[:8])
    return cls(
        model=copy.deepcopy(model),
        processing_class=tok,
        reward_funcs=[multi_choice, char_sum],
        args=args,
        train_dataset=data,
    )


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tw_alpha: expected a finite number >= 1"):
        _config(tmp_path, tw_alpha=0.5)
    with pytest.raises(ValueError, match="tw_chunk_size: expected an int >= 1"):
        _config(tmp_path, tw_chunk_size=0)
    with pytest.raises(ValueError, match="loss_aggregation: expected None or one of"):
        _config(tmp_path, loss_aggregation="mean")
    with pytest.raises(ValueError, match="token_weighting: expected one of"):
        _config(tmp_path, token_weighting="tw")
    assert _config(tmp_path, loss_aggregation="seq_mean").loss_type == "grpo"
    assert _config(tmp_path, loss_aggregation="fixed_length").loss_type == "dr_grpo"


def test_off_equals_plain_grpo(warm_model: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = warm_model
    logs = []
    for cls, args in (
        (
            trl.GRPOTrainer,
            trl.GRPOConfig(**_kwargs(tmp_path)),
        ),
        (VarlGRPOTrainer, _config(tmp_path)),
    ):
        trainer = _trainer(cls, model, tok, args)
        trainer.train()
        logs.append([(h["loss"], h["reward"]) for h in trainer.state.log_history if "loss" in h])
        if cls is VarlGRPOTrainer:
            # alpha = 1 makes every weight equal the mask: the TW-GRPO path must then match too
            trainer = _trainer(
                cls, model, tok, _config(tmp_path, token_weighting="tw_grpo", tw_alpha=1.0)
            )
            trainer.train()
            logs.append(
                [(h["loss"], h["reward"]) for h in trainer.state.log_history if "loss" in h]
            )
    assert logs[0] == logs[1] == logs[2] and len(logs[0]) == 2
    assert any(loss != 0 for loss, _ in logs[0])  # a real update, not two zero losses


def test_tw_grpo_weights_reach_trl_loss(warm_model: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = warm_model
    trainer = _trainer(VarlGRPOTrainer, model, tok, _config(tmp_path, token_weighting="tw_grpo"))
    trainer.current_gradient_accumulation_steps = 1
    batch = next(iter(trainer.get_train_dataloader()))
    torch.manual_seed(0)
    out = trainer._generate_and_score_completions(batch)
    adv, mask = out["advantages"], out["completion_mask"]
    assert adv.shape == mask.shape  # token-level advantages [B, T]

    # The weights are the pure function of the policy's logits, group by group.
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    attn = torch.cat([out["prompt_mask"], mask], 1)
    n_tok = mask.size(1)
    with torch.no_grad(), trainer.accelerator.autocast():  # trl's precision (bf16 on this CPU)
        logits = trainer.model(input_ids=ids, attention_mask=attn).logits.float()
    logits = logits[:, -n_tok - 1 : -1]
    weights = tw_grpo_token_weights(
        logits.reshape(-1, G, n_tok, logits.size(-1)), mask.view(-1, G, n_tok)
    )
    weights = weights.reshape(-1, n_tok)
    seq_adv = torch.where(
        weights.sum(1, keepdim=True) > 0, adv.sum(1, keepdim=True) / weights.sum(1, keepdim=True), 0
    )
    torch.testing.assert_close(adv, seq_adv * weights, atol=1e-5, rtol=1e-5)
    assert float(weights[mask.bool()].min()) >= 1.0 - 1e-6
    assert float(weights.max()) <= 1.7 + 1e-6

    # trl's loss on that batch equals varl's clipped_policy_loss + token-mean aggregation.
    trl_loss = trainer._compute_loss(trainer.model, out)
    logp, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attn, n_tok)
    ours = aggregate(clipped_policy_loss(logp, logp.detach(), adv, mask), mask, mode="token_mean")
    torch.testing.assert_close(trl_loss, ours, atol=1e-6, rtol=1e-5)


def test_tw_grpo_training_logs_weights_and_updates(
    warm_model: tuple[Any, Any], tmp_path: Path
) -> None:
    model, tok = warm_model
    trainer = _trainer(VarlGRPOTrainer, model, tok, _config(tmp_path, token_weighting="tw_grpo"))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    logged = [h for h in trainer.state.log_history if "tw/weight_mean" in h]
    assert len(logged) == 2
    assert all(1.0 <= h["tw/weight_mean"] <= h["tw/weight_max"] <= 1.7 + 1e-6 for h in logged)
    assert "rewards/multi_choice/mean" in logged[0] and "frac_reward_zero_std" in logged[0]
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert changed
    assert trainer._paper["id"] == "2505.24718"


def test_plain_grpo_config_is_rejected(warm_model: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = warm_model
    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to="none",
        per_device_train_batch_size=8,
        num_generations=G,
        max_completion_length=8,
    )
    with pytest.raises(TypeError, match="args: expected a VarlGRPOConfig"):
        _trainer(VarlGRPOTrainer, model, tok, args)


def test_weight_logits_match_trl_logps_at_temperature(
    warm_model: tuple[Any, Any], tmp_path: Path
) -> None:
    model, tok = warm_model
    trainer = _trainer(VarlGRPOTrainer, model, tok, _config(tmp_path, temperature=0.7))
    batch = next(iter(trainer.get_train_dataloader()))
    out = trainer._generate_and_score_completions(batch)
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    attn = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
    n_tok = out["completion_ids"].size(1)
    with torch.no_grad():
        logits = trainer._completion_logits(out, slice(0, 8))
        ours = torch.log_softmax(logits, -1).gather(-1, out["completion_ids"][:8, :, None])[..., 0]
        theirs, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids[:8], attn[:8], n_tok
        )
    real = out["completion_mask"][:8].bool()  # positions after EOS are padding in both
    # trl runs the body under bf16 autocast on this CPU config (GRPOConfig's bf16 default), so
    # agreement is to bf16 precision; a shifted position or a missing 1/0.7 differs far more.
    torch.testing.assert_close(ours[real], theirs[real], atol=2e-2, rtol=0)
    untempered = torch.log_softmax(logits * 0.7, -1).gather(-1, out["completion_ids"][:8, :, None])
    assert (untempered[..., 0][real] - theirs[real]).abs().max() > 0.1


def test_std_filter_masks_low_variance_groups_and_resumes(
    warm_model: tuple[Any, Any], tmp_path: Path
) -> None:
    model, tok = warm_model
    args = _config(
        tmp_path, std_filter=True, std_filter_beta=1.0, std_filter_warmup_steps=1, max_steps=4,
        save_strategy="steps", save_steps=2,
    )  # fmt: skip
    trainer = _trainer(VarlGRPOTrainer, model, tok, args)
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()  # the filter acts on training batches only
    loader = iter(trainer.get_train_dataloader())
    trainer._generate_and_score_completions(next(loader))  # warm-up: seeds the EMA, keeps all
    assert trainer.std_filter is not None and trainer.std_filter.ema is not None
    threshold = trainer.std_filter.threshold
    out = trainer._generate_and_score_completions(next(loader))
    rewards = (trainer._gathered_rewards * trainer.reward_weights).nansum(1).view(-1, G)
    low = rewards.std(dim=1) < threshold  # groups below beta * EMA must be masked
    adv = out["advantages"].view(-1, G)
    assert torch.all(adv[low] == 0)
    assert low.any() or not torch.all(adv == 0)

    trainer = _trainer(VarlGRPOTrainer, model, tok, args)
    trainer.train()
    saved = json.loads((tmp_path / "checkpoint-2" / "varl_state.json").read_text())
    assert saved["std_filter"]["steps"] >= 2
    logged = [h for h in trainer.state.log_history if "std_filter/kept_frac" in h]
    assert logged and all(0.0 <= h["std_filter/kept_frac"] <= 1.0 for h in logged)
    straight = json.loads((tmp_path / "checkpoint-4" / "varl_state.json").read_text())
    # Resume from step 2: the restored filter (and trl's restored RNG) give the same final state.
    resumed = _trainer(VarlGRPOTrainer, model, tok, args)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    again = json.loads((tmp_path / "checkpoint-4" / "varl_state.json").read_text())
    assert again == straight and again["std_filter"]["steps"] == 4


def test_std_filter_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="beta: expected a finite number > 0"):
        _config(tmp_path, std_filter=True, std_filter_beta=0.0)
    with pytest.raises(ValueError, match=r"ema_decay: expected a number in \(0, 1\)"):
        _config(tmp_path, std_filter=True, std_filter_ema_decay=1.5)
