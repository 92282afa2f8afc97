"""Diffusion fine-tuning against rewards: AlignProp and Ctrl-U.

Modules:
    ctrl_u       Ctrl-U's uncertainty map, uncertainty-weighted reward loss and twin-timestep
                 helpers (torch only)
    truncation   AlignProp's truncation schedules: which denoising steps keep gradients (numpy)
    rewards      differentiable image rewards (brightness, colour, total variation, a learned
                 JPEG-size surrogate, the LAION aesthetic head) and the grad_fn guard

Importing ``varl.diffusion`` loads nothing heavy; the modules that adapt diffusers import it
themselves.
"""
