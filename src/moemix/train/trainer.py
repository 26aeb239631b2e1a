"""Hugging Face Trainer whose optimizer steps are fed by the mixture, resolved when each step starts."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from transformers import PreTrainedModel, Trainer
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from moemix.data.feed import MixtureFeed
from moemix.train.online import OnlineExpertCounts
from moemix.train.scalars import PendingScalars
from moemix.train.window_loss import WindowLoss


def ticket_count(args, total_examples: int) -> int:
    """How many tickets pace the Trainer's loop: ``max_steps`` optimizer steps' worth, or one pass of the data.

    Tickets only pace the loop (an "epoch" is one pass's worth of draws); the feed picks the data.

    Args:
        args: The run's ``TrainingArguments``.
        total_examples: Rows of all the training datasets together.
    """
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    return args.max_steps * per_step if args.max_steps > 0 else int(total_examples)


class MixtureTraining:
    """What a ``transformers.Trainer`` subclass needs to train on a :class:`MixtureFeed`; mix it in before the
    Trainer class (``class T(MixtureTraining, SomeTrainer)``) and call :meth:`attach_mixture` after its
    ``__init__``.

    The DataLoader yields tickets (see :mod:`moemix.data.feed`); ``get_batch_samples``, which the Trainer calls
    once at the start of every optimizer step, swaps them for this rank's real micro-batches, drawn with the
    weights in effect for that step. Batches carry ``dataset_ids`` (one per example) and ``token_dataset_ids``
    (one per token); they are taken out before the model's forward and used to count the tokens each dataset
    contributed (kept on the device: no host synchronisation per step), the routing of the forward and the
    per-dataset training loss.
    """

    def attach_mixture(
        self,
        feed: MixtureFeed,
        num_datasets: int,
        online_counts: OnlineExpertCounts | None = None,
        window_loss: WindowLoss | None = None,
        scalars: PendingScalars | None = None,
    ) -> None:
        """Give the trainer its feed and the signals its training steps fill.

        Args:
            feed: The mixture feed that turns each optimizer step into this rank's micro-batches.
            num_datasets: Number of datasets of the mixture.
            online_counts: Counts the routing of the training forwards (``mixing.source: online``); None: not
                counted.
            window_loss: Sums the training loss per dataset (policies that read it); None: not summed.
            scalars: Where the mixing callback leaves its update's scalars; they go out with the next log.
        """
        self.feed = feed
        self.tokens_seen = torch.zeros(num_datasets, dtype=torch.long, device=self.args.device)
        self.online_counts = online_counts
        self.window_loss = window_loss
        self.mixture_scalars = scalars if scalars is not None else PendingScalars()
        self._carried_loss = (0.0, 0)  # (loss sum, steps) of the run before a resume

    def carry_train_loss(self, loss_sum: float, steps: int) -> None:
        """Continue from a checkpoint: the sum of the training loss over its first ``steps`` optimizer steps."""
        self._carried_loss = (float(loss_sum), int(steps))

    def train_loss_sum(self) -> float:
        """The sum of the training loss over every optimizer step so far, steps before a resume included."""
        # The Trainer's own accumulators (transformers 5): logged steps are drained into _total_loss_scalar,
        # the others wait in the _tr_loss tensor. Read only when a checkpoint is written.
        pending = getattr(self, "_tr_loss", None)
        running = getattr(self, "_total_loss_scalar", 0.0) + (0.0 if pending is None else float(pending))
        return self._carried_loss[0] + running

    def mean_train_loss(self, training_loss: float) -> float:
        """The mean training loss of the whole run from ``train()``'s, which covers only the steps it ran."""
        carried, steps = self._carried_loss
        if steps == 0:
            return training_loss
        ran = self.state.global_step - steps
        return (carried + training_loss * ran) / max(self.state.global_step, 1)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        # transformers saves MoE experts in their original per-expert layout (save_original_format) but
        # Trainer's resume loads the file into the model's fused layout as is: the experts silently keep
        # their initial values (seen with transformers 5.6 and 5.24). Load through from_pretrained, which
        # converts the layout, then copy strictly.
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
        if token_dataset_ids is not None and model.training:  # every token names its dataset (-1: padding)
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
        # The per-dataset loss is read from the forward's own outputs, caught on their way out of the model: a
        # Trainer asked for its outputs may run another forward for them (TRL's fused LM head does).
        caught: list = []
        hook = model.register_forward_hook(lambda module, args, output: caught.append(output)) if track_loss else None
        try:
            with counting:
                result = super().compute_loss(
                    model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
                )
        finally:
            if hook is not None:
                hook.remove()
        if track_loss and caught:
            self.window_loss.add_outputs(caught[0], inputs["labels"], loss_ids)
        return result

    def log(self, logs, *args, **kwargs):
        # Mixture scalars of the last update ride along with the Trainer's own logs (TensorBoard, W&B, ...).
        if self.mixture_scalars:
            logs = {**logs, **self.mixture_scalars.take()}
        return super().log(logs, *args, **kwargs)


class MixtureTrainer(MixtureTraining, Trainer):
    """A ``Trainer`` whose training batches come from a :class:`MixtureFeed` (see :class:`MixtureTraining`).

    Args:
        feed: The mixture feed that turns each optimizer step into this rank's micro-batches.
        num_datasets: Number of datasets of the mixture.
        online_counts: Counts the routing of the training forwards (``mixing.source: online``); None: not counted.
        window_loss: Sums the training loss per dataset (policies that read it); None: not summed.
        scalars: Where the mixing callback leaves its update's scalars; they go out with the next log.
        *args, **kwargs: What ``transformers.Trainer`` takes.
    """

    def __init__(
        self,
        *args,
        feed: MixtureFeed,
        num_datasets: int,
        online_counts: OnlineExpertCounts | None = None,
        window_loss: WindowLoss | None = None,
        scalars: PendingScalars | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.attach_mixture(feed, num_datasets, online_counts, window_loss, scalars)

    def _get_train_sampler(self, train_dataset=None):
        return torch.utils.data.SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)
