"""varl's text rewards inside a real trl.GRPOTrainer (tiny offline model, CPU, two steps)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_key, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

trl = pytest.importorskip("trl")
torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")
tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from varl.rewards import LookingReward, gui_grounding, tag_format  # noqa: E402

NUM_GENERATIONS = 4


def _tiny_model_and_tokenizer() -> tuple[object, object]:
    """The offline character-level tokenizer and ~130k-parameter Qwen2 of varl.grpo.tiny."""
    from varl.grpo.tiny import build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    return build_tiny_model(tok, seed=0), tok


def signal(completions: list[str], **kwargs: object) -> list[float]:
    """A reward that always varies within a group, so the optimiser has a gradient.

    A random tiny model almost never writes a box or a tag, so varl's rewards score its
    completions 0.0 (which is what the parse-failure metric is checked on); this one makes sure
    the update step runs with non-zero advantages.
    """
    return [float(sum(map(ord, c)) % 7) for c in completions]


def test_grpo_trainer_runs_with_varl_rewards(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    transformers.set_seed(0)
    model, tokenizer = _tiny_model_and_tokenizer()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    dataset = datasets.Dataset.from_dict(
        {
            "prompt": ["Box the OK button:", "Box the logo:", "Box the menu:", "Box the X:"],
            "solution": [[10, 10, 50, 30], [0, 0, 20, 20], [5, 60, 90, 80], [70, 0, 99, 9]],
        }
    )
    looking = LookingReward(num_generations=NUM_GENERATIONS)
    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        max_completion_length=8,
        num_generations=NUM_GENERATIONS,
        per_device_train_batch_size=NUM_GENERATIONS,
        learning_rate=0.1,
        logging_steps=1,
        max_steps=2,
        seed=0,
        disable_tqdm=True,
    )
    trainer = trl.GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[gui_grounding, tag_format, looking, signal],
        args=args,
        train_dataset=dataset,
    )
    assert trainer.reward_func_names == ["gui_grounding", "tag_format", "looking", "signal"]
    trainer.train()

    assert trainer.state.global_step == 2
    steps = [entry for entry in trainer.state.log_history if "rewards/gui_grounding/mean" in entry]
    assert len(steps) == 2
    for entry in steps:
        for name in ("gui_grounding", "tag_format", "looking"):
            assert f"rewards/{name}/std" in entry
        # Eight characters cannot hold a box ("[1,2,3,4]" has nine) or a <look> block, so every
        # completion is a parse failure, scores 0.0, and is counted. log_metric values reach the
        # log under their own name, averaged over the step's reward calls.
        assert entry["rewards/gui_grounding/mean"] == 0.0
        assert entry["rewards/looking/mean"] == 0.0
        assert entry["gui_grounding/parse_failures"] == NUM_GENERATIONS
        assert entry["looking/parse_failures"] == NUM_GENERATIONS
        assert entry["tag_format/parse_failures"] == 0.0
        assert entry["rewards/signal/std"] > 0.0

    changed = [
        name
        for name, p in model.named_parameters()
        if not torch.equal(p.detach().cpu(), before[name].cpu())
    ]
    assert changed, "no parameter changed during training"
