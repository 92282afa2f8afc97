"""varl: variance-aware reinforcement learning.

Ten methods that reduce, measure or exploit the variance of rewards, each as pure functions plus
thin adapters to the framework its users already run (trl, gymnasium, diffusers, OpenSpiel).
Importing ``varl`` itself loads nothing heavy; import the sub-package you need, e.g.
``varl.rewards`` (numpy/scipy only).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
