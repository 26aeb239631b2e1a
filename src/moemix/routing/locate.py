"""Find the Mixture-of-Experts layers of a Hugging Face model from its structure.

An MoE block in transformers 5 is a module with two children: a router named ``gate`` or ``router`` that returns
``(logits, top_k_weights, top_k_indices)``, and an ``experts`` module whose forward receives those indices as
``top_k_index`` (``router_indices`` in GPT-OSS). We look for that shape rather than keep a table of model classes,
so that new architectures and wrapped models (DDP, DeepSpeed, peft) work without a change here. Blocks whose
experts are not one module (JetMoE's grouped linears, older ModuleList experts) are found by a router child that
carries its own ``num_experts`` and ``top_k``; the choice is then read from what the router returns. Anything
else is named by the user: ``router_module``, a module path pattern of the routers.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from moemix.errors import RoutingError

ROUTER_NAMES = ("gate", "router")
"""Child names under which an MoE block keeps its router, in the order they are looked up."""

INDEX_ARGUMENTS = ("top_k_index", "router_indices")
"""Names of the experts-forward argument that carries the chosen expert indices."""

ROUTER_MODULE_HINT = (
    "name its router modules with router_module (mixing.router_module in a moemix config): a module path "
    "where * matches any index, e.g. 'model.layers.*.mlp.gate', whose forward returns the chosen expert indices"
)
"""How to point moemix at routers it cannot find, quoted by every error that says a router was not found."""

_NUM_EXPERTS_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
_TOP_K_KEYS = (
    "top_k",
    "num_experts_per_tok",
    "moe_top_k",
    "num_experts_per_token",
    "moe_k",
    "moe_topk",
    "top_k_experts",
    "num_selects",
)
# Mixture-of-attention-heads routers (JetMoE's attention experts) are not the feed-forward routing the
# paper counts; a router-only block whose path goes through an attention module is skipped.
_ATTENTION_WORDS = ("attention", "attn")


class RoutersNotFoundError(RoutingError):
    """The model has no MoE block moemix can find by structure (it may still expose router logits)."""


LayerSpec = str | int | Sequence[int]
"""Which MoE layers to read: ``"last"``, ``"first"``, ``"all"``, an index, or a list of indices."""


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


def find_moe_layers(model: nn.Module, router_module: str | None = None) -> list[MoELayer]:
    """Find every Mixture-of-Experts block of a model, in module order.

    Args:
        model: A Hugging Face model, bare or wrapped (DDP, DeepSpeed engine, peft model).
        router_module: A module path pattern naming the routers instead of finding them by structure, e.g.
            ``"model.layers.*.mlp.gate"`` (``*`` matches any text; a wrapper's prefix such as ``module.`` may be
            left out). Each matched module is a router whose forward returns the chosen expert indices.

    Returns:
        The MoE layers, ordered as the model runs them; dense layers are skipped.

    Raises:
        RoutingError: If the model has no MoE block (or ``router_module`` matches no module), or the number of
            experts or top-k of a block cannot be read.
    """
    if router_module is not None:
        return _named_routers(model, router_module)
    layers: list[MoELayer] = []
    found: list[str] = []
    for name, block in model.named_modules():
        if any(name.startswith(f"{prefix}.") for prefix in found):
            continue  # a block inside a found block (e.g. a gate inside an expert) is not another MoE layer
        children = dict(block.named_children())
        router_name = next((n for n in ROUTER_NAMES if n in children), None)
        if router_name is None:
            continue
        router, experts = children[router_name], children.get("experts")
        if experts is None:
            # A router alone is not enough: plain gated MLPs and attention gates also have a child named "gate".
            # Only a router that carries its own expert count and top-k is one (JetMoE's feed-forward router).
            if not _is_self_describing_router(router) or _in_attention(name):
                continue
        takes_indices = experts is not None and index_argument(experts) is not None
        sizes = (router, block) if experts is None else (experts, router, block)
        layers.append(
            MoELayer(
                index=len(layers),
                layer_index=_layer_index(name, default=len(layers)),
                name=name,
                block=block,
                router=router,
                experts=experts if takes_indices else None,
                num_experts=read_size(model, name, _NUM_EXPERTS_KEYS, *sizes),
                top_k=read_size(model, name, _TOP_K_KEYS, router, block, *(() if experts is None else (experts,))),
            )
        )
        found.append(name)
    if not layers:
        raise RoutersNotFoundError(
            f"{type(unwrap_model(model)).__name__} has no Mixture-of-Experts layer that moemix can find: "
            f"no module has a router child ({'/'.join(ROUTER_NAMES)}) beside an experts module; "
            f"if it is an MoE model, {ROUTER_MODULE_HINT}"
        )
    return layers


def select_moe_layer(model: nn.Module, layer: int | str = "last", router_module: str | None = None) -> MoELayer:
    """Pick one MoE layer of a model.

    Args:
        model: A Hugging Face model, bare or wrapped.
        layer: ``"last"``, ``"first"``, or an index into :func:`find_moe_layers` (negative counts from the end).
        router_module: Router path pattern, as in :func:`find_moe_layers`.

    Returns:
        The chosen MoE layer.

    Raises:
        RoutingError: If the model has no MoE layer or ``layer`` names none of them.
    """
    if layer == "all" or not isinstance(layer, (int, str)):
        raise RoutingError(f"routing layer {layer!r}: expected one layer ('last', 'first' or an index)")
    return select_moe_layers(model, layer, router_module)[0]


def select_moe_layers(model: nn.Module, layers: LayerSpec = "last", router_module: str | None = None) -> list[MoELayer]:
    """Pick the MoE layers whose routing is read.

    Args:
        model: A Hugging Face model, bare or wrapped.
        layers: ``"last"`` (the paper), ``"first"``, ``"all"``, an index into :func:`find_moe_layers` (negative
            counts from the end), or a list of such indices (kept in the given order, no repeats).
        router_module: Router path pattern, as in :func:`find_moe_layers`.

    Returns:
        The chosen MoE layers.

    Raises:
        RoutingError: If the model has no MoE layer or ``layers`` names a layer it does not have.
    """
    found = find_moe_layers(model, router_module)
    return [found[i] for i in resolve_layer_indices(layers, len(found), type(unwrap_model(model)).__name__)]


def resolve_layer_indices(layers: LayerSpec, count: int, owner: str = "the model") -> list[int]:
    """Turn a layer choice into indices in ``[0, count)``.

    Args:
        layers: ``"last"``, ``"first"``, ``"all"``, an index (negative counts from the end) or a list of indices.
        count: Number of MoE layers of the model.
        owner: What has the layers, for the error message.

    Returns:
        Non-negative indices, in the given order.

    Raises:
        RoutingError: If an index is out of range or repeated, the list is empty, or the name is unknown.
    """
    if layers == "last":
        return [count - 1]
    if layers == "first":
        return [0]
    if layers == "all":
        return list(range(count))
    items = [layers] if isinstance(layers, int) or isinstance(layers, str) else list(layers)
    resolved = []
    for item in items:
        # bool is an int subclass; True as a layer index is surely a mistake.
        if not isinstance(item, int) or isinstance(item, bool) or not -count <= item < count:
            raise RoutingError(
                f"routing layer {item!r} is not 'last', 'first', 'all' or an index in [-{count}, {count - 1}]: "
                f"{owner} has {count} MoE layer(s)"
            )
        resolved.append(item % count)
    if not resolved or len(set(resolved)) != len(resolved):
        raise RoutingError(f"routing layers {layers!r}: expected a non-empty list of distinct MoE layer indices")
    return resolved


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


def _named_routers(model: nn.Module, pattern: str) -> list[MoELayer]:
    modules = dict(model.named_modules())
    names = [name for name in modules if name and _matches(name, pattern)]
    if not names:
        raise RoutingError(
            f"router_module {pattern!r} matches no module of {type(unwrap_model(model)).__name__} "
            f"(module names look like {_example_names(modules)!r})"
        )
    layers = []
    for name in names:
        parent_name = name.rpartition(".")[0]
        router, block = modules[name], modules[parent_name]
        experts = getattr(block, "experts", None)
        takes_indices = isinstance(experts, nn.Module) and index_argument(experts) is not None
        layers.append(
            MoELayer(
                index=len(layers),
                layer_index=_layer_index(name, default=len(layers)),
                name=parent_name,
                block=block,
                router=router,
                experts=experts if takes_indices else None,
                num_experts=read_size(model, name, _NUM_EXPERTS_KEYS, router, block),
                top_k=read_size(model, name, _TOP_K_KEYS, router, block),
            )
        )
    return layers


def _matches(name: str, pattern: str) -> bool:
    # A wrapper adds a prefix ("module.", "base_model.model."): the pattern may be written for the bare model.
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, f"*.{pattern}")


def _example_names(modules: dict[str, nn.Module]) -> list[str]:
    # The deepest names of the first decoder layer say most about where a router could be.
    names = [name for name in modules if name]
    return names[len(names) // 4 : len(names) // 4 + 6]


def _is_self_describing_router(router: nn.Module) -> bool:
    return all(
        any(_positive_int(getattr(router, key, None)) for key in keys) for keys in (_NUM_EXPERTS_KEYS, _TOP_K_KEYS)
    )


def _in_attention(name: str) -> bool:
    return any(word in part.lower() for part in name.split(".") for word in _ATTENTION_WORDS)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _layer_index(name: str, default: int) -> int:
    # The block lives under a ModuleList of decoder layers ("model.layers.3.mlp"): the last number in its path.
    numbers = [int(part) for part in name.split(".") if part.isdigit()]
    return numbers[-1] if numbers else default


def read_size(model: nn.Module, name: str, keys: tuple[str, ...], *modules: nn.Module) -> int:
    """The first positive integer among ``keys`` on the modules, else on the model's config.

    Raises:
        RoutingError: If none is set, naming the MoE block ``name``.
    """
    for module in modules:
        for key in keys:
            value = getattr(module, key, None)
            if _positive_int(value):
                return value
    config = next(
        (c for c in (getattr(m, "config", None) for m in (*modules, unwrap_model(model))) if c is not None), None
    )
    for key in keys:
        try:
            value = getattr(config, key, None)
        except Exception:  # noqa: BLE001 - configs with per-layer values refuse global reads of them
            continue
        if _positive_int(value):
            return value
    raise RoutingError(
        f"cannot read {keys[0]} of the MoE block {name!r}: none of {', '.join(keys)} is set on its router, experts "
        f"or the model config"
    )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP / DeepSpeed (``.module``) and peft (``get_base_model()``) wrappers."""
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
