"""Pure mixing policies: arrays in, arrays out. Knows nothing of torch, Hugging Face or files."""

from moemix.mixing.distances import CRITERIA, DISTANCES, pairwise_distances, summarise_distances
from moemix.mixing.dynamic import (
    check_weights,
    dynamic_update,
    exponentiated_update,
    mean_distances,
    normalise_loads,
    pairwise_l2,
)
from moemix.mixing.policy import (
    POLICIES,
    CyclePolicy,
    DataSizePolicy,
    DynamicPolicy,
    EmbeddingPolicy,
    MixingPolicy,
    OnlineDataMixingPolicy,
    RandomPolicy,
    RefLossPolicy,
    SequentialPolicy,
    StaticPolicy,
    UniformPolicy,
    from_state,
)
from moemix.mixing.signals import Signals, apply_bounds, collapsed

__all__ = [
    "CRITERIA",
    "DISTANCES",
    "POLICIES",
    "CyclePolicy",
    "DataSizePolicy",
    "DynamicPolicy",
    "EmbeddingPolicy",
    "MixingPolicy",
    "OnlineDataMixingPolicy",
    "RandomPolicy",
    "RefLossPolicy",
    "SequentialPolicy",
    "Signals",
    "StaticPolicy",
    "UniformPolicy",
    "apply_bounds",
    "check_weights",
    "collapsed",
    "dynamic_update",
    "exponentiated_update",
    "from_state",
    "mean_distances",
    "normalise_loads",
    "pairwise_distances",
    "pairwise_l2",
    "summarise_distances",
]
