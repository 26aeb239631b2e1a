"""Per-dataset training loss over an update window, kept on the device (the ``odm`` policy's reward)."""

from __future__ import annotations

import numpy as np
import torch

from moemix.train.distributed import all_reduce_sum
from moemix.train.evaluate import token_losses


class WindowLoss:
    """Sums of next-token loss and of loss tokens per dataset since the last read.

    ``add`` runs inside the training step on detached logits (no host synchronisation); ``read`` sums over
    ranks and returns the mean loss per dataset, ``nan`` for a dataset not drawn in the window.
    """

    def __init__(self, num_datasets: int, device: torch.device):
        self.sums = torch.zeros(num_datasets, dtype=torch.float64, device=device)
        self.counts = torch.zeros(num_datasets, dtype=torch.long, device=device)

    @torch.no_grad()
    def add(self, logits: torch.Tensor, labels: torch.Tensor, dataset_ids: torch.Tensor) -> None:
        """Add a batch: ``dataset_ids`` ``[B]`` (one per row) or ``[B, S]`` (one per token, packed rows)."""
        losses, valid = token_losses(logits, labels)
        if dataset_ids.dim() == 2:  # the dataset of each predicted token (labels are shifted by one)
            ids = dataset_ids[:, 1:][valid].to(self.sums.device)
            self.sums.index_add_(0, ids, losses[valid].double().to(self.sums.device))
            self.counts.index_add_(0, ids, torch.ones_like(ids))
            return
        ids = dataset_ids.to(self.sums.device)
        self.sums.index_add_(0, ids, (losses * valid).sum(dim=1).double().to(self.sums.device))
        self.counts.index_add_(0, ids, valid.sum(dim=1).to(self.counts.device))

    def read(self) -> np.ndarray:
        """Mean loss per dataset over the window (summed over ranks), then start a new window."""
        # copies: on a CPU device .cpu().numpy() shares memory with the tensors zeroed below
        sums = all_reduce_sum(self.sums.cpu().numpy().copy())
        counts = all_reduce_sum(self.counts.cpu().numpy().copy())
        self.sums.zero_()
        self.counts.zero_()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
