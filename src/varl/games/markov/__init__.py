"""Small two-player Markov games with explicit tabular models (numpy only).

Modules:
    tabular     TabularMarkovGame, exact evaluation, value-iteration best responses, sampling,
                and a gymnasium-like two-agent environment
    stag_hunt   gridworld Markov stag hunt (trust dilemma)
    two_way     toy two-way road with overtaking and oncoming traffic (driving stand-in)
"""

from varl.games.markov.stag_hunt import StagHuntConfig, StagHuntEnv, make_stag_hunt
from varl.games.markov.tabular import (
    TabularMarkovEnv,
    TabularMarkovGame,
    best_response,
    evaluate,
    event_probability,
    policy_probs,
    random_policy,
    sample_episodes,
    state_distribution,
)
from varl.games.markov.two_way import TwoWayConfig, TwoWayEnv, make_two_way

__all__ = [
    "StagHuntConfig",
    "StagHuntEnv",
    "TabularMarkovEnv",
    "TabularMarkovGame",
    "TwoWayConfig",
    "TwoWayEnv",
    "best_response",
    "evaluate",
    "event_probability",
    "make_stag_hunt",
    "make_two_way",
    "policy_probs",
    "random_policy",
    "sample_episodes",
    "state_distribution",
]
