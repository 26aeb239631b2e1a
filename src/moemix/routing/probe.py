"""Count the experts that fixed probe batches choose, doing no more work than reading the routing needs.

A probe reads the routing of a few MoE layers, so the forward stops as soon as the last of them has chosen: the
capture hook records the indices and a second hook raises :class:`RoutingRead`, which this module catches. No
later layer, no LM head and no logits are computed, and the experts of the last read layer do not run either.
Forwards run in eval mode under ``torch.inference_mode`` (``no_grad`` for sharded models) and the counts stay on
the device.

Rows of several batches (several datasets) are merged into as few forwards as a token budget allows, each row
keeping the group (dataset) of its tokens, so that counts per group are the same as one forward per batch. The
rows are right-padded, so a Transformers causal LM runs them without a padding mask (no real token reads a
later position): the attention's plain causal path.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from moemix.errors import RoutingError
from moemix.routing.counts import RoutingCapture, _attached, count_by_group
from moemix.routing.locate import LayerSpec, RoutersNotFoundError, select_moe_layers, unwrap_model
from moemix.routing.logits import logits_choices, supports_router_logits

DEFAULT_MAX_TOKENS = 16384
"""Padded tokens (rows x length) per merged probe forward on an accelerator, unless told otherwise."""

MERGING = {"cpu": (2048, 128)}
"""``(max_tokens, forward_cost)`` of merged probe forwards by device type; others: ``(DEFAULT_MAX_TOKENS, 8192)``.

On a CPU a token costs much and a forward's Python overhead little, and activations that outgrow the caches make
the elementwise work memory-bound (a 16,384-token forward of the routing benchmark's model took 20 % longer than
2,048-token ones): short runs of similar lengths win. On an accelerator a forward of a few rows is launch-bound,
so merging wins up to the token budget.
"""


class RoutingRead(Exception):
    """Raised inside a forward once every watched MoE layer has chosen its experts; ends the forward early."""


@dataclass
class GroupedRows:
    """One forward's worth of probe rows: right-padded inputs and the group of every token.

    Attributes:
        input_ids: ``LongTensor[B, S]``.
        attention_mask: ``LongTensor[B, S]``, 1 on real tokens.
        groups: ``LongTensor[B, S]``, the group (dataset) each token counts for, ``-1`` where it does not count.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    groups: torch.Tensor


Forward = Callable[[nn.Module, torch.Tensor, torch.Tensor, Callable[[], object]], object]
"""How a forward is run: ``forward(model, input_ids, attention_mask, call)`` returns what ``call()`` returns.

The default runs ``call()``; a frozen-prefix cache (:class:`moemix.models.prefix.FrozenPrefix`) replays the
frozen layers' output instead of computing them.
"""


def merge_rows(
    batches: Sequence[GroupedRows], max_tokens: int = DEFAULT_MAX_TOKENS, pad_id: int = 0, forward_cost: int = 0
) -> list[GroupedRows]:
    """Merge the rows of several batches into right-padded batches that waste the least work.

    Rows are sorted by length (longest first, ties in their given order) and cut into consecutive runs that
    minimise the padded tokens (rows x longest row, summed) plus ``forward_cost`` per forward, each run at most
    ``max_tokens`` padded tokens; the order of rows does not change per-group counts. The result depends only on
    the inputs, so the same probe batches give the same merged batches at every update (which a frozen-prefix
    cache relies on).

    Args:
        batches: Right-padded batches with their token groups.
        max_tokens: Most rows x padded length per merged batch (a longer row gets a batch of its own).
        pad_id: Token id written into padding positions (never attended to, never counted).
        forward_cost: What one more forward costs, in padded tokens (its fixed overhead: Python, kernel
            launches); 0 cuts wherever a shorter row starts, a large value merges up to ``max_tokens``.

    Returns:
        The merged batches, each trimmed to its longest row.
    """
    rows = []
    for batch in batches:
        lengths = batch.attention_mask.sum(dim=1).tolist()
        for r, length in enumerate(lengths):
            if length > 0:  # an empty row routes nothing
                rows.append((int(length), batch, r))
    # Stable sort: equal lengths keep the order they were given in, so the plan is deterministic.
    rows.sort(key=lambda item: -item[0])
    merged: list[GroupedRows] = []
    for start, stop in _cuts(np.array([length for length, _, _ in rows], dtype=np.int64), max_tokens, forward_cost):
        chunk = rows[start:stop]
        longest = chunk[0][0]
        input_ids = torch.full((len(chunk), longest), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(chunk), longest), dtype=torch.long)
        groups = torch.full((len(chunk), longest), -1, dtype=torch.long)
        for i, (length, batch, r) in enumerate(chunk):
            input_ids[i, :length] = batch.input_ids[r, :length]
            attention_mask[i, :length] = batch.attention_mask[r, :length]
            groups[i, :length] = batch.groups[r, :length]
        merged.append(GroupedRows(input_ids, attention_mask, groups))
    return merged


def _cuts(lengths: np.ndarray, max_tokens: int, forward_cost: int) -> list[tuple[int, int]]:
    # Lengths sorted longest first: a run [i, j) costs (j - i) * lengths[i] + forward_cost. Dynamic programming
    # over where the last run starts; one vector operation per row keeps it fast for thousands of rows.
    n = len(lengths)
    best = np.zeros(n + 1)
    start_of = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        i = np.arange(j)
        cost = best[:j] + (j - i) * lengths[:j] + forward_cost
        allowed = ((j - i) * lengths[:j] <= max_tokens) | (i == j - 1)
        cost[~allowed] = np.inf
        k = int(np.argmin(cost))
        best[j], start_of[j] = cost[k], k
    cuts, j = [], n
    while j > 0:
        cuts.append((int(start_of[j]), j))
        j = int(start_of[j])
    return cuts[::-1]


def check_right_padded(attention_mask: torch.Tensor) -> None:
    """Raise unless every row's real tokens come first (what :func:`merge_rows` keeps).

    Raises:
        RoutingError: If a row has a real token after a padding position.
    """
    mask = attention_mask.bool()
    lengths = mask.sum(dim=1, keepdim=True)
    expected = torch.arange(mask.shape[1]).unsqueeze(0) < lengths
    if not torch.equal(mask, expected):
        raise RoutingError("probe batches must be right-padded (real tokens first in every row)")


def grouped_counts(
    model: nn.Module,
    batches: Sequence[GroupedRows],
    num_groups: int,
    layers: LayerSpec = "last",
    router_module: str | None = None,
    max_tokens: int | None = None,
    forward: Forward | None = None,
    plans: dict | None = None,
) -> torch.Tensor:
    """Expert counts per group of tokens over probe batches, in as few and as short forwards as possible.

    Equal to summing :func:`moemix.routing.count_by_group` over one full forward per batch: the same tokens, the
    same choices (for models whose real tokens never read padding positions; tested on many architectures). The
    model runs in eval mode (no router jitter, no dropout) under ``torch.inference_mode``; the train/eval mode of
    every module is restored afterwards. Models read through ``output_router_logits`` run whole (the logits come
    at the end).

    Args:
        model: A Hugging Face MoE causal LM, bare or wrapped.
        batches: Right-padded batches with the group of every token (``-1``: not counted).
        num_groups: Number of groups (rows of the result).
        layers: MoE layers to read, as in :func:`moemix.routing.expert_counts`; counts are concatenated in order.
        router_module: Router path pattern for models whose routers are not found by structure.
        max_tokens: Most rows x padded length per merged forward; None: by device type (:data:`MERGING`).
        forward: How to run each forward (see :data:`Forward`); None runs the model.
        plans: Where to keep the merged forwards of these batches for the next call with the same batches (a
            probe runs the same batches at every update); None merges them at every call.

    Returns:
        ``LongTensor[num_groups, sum of the layers' num_experts]`` on the model's device; no host synchronisation.

    Raises:
        RoutingError: If a chosen layer cannot be read or did not run in a forward.
    """
    device = _device(model)
    pad_id = getattr(getattr(model, "config", None), "pad_token_id", None) or 0
    budget, cost = MERGING.get(device.type, (DEFAULT_MAX_TOKENS, 8192))
    plan = (max_tokens or budget, pad_id if isinstance(pad_id, int) else 0, cost)
    merged = None if plans is None else plans.get(plan)
    if merged is None:
        for batch in batches:
            check_right_padded(batch.attention_mask)
        merged = merge_rows(batches, *plan)
        if plans is not None:
            plans[plan] = merged
    run = forward or (lambda model, input_ids, attention_mask, call: call())
    try:
        moe_layers = select_moe_layers(model, layers, router_module)
    except RoutersNotFoundError:
        if router_module is not None or not supports_router_logits(model):
            raise
        moe_layers = None
    stop = can_stop_early(model)  # a scan of every module and parameter: once per call
    with _in_eval(model), _without_grad(stop):
        if moe_layers is None:
            return _counts_from_logits(model, merged, num_groups, layers, device)
        with _attached(moe_layers) as captures, _stop_when_read(captures, stop=stop):
            totals = [torch.zeros(num_groups, c.layer.num_experts, dtype=torch.long, device=device) for c in captures]
            kwargs = _forward_kwargs(model)
            causal = needs_no_padding_mask(model)
            for rows in merged:
                input_ids, attention_mask = rows.input_ids.to(device), rows.attention_mask.to(device)
                groups = rows.groups.to(device)

                def call(input_ids=input_ids, attention_mask=attention_mask, groups=groups) -> list[torch.Tensor]:
                    try:
                        model(input_ids=input_ids, attention_mask=None if causal else attention_mask, **kwargs)
                    except RoutingRead:
                        pass
                    # Counts, not indices: what a replay must reproduce is the counted tokens' choices.
                    return [count_by_group(_one_call(c), groups, num_groups, c.layer.num_experts) for c in captures]

                for total, counts in zip(totals, run(model, rows.input_ids, rows.attention_mask, call)):
                    total += counts
    return torch.cat(totals, dim=1)


def needs_no_padding_mask(model: nn.Module) -> bool:
    """Whether right-padded probe rows can run without their padding mask: the model is a Transformers causal LM.

    Under causal attention a real token reads only the tokens before it, and right padding comes after every real
    token, so no real token ever reads a padding position: the padding mask changes only the hidden states of
    padding, which the probe never counts. Without it the attention takes its plain causal path (no mask built,
    none read), which on a CPU is a few percent of a probe. Models of remote code keep their mask: their attention
    may not be causal by default.

    Args:
        model: The model, bare or wrapped.

    Returns:
        True for the causal LMs of the ``transformers`` package.
    """
    bare = unwrap_model(model)
    return type(bare).__module__.startswith("transformers.models.") and type(bare).__name__.endswith("ForCausalLM")


def without_grad(model: nn.Module) -> contextlib.AbstractContextManager:
    """``torch.inference_mode()`` for a forward that needs no gradient, ``torch.no_grad()`` for sharded models.

    Sharded parameters (DeepSpeed ZeRO-3, FSDP) are gathered into tensors that the next training step reuses;
    gathered under inference mode they become inference tensors, which autograd refuses to save for backward.

    Args:
        model: The model, bare or wrapped.

    Returns:
        The context manager to run the forward under.
    """
    return _without_grad(can_stop_early(model))


def _without_grad(stoppable: bool) -> contextlib.AbstractContextManager:
    # Models whose forwards can be stopped early are the unsharded ones (see can_stop_early).
    return torch.inference_mode() if stoppable else torch.no_grad()


def can_stop_early(model: nn.Module) -> bool:
    """Whether a forward of this model may be ended by an exception without harm.

    Sharded parameters (DeepSpeed ZeRO-3, FSDP) are gathered and released by hooks around each module's
    forward; ending a forward in the middle would leave them gathered or the prefetch order broken. Those
    models run their probe forwards whole.

    Args:
        model: The model, bare or wrapped.

    Returns:
        False if any parameter is sharded or any module is an FSDP wrapper.
    """
    for module in model.modules():
        if "FullyShardedDataParallel" in type(module).__name__ or type(module).__name__.startswith("FSDP"):
            return False
    for parameter in model.parameters():
        if hasattr(parameter, "ds_id") or type(parameter).__name__ in ("DTensor", "FlatParameter"):
            return False
    return True


@contextmanager
def _stop_when_read(captures: list[RoutingCapture], stop: bool) -> Iterator[None]:
    if not stop:
        yield
        return

    def check(*_args) -> None:
        if all(capture.indices for capture in captures):
            raise RoutingRead

    with ExitStack() as stack:
        for capture in captures:
            moe = capture.layer
            # Registered after the capture hook of the same module, so it runs after the indices are recorded.
            if moe.experts is not None:
                handle = moe.experts.register_forward_pre_hook(lambda module, args, kwargs: check(), with_kwargs=True)
            else:
                handle = moe.router.register_forward_hook(lambda module, args, output: check())
            stack.callback(handle.remove)
        yield


def _one_call(capture: RoutingCapture) -> torch.Tensor:
    indices = capture.take()
    if not indices:
        raise RoutingError(
            f"MoE layer {capture.layer.name!r} did not run in a probe forward (a fused kernel, e.g. use_kernels=True, "
            f"may bypass its experts module)"
        )
    if len(indices) > 1:
        raise RoutingError(f"MoE layer {capture.layer.name!r} ran {len(indices)} times in one forward, expected once")
    return indices[0]


def _counts_from_logits(
    model: nn.Module, merged: list[GroupedRows], num_groups: int, layers: LayerSpec, device: torch.device
) -> torch.Tensor:
    totals: list[torch.Tensor] | None = None
    for rows in merged:
        choices = logits_choices(model, rows.input_ids.to(device), rows.attention_mask.to(device), layers)
        if totals is None:
            totals = [torch.zeros(num_groups, e, dtype=torch.long, device=device) for _, e in choices]
        for total, (indices, experts) in zip(totals, choices):
            count_by_group(indices, rows.groups, num_groups, experts, out=total)
    if totals is None:
        raise RoutingError("no probe rows to count")
    return torch.cat(totals, dim=1)


def _forward_kwargs(model: nn.Module) -> dict[str, object]:
    # A probe needs no key/value cache; Hugging Face models build one in eval mode unless told not to.
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {"use_cache": False} if "use_cache" in parameters else {}


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextmanager
def _in_eval(model: nn.Module) -> Iterator[None]:
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def rows_of(
    batch: Mapping[str, torch.Tensor], group: int | torch.Tensor, count_mask: torch.Tensor | None = None
) -> GroupedRows:
    """A probe batch as :class:`GroupedRows` whose counted tokens belong to ``group``.

    Args:
        batch: ``input_ids`` and ``attention_mask`` (right-padded), on the CPU.
        group: The group (dataset) of every counted token, or a ``[B]`` tensor: the group of each row's tokens
            (one group per example, to count each example apart).
        count_mask: ``[B, S]``, nonzero where a token counts; default the attention mask.

    Returns:
        The rows, with ``-1`` as the group of tokens that do not count.
    """
    mask = batch["attention_mask"]
    counted = mask if count_mask is None else count_mask
    per_row = torch.as_tensor(group, dtype=torch.long).reshape(-1, 1)
    groups = per_row.expand(mask.shape).clone().masked_fill(counted.cpu() == 0, -1)
    return GroupedRows(batch["input_ids"].cpu(), mask.cpu(), groups)
