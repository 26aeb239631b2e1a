"""Per-dataset dev loss: the token-weighted mean next-token loss over each dataset's dev batches."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

from moemix.data.render import IGNORE_INDEX
from moemix.models.prefix import prefix_of
from moemix.routing.probe import without_grad


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token loss of every position, (B, S-1) float32, zero where the label is ignored; and that mask."""
    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    losses = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(shift_labels.shape)
    return losses, shift_labels != IGNORE_INDEX


@torch.no_grad()
def dev_loss(model: torch.nn.Module, batches: Iterable[Mapping[str, torch.Tensor]]) -> float:
    """Mean loss per assistant token over the batches (not a mean of batch means)."""
    # Logits only where a next-token label counts (the LM head of a large vocabulary costs several decoder layers
    # on the whole batch), one host synchronisation at the end, and the frozen layers replayed when the batches
    # carry a frozen-prefix cache (moemix.models.prefix).
    device = next(model.parameters()).device
    prefix = prefix_of(batches)
    keeps_logits = _accepts(model, "logits_to_keep")
    no_cache = {"use_cache": False} if _accepts(model, "use_cache") else {}
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.long, device=device)
    try:
        with without_grad(model):
            for batch in batches:
                labels = batch["labels"].to(device)
                targets = labels[:, 1:]
                valid = targets != IGNORE_INDEX
                if not bool(valid.any()):
                    continue
                positions = valid.any(dim=0).nonzero().squeeze(1)
                input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]

                def call(input_ids=input_ids, attention_mask=attention_mask, positions=positions, targets=targets):
                    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
                    if keeps_logits:
                        logits = model(**inputs, **no_cache, logits_to_keep=positions).logits
                    else:
                        logits = model(**inputs, **no_cache).logits[:, positions]
                    kept = targets[:, positions]
                    return F.cross_entropy(
                        logits.float().reshape(-1, logits.size(-1)),
                        kept.reshape(-1),
                        ignore_index=IGNORE_INDEX,
                        reduction="none",
                    ).view(kept.shape)

                losses = (
                    prefix.run(model, input_ids, attention_mask, call, "dev_loss") if prefix is not None else call()
                )
                total += losses.double().sum()
                count += valid.sum()
    finally:
        model.train(was_training)
    return float(total) / max(int(count), 1)


def _accepts(model: torch.nn.Module, name: str) -> bool:
    # A named parameter, not only **kwargs: a wrapper (peft, DDP) forwards everything and checks nothing.
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def dev_losses(model: torch.nn.Module, batches_by_name: Mapping[str, list]) -> dict[str, float]:
    """``{name: dev loss}`` for every dataset."""
    return {name: dev_loss(model, batches) for name, batches in batches_by_name.items()}
