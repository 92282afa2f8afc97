"""Group-relative policy optimisation pieces: torch tensors in, tensors out.

Modules:
    advantages      group-normalised advantages and the group reward statistics every log reports
    token_weights   TW-GRPO token weights from the intra-group divergence of next-token
                    distributions
    losses          per-token clipped policy loss and its aggregation modes
    trl             VarlGRPOTrainer / VarlGRPOConfig (the only module that imports trl)
    tiny            an offline tiny causal LM, character tokenizer and synthetic tasks

Only ``trl`` and ``tiny`` import transformers/trl; the others need torch alone.
"""
