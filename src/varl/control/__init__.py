"""DSAC-T (distributional soft actor-critic with three refinements) for gymnasium control.

Paper: Duan et al., "Distributional Soft Actor-Critic with Three Refinements", arXiv 2310.05858
(IEEE TPAMI 2025). ``import varl.control`` loads torch and gymnasium; the rest of varl does not.
"""

from __future__ import annotations

from varl.control.dsac_t import DSACT, SMALL_BUDGET, DSACTConfig

__all__ = ["DSACT", "SMALL_BUDGET", "DSACTConfig"]
