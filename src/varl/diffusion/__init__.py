"""Diffusion fine-tuning against rewards: AlignProp and Ctrl-U.

Modules:
    ctrl_u   Ctrl-U's uncertainty map, uncertainty-weighted reward loss and twin-timestep helpers
             (torch only)

Importing ``varl.diffusion`` loads nothing heavy; the modules that adapt diffusers import it
themselves.
"""
