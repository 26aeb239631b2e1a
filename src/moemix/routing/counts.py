"""Read the experts each token was sent to, and count them per sample.

The exact post-routing choice is what the experts module receives, so a forward pre-hook on it is the source of
truth; top-k of ``output_router_logits`` is not (group limits and bias correction change the choice) and turning
those logits on also changes the training loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from moemix.errors import RoutingError
from moemix.routing.locate import INDEX_ARGUMENTS, MoELayer, index_argument, select_moe_layer


@dataclass
class RoutingCapture:
    """The expert indices one MoE layer received, one tensor per forward call of the model.

    Attributes:
        layer: The MoE layer that is watched.
        indices: One ``LongTensor[T, top_k]`` per forward call, over the flattened ``batch x seq`` tokens (padding
            included), detached and on the model's device.
    """

    layer: MoELayer
    indices: list[torch.Tensor] = field(default_factory=list)

    def take(self) -> list[torch.Tensor]:
        """Return the indices recorded so far and forget them, so that a long run does not hold them all.

        Returns:
            The recorded ``LongTensor[T, top_k]``, oldest first.
        """
        taken, self.indices = self.indices, []
        return taken


@contextmanager
def capture_routing(model: nn.Module, layer: int | str = "last") -> Iterator[RoutingCapture]:
    """Record the expert indices one MoE layer receives while the context is open.

    Each forward of the model adds one ``LongTensor[T, top_k]`` to ``capture.indices``. A forward run again by
    gradient checkpointing during backward is not recorded, so a step counts once with or without it.

    Args:
        model: A Hugging Face MoE model, bare or wrapped.
        layer: ``"last"``, ``"first"`` or an index into :func:`moemix.routing.find_moe_layers`.

    Yields:
        The :class:`RoutingCapture` that fills as the model runs.

    Raises:
        RoutingError: If the model has no such MoE layer, or (when the block has no experts module taking indices)
            its router returns no integer indices.
    """
    moe = select_moe_layer(model, layer)
    capture = RoutingCapture(layer=moe)
    if moe.experts is not None:
        handle = moe.experts.register_forward_pre_hook(_experts_hook(moe.experts, capture), with_kwargs=True)
    else:
        handle = moe.router.register_forward_hook(_router_hook(capture))
    try:
        yield capture
    finally:
        handle.remove()


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
    if indices.dim() != 2:
        raise RoutingError(f"expert indices must be [tokens, top_k], got shape {tuple(indices.shape)}")
    if token_mask is None:
        token_mask = torch.ones(1, indices.shape[0], dtype=torch.bool, device=indices.device)
    if token_mask.dim() != 2:
        raise RoutingError(f"token mask must be [batch, seq], got shape {tuple(token_mask.shape)}")
    batch, seq = token_mask.shape
    if indices.shape[0] != batch * seq:
        raise RoutingError(
            f"the MoE layer routed {indices.shape[0]} tokens but the mask covers {batch} x {seq} = {batch * seq}"
        )
    device = indices.device
    chosen = indices.reshape(batch, seq, -1).long()
    valid = (chosen >= 0) & (chosen < num_experts) & (token_mask.to(device) != 0).unsqueeze(-1)
    # One flat bin per (sample, expert); invalid choices are clamped into range and added with weight 0.
    bins = chosen.clamp(0, num_experts - 1) + torch.arange(batch, device=device).view(batch, 1, 1) * num_experts
    counts = torch.zeros(batch * num_experts, dtype=torch.long, device=device)
    counts.scatter_add_(0, bins.reshape(-1), valid.reshape(-1).long())
    return counts.view(batch, num_experts)


def expert_counts(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    layer: int | str = "last",
) -> torch.Tensor:
    """Run the model once and count, per sample, the experts its non-padding tokens were sent to.

    The model runs under ``torch.no_grad()`` in eval mode (no router jitter, no dropout); the train/eval mode of
    every module is restored afterwards.

    Args:
        model: A Hugging Face MoE causal LM, bare or wrapped.
        input_ids: ``LongTensor[B, S]``.
        attention_mask: ``[B, S]``, 1 for real tokens and 0 for padding; None counts every token.
        layer: ``"last"``, ``"first"`` or an index into :func:`moemix.routing.find_moe_layers`.

    Returns:
        ``LongTensor[B, num_experts]`` on the device of ``input_ids``; row ``b`` sums to
        ``attention_mask[b].sum() * top_k`` when the model has no zero experts.

    Raises:
        RoutingError: If the model has no such MoE layer, or the layer did not run exactly once.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad(), capture_routing(model, layer) as capture:
            model(input_ids=input_ids, attention_mask=attention_mask)
    finally:
        for module, training in modes.items():
            module.training = training
    if len(capture.indices) != 1:
        raise RoutingError(
            f"MoE layer {capture.layer.name!r} ran {len(capture.indices)} times in one forward, expected once "
            f"(a fused kernel, e.g. use_kernels=True, may bypass its experts module)"
        )
    mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    return count_choices(capture.indices[0], mask, capture.layer.num_experts).to(input_ids.device)


def _in_backward() -> bool:
    # Autograd runs a graph task only during backward; gradient checkpointing recomputes forwards inside one.
    return torch._C._current_graph_task_id() != -1


def _is_index_tensor(value: Any) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and value.dim() >= 1
        and not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)
    )


def _record(capture: RoutingCapture, indices: Any) -> None:
    if not _is_index_tensor(indices):
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
        if _in_backward():
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
    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        if _in_backward():
            return
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        # Routers return (logits, weights, indices); the indices are the one integer tensor among them.
        found = [o for o in outputs if _is_index_tensor(o)]
        if len(found) != 1:
            raise RoutingError(
                f"the router of MoE layer {capture.layer.name!r} ({type(module).__name__}) returns "
                f"{len(found)} integer tensors, expected one with the chosen expert indices"
            )
        _record(capture, found[0])

    return hook
