"""Find the MoE layers of a Hugging Face model and count the experts its tokens are sent to.

Knows models, not data: the training code passes masks of which tokens belong to which dataset.
"""

from __future__ import annotations

from moemix.routing.counts import RoutingCapture, capture_routing, count_choices, expert_counts
from moemix.routing.locate import MoELayer, find_moe_layers, select_moe_layer

__all__ = [
    "MoELayer",
    "RoutingCapture",
    "capture_routing",
    "count_choices",
    "expert_counts",
    "find_moe_layers",
    "select_moe_layer",
]
