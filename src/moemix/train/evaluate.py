"""Per-dataset dev loss: the token-weighted mean next-token loss over each dataset's dev batches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

from moemix.data.render import IGNORE_INDEX


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
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for batch in batches:
            labels = batch["labels"].to(device)
            logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
            losses, valid = token_losses(logits, labels)
            total += losses.sum().item()
            count += int(valid.sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def dev_losses(model: torch.nn.Module, batches_by_name: Mapping[str, list]) -> dict[str, float]:
    """``{name: dev loss}`` for every dataset."""
    return {name: dev_loss(model, batches) for name, batches in batches_by_name.items()}
