"""Read the experts each token was sent to, and count them per sample or per group of tokens.

The exact post-routing choice is what the experts module receives, so a forward pre-hook on it is the source of
truth; top-k of ``output_router_logits`` is not (group limits and bias correction change the choice) and turning
those logits on also changes the training loss. Blocks without such an experts module are read from what their
router returns (:mod:`moemix.routing.outputs`); models with no router moemix can find but an
``output_router_logits`` switch are read through it, for counting outside training only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from moemix.errors import RoutingError
from moemix.routing.locate import (
    INDEX_ARGUMENTS,
    LayerSpec,
    MoELayer,
    RoutersNotFoundError,
    index_argument,
    select_moe_layer,
    select_moe_layers,
)
from moemix.routing.logits import logits_choices, supports_router_logits
from moemix.routing.outputs import is_index_tensor, router_choices


@dataclass
class RoutingCapture:
    """The expert indices one MoE layer received, one tensor per forward call of the model.

    Attributes:
        layer: The MoE layer that is watched.
        indices: One ``LongTensor[T, top_k]`` per forward call, over the flattened ``batch x seq`` tokens (padding
            included), detached and on the model's device.
        active: Record only while True: a capture left in place for a whole run can skip forwards that must not
            count (evaluation, probes).
    """

    layer: MoELayer
    indices: list[torch.Tensor] = field(default_factory=list)
    active: bool = True
    checked: bool = field(default=False, repr=False)

    def take(self) -> list[torch.Tensor]:
        """Return the indices recorded so far and forget them, so that a long run does not hold them all.

        Returns:
            The recorded ``LongTensor[T, top_k]``, oldest first.
        """
        taken, self.indices = self.indices, []
        return taken


@contextmanager
def capture_routing(
    model: nn.Module, layer: int | str = "last", router_module: str | None = None
) -> Iterator[RoutingCapture]:
    """Record the expert indices one MoE layer receives while the context is open.

    Each forward of the model adds one ``LongTensor[T, top_k]`` to ``capture.indices``. A forward run again by
    gradient checkpointing during backward is not recorded, so a step counts once with or without it.

    Args:
        model: A Hugging Face MoE model, bare or wrapped.
        layer: ``"last"``, ``"first"`` or an index into :func:`moemix.routing.find_moe_layers`.
        router_module: Router path pattern for models whose routers are not found by structure.

    Yields:
        The :class:`RoutingCapture` that fills as the model runs.

    Raises:
        RoutingError: If the model has no such MoE layer, or (when the block has no experts module taking indices)
            its router's output tells no choice.
    """
    moe = select_moe_layer(model, layer, router_module)
    with _attached([moe]) as (capture,):
        yield capture


@contextmanager
def capture_layers(
    model: nn.Module, layers: LayerSpec = "last", router_module: str | None = None
) -> Iterator[list[RoutingCapture]]:
    """Record the expert indices several MoE layers receive while the context is open.

    Args:
        model: A Hugging Face MoE model, bare or wrapped.
        layers: ``"last"``, ``"first"``, ``"all"``, an index or a list of indices into
            :func:`moemix.routing.find_moe_layers`.
        router_module: Router path pattern for models whose routers are not found by structure.

    Yields:
        One :class:`RoutingCapture` per chosen layer, in the order of ``layers``.

    Raises:
        RoutingError: As :func:`capture_routing`.
    """
    with _attached(select_moe_layers(model, layers, router_module)) as captures:
        yield captures


def count_choices(indices: torch.Tensor, token_mask: torch.Tensor | None, num_experts: int) -> torch.Tensor:
    """Count how many times each expert was chosen by each sample's counted tokens.

    Args:
        indices: ``LongTensor[T, k]`` of chosen experts over the flattened ``B x S`` tokens, as captured.
        token_mask: ``[B, S]``, nonzero where a token counts (an attention mask, or a mask of one dataset's
            tokens); None counts every token of a single sample.
        num_experts: Number of routed experts; indices outside ``[0, num_experts)`` (zero experts, dropped
            tokens) are not counted.

    Returns:
        ``LongTensor[B, num_experts]`` on the device of ``indices``.

    Raises:
        RoutingError: If the shapes do not fit together (e.g. padding-free packing with no mask).
    """
    if token_mask is None:
        token_mask = torch.ones(1, indices.shape[0], dtype=torch.bool, device=indices.device)
    if token_mask.dim() != 2:
        raise RoutingError(f"token mask must be [batch, seq], got shape {tuple(token_mask.shape)}")
    batch, seq = token_mask.shape
    rows = torch.arange(batch, device=indices.device).view(batch, 1).expand(batch, seq)
    groups = rows.masked_fill(token_mask.to(indices.device) == 0, -1)
    return count_by_group(indices, groups, batch, num_experts)


def count_by_group(
    indices: torch.Tensor,
    groups: torch.Tensor,
    num_groups: int,
    num_experts: int,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Count the expert choices of each group of tokens (e.g. each dataset's), on the device, in one scatter.

    No host synchronisation and no loop over tokens: this is what online counting runs on every training step.

    Args:
        indices: ``LongTensor[T, k]`` of chosen experts over the flattened tokens, as captured.
        groups: ``[T]`` or ``[B, S]`` (``B x S = T``) group of every token; tokens whose group is outside
            ``[0, num_groups)`` (e.g. ``-1`` for padding) are not counted.
        num_groups: Number of groups.
        num_experts: Number of routed experts; indices outside ``[0, num_experts)`` are not counted.
        out: ``LongTensor[num_groups, num_experts]`` (contiguous) to add the counts into; a new one if None.

    Returns:
        ``out``, or a new ``LongTensor[num_groups, num_experts]`` on the device of ``indices``.

    Raises:
        RoutingError: If the shapes do not fit together.
    """
    if indices.dim() != 2:
        raise RoutingError(f"expert indices must be [tokens, top_k], got shape {tuple(indices.shape)}")
    device = indices.device
    flat_groups = groups.reshape(-1).to(device=device, dtype=torch.long)
    if flat_groups.shape[0] != indices.shape[0]:
        shape = " x ".join(str(n) for n in groups.shape)
        raise RoutingError(
            f"the MoE layer routed {indices.shape[0]} tokens but the mask covers {shape} = {flat_groups.shape[0]}"
        )
    chosen = indices.long()
    valid = (chosen >= 0) & (chosen < num_experts) & ((flat_groups >= 0) & (flat_groups < num_groups)).unsqueeze(-1)
    # One flat bin per (group, expert); invalid choices are clamped into range and added with weight 0.
    bins = chosen.clamp(0, num_experts - 1) + flat_groups.clamp(0, num_groups - 1).unsqueeze(-1) * num_experts
    if out is None:
        out = torch.zeros(num_groups, num_experts, dtype=torch.long, device=device)
    out.view(-1).scatter_add_(0, bins.reshape(-1), valid.reshape(-1).to(out.dtype))
    return out


def expert_counts(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    layer: LayerSpec = "last",
    router_module: str | None = None,
    count_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the model once and count, per sample, the experts its non-padding tokens were sent to.

    The model runs under ``torch.no_grad()`` in eval mode (no router jitter, no dropout); the train/eval mode of
    every module is restored afterwards. A model with no router moemix can find but with an
    ``output_router_logits`` switch (remote-code MoE families) is read through it: the top-k of each layer's
    logits, which is its choice when its router takes a plain top-k.

    Args:
        model: A Hugging Face MoE causal LM, bare or wrapped.
        input_ids: ``LongTensor[B, S]``.
        attention_mask: ``[B, S]``, 1 for real tokens and 0 for padding; None counts every token.
        layer: ``"last"``, ``"first"``, ``"all"``, an index or a list of indices into
            :func:`moemix.routing.find_moe_layers`; several layers' counts are concatenated in that order.
        router_module: Router path pattern for models whose routers are not found by structure.
        count_mask: ``[B, S]``, nonzero where a token counts (e.g. only assistant tokens); default
            ``attention_mask``. The model always attends by ``attention_mask``.

    Returns:
        ``LongTensor[B, sum of the layers' num_experts]`` on the device of ``input_ids``; for one layer, row ``b``
        sums to ``attention_mask[b].sum() * top_k`` when the model has no zero experts.

    Raises:
        RoutingError: If the model has no such MoE layer, or a layer did not run exactly once.
    """
    mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    if count_mask is not None:
        mask = count_mask
    try:
        layers = select_moe_layers(model, layer, router_module)
    except RoutersNotFoundError:
        if router_module is not None or not supports_router_logits(model):
            raise
        choices = _in_eval(model, lambda: logits_choices(model, input_ids, attention_mask, layer))
        return torch.cat([count_choices(c, mask, e) for c, e in choices], dim=1).to(input_ids.device)
    with _attached(layers) as captures:
        _in_eval(model, lambda: model(input_ids=input_ids, attention_mask=attention_mask))
    counts = []
    for capture in captures:
        if len(capture.indices) != 1:
            raise RoutingError(
                f"MoE layer {capture.layer.name!r} ran {len(capture.indices)} times in one forward, expected once "
                f"(a fused kernel, e.g. use_kernels=True, may bypass its experts module)"
            )
        counts.append(count_choices(capture.indices[0], mask, capture.layer.num_experts))
    return torch.cat(counts, dim=1).to(input_ids.device)


def check_layers(model: nn.Module, layers: LayerSpec = "last", router_module: str | None = None) -> None:
    """Check, before any forward, that the routing of ``layers`` can be read.

    A model read through ``output_router_logits`` passes here; its layer choice is checked at the first count.

    Args:
        model: A Hugging Face MoE model, bare or wrapped.
        layers: The layers to read, as in :func:`expert_counts`.
        router_module: Router path pattern for models whose routers are not found by structure.

    Raises:
        RoutingError: If the model has no readable MoE layer or ``layers`` names a layer it does not have.
    """
    try:
        select_moe_layers(model, layers, router_module)
    except RoutersNotFoundError:
        if router_module is not None or not supports_router_logits(model):
            raise


def _in_eval(model: nn.Module, run: Any) -> Any:
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            return run()
    finally:
        for module, training in modes.items():
            module.training = training


@contextmanager
def _attached(layers: list[MoELayer]) -> Iterator[list[RoutingCapture]]:
    captures = [RoutingCapture(layer=moe) for moe in layers]
    with ExitStack() as stack:
        for capture in captures:
            moe = capture.layer
            if moe.experts is not None:
                handle = moe.experts.register_forward_pre_hook(_experts_hook(moe.experts, capture), with_kwargs=True)
            else:
                handle = moe.router.register_forward_hook(_router_hook(capture))
            stack.callback(handle.remove)
        yield captures


def _in_backward() -> bool:
    # Autograd runs a graph task only during backward; gradient checkpointing recomputes forwards inside one.
    return torch._C._current_graph_task_id() != -1


def _record(capture: RoutingCapture, indices: Any) -> None:
    if not is_index_tensor(indices):
        raise RoutingError(
            f"MoE layer {capture.layer.name!r} passed {type(indices).__name__} as expert indices, not an integer tensor"
        )
    capture.indices.append(indices.detach().reshape(-1, indices.shape[-1]))


def _experts_hook(experts: nn.Module, capture: RoutingCapture):
    argument = index_argument(experts)
    assert argument is not None, "find_moe_layers keeps only experts modules that take indices"
    name, position = argument
    # GPT-OSS declares router_indices but dispatches to implementations that take top_k_index: accept either.
    keywords = (name, *(n for n in INDEX_ARGUMENTS if n != name))

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        if not capture.active or _in_backward():
            return
        keyword = next((k for k in keywords if k in kwargs), None)
        if keyword is None and len(args) <= position:
            raise RoutingError(
                f"the experts of MoE layer {capture.layer.name!r} ({type(module).__name__}) were called without "
                f"{name} (positional argument {position + 1} or keyword)"
            )
        _record(capture, kwargs[keyword] if keyword is not None else args[position])

    return hook


def _router_hook(capture: RoutingCapture):
    layer = capture.layer

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        if not capture.active or _in_backward():
            return
        try:
            # Scores are checked once (one host synchronisation): their layout does not change between calls.
            chosen = router_choices(output, layer.num_experts, layer.top_k, check_scores=not capture.checked)
        except RoutingError as err:
            raise RoutingError(f"MoE layer {layer.name!r} ({type(module).__name__}): {err}") from None
        capture.checked = True
        _record(capture, chosen)

    return hook
