"""Diffusion fine-tuning against rewards: AlignProp and Ctrl-U.

Modules:
    ctrl_u       Ctrl-U's uncertainty map, uncertainty-weighted reward loss and twin-timestep
                 helpers (torch only)
    truncation   AlignProp's truncation schedules: which denoising steps keep gradients (numpy)

Importing ``varl.diffusion`` loads nothing heavy; the modules that adapt diffusers import it
themselves.
"""
