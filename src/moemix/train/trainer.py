"""Hugging Face Trainer that draws its training batches from the mixture sampler."""

from __future__ import annotations

import torch
from transformers import Trainer

from moemix.data.sampler import MixtureSampler


class MixtureTrainer(Trainer):
    """A ``Trainer`` whose training sampler is a :class:`MixtureSampler`.

    Batches carry ``dataset_ids`` (one per example); they are taken out before the model's forward and used
    to count the tokens each dataset contributed (kept on the device: no host synchronisation per step).
    """

    def __init__(self, *args, mixture_sampler: MixtureSampler, num_datasets: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.mixture_sampler = mixture_sampler
        self.tokens_seen = torch.zeros(num_datasets, dtype=torch.long, device=self.args.device)

    def _get_train_sampler(self, train_dataset=None):
        return self.mixture_sampler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        dataset_ids = inputs.pop("dataset_ids", None)
        if dataset_ids is not None and model.training:
            tokens = inputs["attention_mask"].sum(dim=1)
            self.tokens_seen.index_add_(0, dataset_ids.to(self.tokens_seen.device), tokens.to(self.tokens_seen.device))
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
