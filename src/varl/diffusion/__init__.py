"""Diffusion fine-tuning against rewards: AlignProp, DDPO and Ctrl-U.

Modules:
    ctrl_u       Ctrl-U's uncertainty map, uncertainty-weighted reward loss and twin-timestep
                 helpers (torch only)
    truncation   AlignProp's truncation schedules: which denoising steps keep gradients (numpy)
    rewards      differentiable image rewards (brightness, colour, total variation, a learned
                 JPEG-size surrogate, the LAION aesthetic head) and the grad_fn guard
    sampling     the explicit DDIM loop: guidance, η, truncation mask, checkpointed UNet calls,
                 stored latents and per-step log-probs; log-prob of given transitions (torch,
                 duck-typed diffusers UNet/scheduler)
    lora         peft LoRA on the UNet attention projections; diffusers-format save/load
    alignprop    AlignPropConfig / AlignPropTrainer (TRL-compatible reward and prompt
                 functions), the loss transforms and ``train_from_config`` for the CLI
    tiny         the offline tiny text-to-image pipeline (UNet, CLIP text encoder, character
                 tokenizer, DDIM) pretrained on procedural images and cached
    ddpo_math    DDPO's pure math: advantages, PPO-clipped surrogate on per-step log-probs
    ddpo         DDPOTrainer, the policy-gradient baseline, on the same sampler and LoRA
    trainer_io   plumbing shared by alignprop and ddpo: checkpoints (weights_only-safe state
                 files), global RNG states, metrics CSV/TensorBoard, image grids, pipeline
                 loading and the CLI config helpers
    cli          ``varl diffusion alignprop|ddpo|ctrl-u``
    label_maps   Ctrl-U's toy: label maps, coloured images, a corruptible tiny segmenter
    controlnet   Ctrl-U and ControlNet++ training of a diffusers ControlNetModel on that toy

Importing ``varl.diffusion`` loads nothing heavy; the modules that adapt diffusers import it
themselves.
"""
