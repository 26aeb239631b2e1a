"""Find the MoE layers of a Hugging Face model and count the experts its tokens are sent to.

Knows models, not data: the training code passes masks of which tokens belong to which dataset.
"""

from __future__ import annotations

from moemix.routing.counts import (
    RoutingCapture,
    capture_layers,
    capture_routing,
    check_layers,
    count_by_group,
    count_choices,
    expert_counts,
)
from moemix.routing.locate import (
    ROUTER_MODULE_HINT,
    LayerSpec,
    MoELayer,
    RoutersNotFoundError,
    find_moe_layers,
    resolve_layer_indices,
    select_moe_layer,
    select_moe_layers,
)
from moemix.routing.logits import logits_choices, supports_router_logits

__all__ = [
    "ROUTER_MODULE_HINT",
    "LayerSpec",
    "MoELayer",
    "RoutersNotFoundError",
    "RoutingCapture",
    "capture_layers",
    "capture_routing",
    "check_layers",
    "count_by_group",
    "count_choices",
    "expert_counts",
    "find_moe_layers",
    "logits_choices",
    "resolve_layer_indices",
    "select_moe_layer",
    "select_moe_layers",
    "supports_router_logits",
]
