"""Hugging Face Trainer whose optimizer steps are fed by the mixture, resolved when each step starts."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from transformers import PreTrainedModel, Trainer
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from moemix.data.feed import MixtureFeed
from moemix.train.online import OnlineExpertCounts
from moemix.train.window_loss import WindowLoss


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
        self.online_counts: OnlineExpertCounts | None = None  # set when mixing.source is online
        self.window_loss: WindowLoss | None = None  # set when the policy reads per-dataset training loss
        self.mixture_scalars: dict[str, float] = {}  # filled by the mixing callback at each update

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        # transformers saves MoE experts in their original per-expert layout (save_original_format) but
        # Trainer's resume loads the file into the model's fused layout as is: the experts silently keep
        # their initial values. Load through from_pretrained, which converts the layout, then copy strictly.
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        folder = Path(resume_from_checkpoint)
        plain = isinstance(target, PreTrainedModel) and not (self.is_deepspeed_enabled or self.is_fsdp_enabled)
        has_weights = (folder / SAFE_WEIGHTS_NAME).is_file() or (folder / SAFE_WEIGHTS_INDEX_NAME).is_file()
        if not (plain and has_weights):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(target.parameters()).dtype
        loaded = type(target).from_pretrained(folder, config=target.config, dtype=dtype, device_map="cpu")
        target.load_state_dict(loaded.state_dict(), strict=True)
        del loaded

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
        token_dataset_ids = inputs.pop("token_dataset_ids", None)
        if token_dataset_ids is not None and model.training:  # packed rows: every token names its dataset
            real = token_dataset_ids[token_dataset_ids >= 0].to(self.tokens_seen.device)
            self.tokens_seen.index_add_(0, real, torch.ones_like(real))
        elif dataset_ids is not None and model.training:
            tokens = inputs["attention_mask"].sum(dim=1)
            self.tokens_seen.index_add_(0, dataset_ids.to(self.tokens_seen.device), tokens.to(self.tokens_seen.device))
        loss_ids = token_dataset_ids if token_dataset_ids is not None else dataset_ids
        track_loss = self.window_loss is not None and model.training and loss_ids is not None
        # The routing of this very forward is the online gate-load signal: no extra forward pass.
        counting = (
            self.online_counts.counting(inputs, dataset_ids, token_dataset_ids)
            if self.online_counts is not None and model.training
            else contextlib.nullcontext()
        )
        with counting:
            result = super().compute_loss(
                model, inputs, return_outputs=return_outputs or track_loss, num_items_in_batch=num_items_in_batch
            )
        if not track_loss:
            return result
        loss, outputs = result
        self.window_loss.add(outputs.logits.detach(), inputs["labels"], loss_ids)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        # Mixture scalars of the last update ride along with the Trainer's own logs (TensorBoard, W&B, ...).
        if self.mixture_scalars:
            logs = {**logs, **self.mixture_scalars}
            self.mixture_scalars.clear()  # the mixing callback holds the same dict
        return super().log(logs, *args, **kwargs)
