"""Hidden states of fixed batches at the first trained layer, computed once and replayed at every evaluation.

With ``model.trainable_layers`` set, every decoder layer below the trained ones is frozen, and the probe and
dev-loss batches are the same at every mixture update: what those layers make of them never changes. The first
forward of a batch records the output of the last frozen layer, row by row (real tokens only); a later forward of
a batch whose rows are all recorded, in that batch or in others, still runs the model's own top (embeddings,
rotary position embeddings, its attention-mask creation) but the frozen layers return the recorded rows instead
of computing them (zeros at padding positions, which no real token reads under right padding and causal
attention), so only the trained layers (and what follows them) run.

Safety, since a replay that is wrong would be silently wrong:

- only a model whose every trainable parameter lies in the trained decoder layers has a frozen prefix;
- a parameter outside the trained layers that changes (its tensor is replaced, or written in place, e.g. a
  checkpoint loaded into it, which bumps its version counter) empties the cache;
- the first recording of each kind of reading (probe counts, dev losses) is checked against a replay of the same
  batch; a mismatch turns the cache off for good, with a warning, and the plain forward is used (this catches
  models whose real tokens read padding positions, e.g. tiny sparse-indexer attention configs);
- rows are keyed by their tokens (a row recorded in one batch is replayed in any other, e.g. a probe row first seen
  in the dev-loss batches), and memory is bounded (``max_bytes``; rows past it are not kept, and a batch with a
  row not kept runs whole);
- sharded models (DeepSpeed ZeRO-3, FSDP) are left alone: their hooks gather each layer's weights as it runs,
  and layers that do not run would upset that order.

Replays are meant for forwards that need no gradient (probes, dev loss), under ``torch.inference_mode``.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from moemix.routing.probe import can_stop_early

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3
"""Most bytes of recorded hidden states kept, unless told otherwise."""


@dataclass
class _Row:
    parts: list[torch.Tensor]  # one [length, ...] slice per [batch, seq, ...] tensor of the layer's output
    nbytes: int


class FrozenPrefix:
    """Records and replays the output of a model's frozen lower decoder layers on fixed batches.

    Args:
        model: The model whose probes and evaluations will run through :meth:`run` (bare, not wrapped by DDP).
        max_bytes: Most bytes of recorded outputs to keep; a batch that does not fit runs whole every time.

    Attributes:
        start: Index of the first decoder layer that trains (the layers below it are replayed); None when the
            model has no frozen prefix to replay (everything trains, or a trainable parameter lies outside the
            decoder layers, or the decoder layers cannot be found, or the weights are sharded).
        disabled: Why replay was turned off after a failed check, or None.
    """

    def __init__(self, model: nn.Module, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._model = weakref.ref(model)
        self._layers = _decoder_layers(model)
        # Sharded weights are gathered by hooks as each layer runs; skipping layers would upset that order.
        self.start = _first_trained(model, self._layers) if can_stop_early(model) else None
        self.disabled: str | None = None
        self._rows: dict[tuple, _Row] = {}
        self._template: Any = None  # the layer output's structure, its [batch, seq, ...] tensors left out
        self._bytes = 0
        self._verified: set[str] = set()
        self._signature: tuple | None = None
        self._skipped_ids: set[int] = set()
        if self.start is not None:
            for layer in list(self._layers)[: self.start]:
                self._skipped_ids.update(id(m) for m in layer.modules())

    @property
    def active(self) -> bool:
        """Whether forwards through :meth:`run` replay the frozen layers."""
        return self.start is not None and self.disabled is None and self._model() is not None

    @property
    def nbytes(self) -> int:
        """Bytes of recorded outputs held now."""
        return self._bytes

    def skips(self, module: nn.Module) -> bool:
        """Whether ``module`` lies in a frozen layer that a replay does not run (its hooks would not fire)."""
        return self.active and id(module) in self._skipped_ids

    def batches(self, batches: Iterable) -> PrefixedBatches:
        """The batches as a list that tells :func:`moemix.train.evaluate.dev_loss` and the probe to use this cache."""
        return PrefixedBatches(batches, self)

    def clear(self) -> None:
        """Forget every recorded output."""
        self._rows.clear()
        self._bytes = 0

    def run(
        self,
        model: nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        call: Callable[[], Any],
        kind: str = "forward",
    ):
        """Run ``call()``, a forward of ``model`` on this batch, replaying the frozen layers when it can.

        Args:
            model: The model ``call`` runs; anything but the model this cache was made for runs plainly.
            input_ids: The batch's ``LongTensor[B, S]`` (its content is the key).
            attention_mask: Its ``[B, S]`` mask, or None.
            call: Runs the forward and returns what it reads (tensors, or lists/tuples of them).
            kind: What ``call`` reads (``"probe"``, ``"dev_loss"``): the first recording of each kind is checked
                against a replay, since one reading may be blind to a difference that another sees.

        Returns:
            What ``call()`` returns.
        """
        if not self.active or model is not self._model():
            return call()
        signature = self._parameter_signature(model)
        if signature != self._signature:
            self.clear()  # a frozen weight changed (or this is the first call): nothing recorded is valid
            self._signature = signature
        lengths = _row_lengths(input_ids, attention_mask)
        if lengths is None:
            return call()  # not right-padded: a row's hidden states would depend on its padding
        keys = [_key(input_ids[r, :n]) for r, n in enumerate(lengths)]
        rows = [self._rows.get(key) for key in keys]
        if kind in self._verified and self._template is not None and all(row is not None for row in rows):
            return self._replayed(self._assembled(rows, input_ids.shape), call)
        result, output = self._recorded(call)
        if output is None:
            return result  # the forward ended before the last frozen layer (a probe of a frozen MoE layer)
        template, parts = _split(output, input_ids.shape, lengths)
        if template is None:
            return result  # an output this cache cannot cut into rows: the batch runs whole every time
        self._template = template
        fresh = [(key, _Row(row, sum(_nbytes(t) for t in row))) for key, row in zip(keys, parts)]
        if kind not in self._verified:
            try:
                replayed = self._replayed(self._assembled([row for _, row in fresh], input_ids.shape), call)
                same = _same(result, replayed)
            except Exception as err:  # noqa: BLE001 - any failure of a replay means: do not replay this model
                same, replayed = False, err
            if not same:
                self.disabled = (
                    f"replaying the output of the frozen layers of {type(model).__name__} did not reproduce the "
                    f"plain forward ({_describe_difference(result, replayed)}); its probes and dev losses run whole"
                )
                logger.warning("%s", self.disabled)
                self.clear()
                return result
            self._verified.add(kind)
        for key, row in fresh:
            if key not in self._rows and self._bytes + row.nbytes <= self.max_bytes:
                self._rows[key] = row
                self._bytes += row.nbytes
        return result

    def _assembled(self, rows: list[_Row], shape: torch.Size) -> Any:
        # Padding positions get zeros: with right padding and causal attention no real token reads them, and they
        # neither count nor carry a label.
        leaves = []
        for i, first in enumerate(rows[0].parts):
            full = first.new_zeros((shape[0], shape[1], *first.shape[1:]))
            for r, row in enumerate(rows):
                full[r, : row.parts[i].shape[0]] = row.parts[i]
            leaves.append(full)
        return _filled(self._template, iter(leaves))

    def _recorded(self, call: Callable[[], Any]) -> tuple[Any, Any]:
        seen: list[Any] = []

        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            seen.append(_detached(output))

        handle = self._layers[self.start - 1].register_forward_hook(hook)
        try:
            result = call()
        finally:
            handle.remove()
        return result, (seen[0] if len(seen) == 1 else None)

    def _replayed(self, output: Any, call: Callable[[], Any]) -> Any:
        layers = list(self._layers)[: self.start]
        saved = [layer.__dict__.get("forward") for layer in layers]
        last = len(layers) - 1
        for i, layer in enumerate(layers):
            # The last frozen layer hands a copy to the trained ones (a layer may write its input in place);
            # the others' outputs only feed the next skipped layer.
            layer.forward = _returning(output, copy=i == last)
        try:
            return call()
        finally:
            for layer, forward in zip(layers, saved):
                if forward is None:
                    del layer.forward
                else:
                    layer.forward = forward

    def _parameter_signature(self, model: nn.Module) -> tuple:
        trained = {id(p) for layer in list(self._layers)[self.start :] for p in layer.parameters()}
        return tuple((id(p), p._version) for p in model.parameters() if id(p) not in trained)


class PrefixedBatches(list):
    """A list of fixed batches whose forwards may replay a :class:`FrozenPrefix` (as its ``prefix``).

    Args:
        batches: The batches.
        prefix: The cache their probes and dev losses use.
    """

    def __init__(self, batches: Iterable, prefix: FrozenPrefix):
        super().__init__(batches)
        self.prefix = prefix


def prefix_of(batches: Any) -> FrozenPrefix | None:
    """The :class:`FrozenPrefix` that a list of batches carries, or None for plain batches."""
    prefix = getattr(batches, "prefix", None)
    return prefix if isinstance(prefix, FrozenPrefix) else None


def _returning(output: Any, copy: bool) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return _cloned(output) if copy else output

    return forward


def _decoder_layers(model: nn.Module) -> nn.ModuleList | None:
    # The ModuleList as long as config.num_hidden_layers: the decoder layers of a Hugging Face causal LM.
    config = getattr(model, "config", None)
    count = getattr(config, "num_hidden_layers", None)
    if not isinstance(count, int):
        return None
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    return None


def _first_trained(model: nn.Module, layers: nn.ModuleList | None) -> int | None:
    if layers is None:
        return None
    trained = [i for i, layer in enumerate(layers) if any(p.requires_grad for p in layer.parameters())]
    start = trained[0] if trained else len(layers)
    if start == 0:
        return None
    inside = {id(p) for layer in list(layers)[start:] for p in layer.parameters()}
    if any(p.requires_grad and id(p) not in inside for p in model.parameters()):
        return None  # something below or beside the decoder layers trains (embeddings, adapters)
    return start


def _key(tokens: torch.Tensor) -> tuple:
    cpu = tokens.detach().to("cpu", torch.long).contiguous()
    return (cpu.shape[0], hashlib.blake2b(cpu.numpy().tobytes(), digest_size=16).hexdigest())


def _row_lengths(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> list[int] | None:
    if attention_mask is None:
        return [input_ids.shape[1]] * input_ids.shape[0]
    mask = attention_mask.detach().to("cpu").bool()
    lengths = mask.sum(dim=1)
    if not torch.equal(mask, torch.arange(mask.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)):
        return None
    return lengths.tolist()


class _Slot:
    """Where a [batch, seq, ...] tensor sat in a layer's output."""


def _split(output: Any, shape: torch.Size, lengths: list[int]) -> tuple[Any, list[list[torch.Tensor]]]:
    """The output's structure with its [batch, seq, ...] tensors replaced by slots, and each row's slices.

    Returns ``(None, [])`` when a tensor of the output is not [batch, seq, ...] (nothing to cut into rows).
    """
    leaves: list[torch.Tensor] = []

    def walk(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            if value.dim() < 2 or tuple(value.shape[:2]) != tuple(shape[:2]):
                raise ValueError
            leaves.append(value)
            return _Slot()
        if isinstance(value, (tuple, list)):
            return type(value)(walk(v) for v in value)
        return value

    try:
        template = walk(output)
    except ValueError:
        return None, []
    if not leaves:
        return None, []
    return template, [[leaf[r, :n].clone() for leaf in leaves] for r, n in enumerate(lengths)]


def _filled(template: Any, leaves: Any) -> Any:
    if isinstance(template, _Slot):
        return next(leaves)
    if isinstance(template, (tuple, list)):
        return type(template)(_filled(v, leaves) for v in template)
    return template


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_detached(v) for v in value)
    return value


def _cloned(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_cloned(v) for v in value)
    return value


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 0


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point():
            return bool(torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5, equal_nan=True))
        return bool(torch.equal(a, b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and not isinstance(a, torch.Tensor)


def _describe_difference(a: Any, b: Any) -> str:
    if isinstance(b, Exception):
        return f"the replay raised {type(b).__name__}: {b}"
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and a.is_floating_point():
        return f"max abs difference {float((a.float() - b.float()).abs().max()):.3g}"
    return "different results"
