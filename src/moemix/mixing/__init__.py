"""Pure mixing policies: arrays in, arrays out. Knows nothing of torch, Hugging Face or files."""

from moemix.mixing.dynamic import check_weights, dynamic_update, mean_distances, normalise_loads, pairwise_l2
from moemix.mixing.policy import POLICIES, DynamicPolicy, MixingPolicy, StaticPolicy, UniformPolicy, from_state

__all__ = [
    "POLICIES",
    "DynamicPolicy",
    "MixingPolicy",
    "StaticPolicy",
    "UniformPolicy",
    "check_weights",
    "dynamic_update",
    "from_state",
    "mean_distances",
    "normalise_loads",
    "pairwise_l2",
]
