"""Group-relative policy optimisation pieces: torch tensors in, tensors out.

Modules:
    advantages      group-normalised advantages and the group reward statistics every log reports
    token_weights   TW-GRPO token weights from the intra-group divergence of next-token
                    distributions
    losses          per-token clipped policy loss and its aggregation modes
    probability_reward  RLPR's probability reward and its debiasing (math)
    rlpr_scoring    RLPR in training: answer splice, reference-token mask, no-reasoning cache
    selection       Temporal-R1 variance-aware selection and RLPR's reward-std filter (numpy)
    regenerate      refilling the groups the std filter drops (DAPO-style rounds)
    allocation      GVM's sample allocation (numpy)
    presample       GVM's pre-sampling: acceptance rates and gradient norms per prompt
    gvm_sampling    GVM estimates kept by the trainer (refreshed by age, checkpointed)
    trainer_sampling  the trainer's GVM and regeneration paths (no trl import)
    raft            GVM-RAFT rejection-sampling fine-tuning loop
    augment         TW-GRPO question-answer inversion
    select          the ``varl grpo select`` command
    trl             VarlGRPOTrainer / VarlGRPOConfig (the only module that imports trl)
    train           the ``varl grpo train`` command
    tiny            an offline tiny causal LM, character tokenizer and synthetic tasks

Only ``trl``, ``train`` and ``tiny`` import transformers/trl (``select`` imports them when run);
the others need torch or numpy alone.
"""
