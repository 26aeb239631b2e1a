"""Read the chosen experts from what a router returns, when no experts module receives them as an argument.

Three layouts are read exactly, none of them by taking the top-k of logits (which group limits and bias
corrections make differ from the real choice):

- one integer tensor among the outputs: the ``[tokens, top_k]`` indices (transformers 5 routers);
- sorted dispatch, ``(sorted_slots, token_of_slot, gates, expert_sizes, logits)``: the ``tokens x top_k``
  choices sorted by expert, with how many went to each expert (JetMoE, ModuleFormer-style grouped experts);
- dense scores that are exactly zero off the chosen experts, ``(scores[tokens, E], logits)`` (Llama 4), whose
  experts run every token scaled by its score: the chosen experts are the nonzero scores.
"""

from __future__ import annotations

from typing import Any

import torch

from moemix.errors import RoutingError


def is_index_tensor(value: Any) -> bool:
    """Whether ``value`` is an integer tensor (expert indices), not floats or a mask."""
    return (
        isinstance(value, torch.Tensor)
        and value.dim() >= 1
        and not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)
    )


def router_choices(output: Any, num_experts: int, top_k: int, check_scores: bool = False) -> torch.Tensor:
    """The ``[tokens, top_k]`` expert indices a router chose, from its forward output.

    Args:
        output: What the router's forward returned (a tensor or a tuple/list of them).
        num_experts: Number of routed experts of the layer.
        top_k: Number of experts each token is sent to.
        check_scores: For the dense-scores layout, check (with one host synchronisation) that no row has more
            than ``top_k`` nonzero scores, i.e. that the scores are not plain logits.

    Returns:
        ``LongTensor[tokens, top_k]``; a slot is ``-1`` where a dense-scores row had fewer than ``top_k`` nonzero
        scores (not counted).

    Raises:
        RoutingError: If the output is none of the known layouts.
    """
    outputs = tuple(output) if isinstance(output, (tuple, list)) else (output,)
    integers = [o for o in outputs if is_index_tensor(o)]
    if len(integers) == 1:
        return integers[0].reshape(-1, integers[0].shape[-1]) if integers[0].dim() > 1 else integers[0].view(-1, top_k)
    sorted_dispatch = _sorted_dispatch(outputs, num_experts, top_k)
    if sorted_dispatch is not None:
        return sorted_dispatch
    if not integers:
        scores = next((o for o in outputs if isinstance(o, torch.Tensor) and o.is_floating_point()), None)
        if scores is not None and scores.dim() == 2 and scores.shape[-1] == num_experts and len(outputs) > 1:
            return _nonzero_scores(scores, top_k, check_scores)
    shapes = ", ".join(_describe(o) for o in outputs)
    raise RoutingError(
        f"the router returns ({shapes}): moemix reads one integer tensor of chosen expert indices, a sorted "
        "dispatch (slots, token of slot, gates, expert sizes, ...) or scores that are zero off the chosen experts"
    )


def _sorted_dispatch(outputs: tuple, num_experts: int, top_k: int) -> torch.Tensor | None:
    if len(outputs) < 4 or not (is_index_tensor(outputs[0]) and is_index_tensor(outputs[1])):
        return None
    slots, sizes = outputs[0], outputs[3]
    if slots.dim() != 1 or outputs[1].shape != slots.shape or slots.numel() % top_k:
        return None
    if isinstance(sizes, (list, tuple)) and all(isinstance(s, int) for s in sizes):
        sizes = torch.tensor(sizes, dtype=torch.long, device=slots.device)
    if not is_index_tensor(sizes) or sizes.shape != (num_experts,):
        return None
    # Slot j of the sorted order holds choice slots[j] (a flat index into tokens x top_k) and, since the order is
    # by expert, belongs to the expert whose run of sizes covers j.
    experts = torch.repeat_interleave(torch.arange(num_experts, device=slots.device), sizes.to(slots.device))
    if experts.numel() != slots.numel():
        return None
    chosen = torch.empty_like(slots)
    chosen[slots] = experts
    return chosen.view(-1, top_k)


def _nonzero_scores(scores: torch.Tensor, top_k: int, check: bool) -> torch.Tensor:
    nonzero = scores.detach() != 0
    if check and bool((nonzero.sum(dim=-1) > top_k).any()):
        raise RoutingError(
            f"the router returns no expert indices, and its scores have more than top_k={top_k} nonzero values per "
            "token, so they do not tell the choice (the top-k of logits is not the choice of every router)"
        )
    values, indices = scores.detach().abs().topk(top_k, dim=-1)
    return indices.masked_fill(values == 0, -1)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)}"
    return type(value).__name__
