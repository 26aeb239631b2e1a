"""Freeze the routers of every MoE layer, and nothing else, as the paper trained.

The routers are the modules moemix reads the routing from (:func:`moemix.routing.find_moe_layers`), not
parameters chosen by name: a name filter such as "gate" would also freeze the experts' ``gate_proj``.
"""

from __future__ import annotations

import logging

from torch import nn

from moemix.errors import RoutingError
from moemix.routing import ROUTER_MODULE_HINT, RoutersNotFoundError, find_moe_layers

logger = logging.getLogger(__name__)


def freeze_routers(model: nn.Module, router_module: str | None = None) -> list[str]:
    """Set ``requires_grad=False`` on every parameter of the router of every MoE layer.

    Call it before the optimizer is built (the Trainer builds it when training starts).

    Args:
        model: A Hugging Face MoE model, bare or wrapped.
        router_module: Router path pattern for models whose routers moemix does not find by itself.

    Returns:
        The names of the frozen parameters, in module order.

    Raises:
        RoutingError: If the model's routers cannot be found, or they hold no parameter.
    """
    try:
        layers = find_moe_layers(model, router_module)
    except RoutersNotFoundError as err:
        raise RoutingError(f"mixing.freeze_router: {err}") from None
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    frozen: list[str] = []
    for layer in layers:
        for parameter in layer.router.parameters():
            if id(parameter) in names and names[id(parameter)] not in frozen:
                parameter.requires_grad_(False)
                frozen.append(names[id(parameter)])
    if not frozen:
        raise RoutingError(
            f"mixing.freeze_router: the routers of {type(model).__name__} hold no parameter to freeze; "
            f"{ROUTER_MODULE_HINT}"
        )
    logger.info("froze %d router parameter(s) in %d MoE layer(s)", len(frozen), len(layers))
    return frozen
