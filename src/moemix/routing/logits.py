"""Read routing through ``output_router_logits``, for models whose routers moemix cannot hook.

Remote-code MoE families (LLaMA-MoE and its kin) keep their routers in their own module layouts but, like the
transformers MoE models, return every MoE layer's router logits when called with ``output_router_logits=True``.
The top-k of those logits is the choice of a plain top-k router. It is not the choice of a router with group
limits or bias correction, and asking for the logits makes Hugging Face models add the auxiliary load-balancing
loss to the training loss: so this path serves counting outside training (probes) only.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from moemix.errors import RoutingError
from moemix.routing.locate import LayerSpec, read_size, resolve_layer_indices, unwrap_model

_TOP_K_KEYS = ("num_experts_per_tok", "top_k", "moe_top_k", "num_experts_per_token", "moe_k", "num_selects")


def supports_router_logits(model: nn.Module) -> bool:
    """Whether the model can return its router logits (its config or forward knows ``output_router_logits``).

    Args:
        model: A Hugging Face model, bare or wrapped.

    Returns:
        True if ``model(..., output_router_logits=True)`` is expected to return ``router_logits``.
    """
    inner = unwrap_model(model)
    config = getattr(inner, "config", None)
    if config is not None and hasattr(config, "output_router_logits"):
        return True
    try:
        return "output_router_logits" in inspect.signature(inner.forward).parameters
    except (TypeError, ValueError):
        return False


def logits_choices(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, layers: LayerSpec = "last"
) -> list[tuple[torch.Tensor, int]]:
    """Run the model once with ``output_router_logits=True`` and take the top-k of the chosen layers' logits.

    Args:
        model: A model for which :func:`supports_router_logits` holds.
        input_ids: ``LongTensor[B, S]``.
        attention_mask: ``[B, S]`` or None.
        layers: Which of the returned layers (one per MoE layer, dense layers skipped), as in
            :func:`moemix.routing.select_moe_layers`.

    Returns:
        One ``(LongTensor[B * S, top_k], num_experts)`` per chosen layer.

    Raises:
        RoutingError: If the model returns no router logits, or their shapes or top-k cannot be read.
    """
    inner = unwrap_model(model)
    output = model(input_ids=input_ids, attention_mask=attention_mask, output_router_logits=True)
    logits = getattr(output, "router_logits", None)
    if logits is None and isinstance(output, dict):
        logits = output.get("router_logits")
    if isinstance(logits, torch.Tensor):
        logits = tuple(logits)  # some models stack the layers: [layers, tokens, experts]
    if not logits:
        raise RoutingError(
            f"{type(inner).__name__} returned no router_logits with output_router_logits=True, and moemix found no "
            f"router module in it"
        )
    top_k = read_size(model, "the model", _TOP_K_KEYS, inner)
    tokens = input_ids.numel()
    chosen = []
    for index in resolve_layer_indices(layers, len(logits), type(inner).__name__):
        layer_logits = logits[index]
        if not isinstance(layer_logits, torch.Tensor) or layer_logits.numel() % tokens:
            raise RoutingError(
                f"router_logits[{index}] of {type(inner).__name__} does not hold one row of logits per token "
                f"({tokens} tokens)"
            )
        flat = layer_logits.detach().reshape(tokens, -1)
        chosen.append((flat.topk(top_k, dim=-1).indices, flat.shape[-1]))
    return chosen
