"""Hugging Face Trainer whose optimizer steps are fed by the mixture, resolved when each step starts."""

from __future__ import annotations

import torch
from transformers import Trainer

from moemix.data.feed import MixtureFeed


class MixtureTrainer(Trainer):
    """A ``Trainer`` whose training batches come from a :class:`MixtureFeed`.

    The DataLoader yields tickets (see :mod:`moemix.data.feed`); ``get_batch_samples``, which the Trainer calls
    once at the start of every optimizer step, swaps them for this rank's real micro-batches, drawn with the
    weights in effect for that step. Batches carry ``dataset_ids`` (one per example); they are taken out before
    the model's forward and used to count the tokens each dataset contributed (kept on the device: no host
    synchronisation per step).
    """

    def __init__(self, *args, feed: MixtureFeed, num_datasets: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.feed = feed
        self.tokens_seen = torch.zeros(num_datasets, dtype=torch.long, device=self.args.device)

    def _get_train_sampler(self, train_dataset=None):
        return torch.utils.data.SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        tickets = []
        for _ in range(num_batches):
            try:
                tickets.append(next(epoch_iterator))
            except StopIteration:
                break
        if not tickets:
            return [], None
        batches = self.feed.next_step(len(tickets))
        return batches, self._get_num_items_in_batch(batches, device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        dataset_ids = inputs.pop("dataset_ids", None)
        if dataset_ids is not None and model.training:
            tokens = inputs["attention_mask"].sum(dim=1)
            self.tokens_seen.index_add_(0, dataset_ids.to(self.tokens_seen.device), tokens.to(self.tokens_seen.device))
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
