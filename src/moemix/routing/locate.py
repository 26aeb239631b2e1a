"""Find the Mixture-of-Experts layers of a Hugging Face model from its structure.

An MoE block in transformers 5 is a module with two children: a router named ``gate`` or ``router`` that returns
``(logits, top_k_weights, top_k_indices)``, and an ``experts`` module whose forward receives those indices as
``top_k_index`` (``router_indices`` in GPT-OSS). We look for that shape rather than keep a table of model classes,
so that new architectures and wrapped models (DDP, DeepSpeed, peft) work without a change here.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from torch import nn

from moemix.errors import RoutingError

ROUTER_NAMES = ("gate", "router")
"""Child names under which an MoE block keeps its router, in the order they are looked up."""

INDEX_ARGUMENTS = ("top_k_index", "router_indices")
"""Names of the experts-forward argument that carries the chosen expert indices."""

_NUM_EXPERTS_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
_TOP_K_KEYS = ("top_k", "num_experts_per_tok", "moe_top_k", "num_experts_per_token")


@dataclass(frozen=True)
class MoELayer:
    """One Mixture-of-Experts block of a model.

    Attributes:
        index: Position among the model's MoE layers, 0-based.
        layer_index: Index of the decoder layer that holds the block (dense layers count too).
        name: Module path of the block, as ``model.named_modules()`` gives it.
        block: The MoE block itself.
        router: The block's router (its ``gate`` or ``router`` child).
        experts: The experts module that receives the chosen indices, or None when the block has none
            (the indices are then read from the router's output).
        num_experts: Number of routed experts.
        top_k: Number of experts each token is sent to.
    """

    index: int
    layer_index: int
    name: str
    block: nn.Module
    router: nn.Module
    experts: nn.Module | None
    num_experts: int
    top_k: int


def find_moe_layers(model: nn.Module) -> list[MoELayer]:
    """Find every Mixture-of-Experts block of a model, in module order.

    Args:
        model: A Hugging Face model, bare or wrapped (DDP, DeepSpeed engine, peft model).

    Returns:
        The MoE layers, ordered as the model runs them; dense layers are skipped.

    Raises:
        RoutingError: If the model has no MoE block, or the number of experts or top-k of a block cannot be read.
    """
    layers: list[MoELayer] = []
    for name, block in model.named_modules():
        children = dict(block.named_children())
        router = next((children[n] for n in ROUTER_NAMES if n in children), None)
        experts = children.get("experts")
        # A router alone is not enough: plain gated MLPs and attention gates also have a child named "gate".
        if router is None or experts is None:
            continue
        takes_indices = index_argument(experts) is not None
        layers.append(
            MoELayer(
                index=len(layers),
                layer_index=_layer_index(name, default=len(layers)),
                name=name,
                block=block,
                router=router,
                experts=experts if takes_indices else None,
                num_experts=_read_size(model, name, _NUM_EXPERTS_KEYS, experts, router, block),
                top_k=_read_size(model, name, _TOP_K_KEYS, router, block, experts),
            )
        )
    if not layers:
        raise RoutingError(
            f"{type(_unwrap(model)).__name__} has no Mixture-of-Experts layer: found no module with a router "
            f"({'/'.join(ROUTER_NAMES)}) and an experts module"
        )
    return layers


def select_moe_layer(model: nn.Module, layer: int | str = "last") -> MoELayer:
    """Pick one MoE layer of a model.

    Args:
        model: A Hugging Face model, bare or wrapped.
        layer: ``"last"``, ``"first"``, or an index into :func:`find_moe_layers` (negative counts from the end).

    Returns:
        The chosen MoE layer.

    Raises:
        RoutingError: If the model has no MoE layer or ``layer`` names none of them.
    """
    layers = find_moe_layers(model)
    if layer == "last":
        return layers[-1]
    if layer == "first":
        return layers[0]
    # bool is an int subclass; True as a layer index is surely a mistake.
    if isinstance(layer, int) and not isinstance(layer, bool) and -len(layers) <= layer < len(layers):
        return layers[layer]
    raise RoutingError(
        f"routing layer {layer!r} is not 'last', 'first' or an index in [-{len(layers)}, {len(layers) - 1}]: "
        f"{type(_unwrap(model)).__name__} has {len(layers)} MoE layer(s)"
    )


def index_argument(experts: nn.Module) -> tuple[str, int] | None:
    """Name and position (after ``self``) of the experts-forward argument that carries the expert indices.

    Args:
        experts: An experts module, possibly wrapped by peft (``base_layer``).

    Returns:
        ``(name, position)``, or None if its forward takes no such argument.
    """
    # peft wraps modules and forwards the same arguments to the wrapped one, whose signature tells the names.
    inner = experts
    while isinstance(getattr(inner, "base_layer", None), nn.Module):
        inner = inner.base_layer
    try:
        # inspect follows __wrapped__, so transformers' @use_experts_implementation shows the original forward.
        params = list(inspect.signature(inner.forward).parameters)
    except (TypeError, ValueError):
        return None
    for name in INDEX_ARGUMENTS:
        if name in params:
            return name, params.index(name)
    return None


def _layer_index(name: str, default: int) -> int:
    # The block lives under a ModuleList of decoder layers ("model.layers.3.mlp"): the last number in its path.
    numbers = [int(part) for part in name.split(".") if part.isdigit()]
    return numbers[-1] if numbers else default


def _read_size(model: nn.Module, name: str, keys: tuple[str, ...], *modules: nn.Module) -> int:
    for module in modules:
        for key in keys:
            value = getattr(module, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    config = next((c for c in (getattr(m, "config", None) for m in (*modules, _unwrap(model))) if c is not None), None)
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    raise RoutingError(
        f"cannot read {keys[0]} of the MoE block {name!r}: none of {', '.join(keys)} is set on its router, experts "
        f"or the model config"
    )


def _unwrap(model: nn.Module) -> nn.Module:
    # DDP and DeepSpeed keep the model in .module, peft behind get_base_model(). Only used to name the model.
    while True:
        inner = getattr(model, "module", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        get_base_model = getattr(model, "get_base_model", None)
        base = get_base_model() if callable(get_base_model) else None
        if isinstance(base, nn.Module) and base is not model:
            model = base
            continue
        return model
