"""Tokens trained on per dataset, over all ranks: kept for checkpoints and metrics, and the token budget."""

from __future__ import annotations

import numpy as np
import torch
from transformers import TrainerCallback

from moemix.train.distributed import all_reduce_sum, rank_and_world


class TokenTotals(TrainerCallback):
    """Sums the trainer's per-rank ``tokens_seen`` over ranks when a checkpoint is due and, with a budget,
    at every step end; stops training once the total reaches ``budget``.

    Every rank runs ``on_step_end`` and reaches the same decision (the sum is the same everywhere), so all
    ranks stop on the same step. ``totals`` holds the last sum, which the checkpoint's mixture state saves.
    """

    def __init__(self, trainer, budget: int | None = None):
        self.trainer = trainer
        self.budget = budget
        self.totals = np.zeros(len(trainer.tokens_seen), dtype=np.int64)

    def sum_over_ranks(self) -> np.ndarray:
        """This rank's counts summed with every other rank's (a collective: call it on every rank)."""
        self.totals = all_reduce_sum(self.trainer.tokens_seen.cpu().numpy().astype(np.int64))
        return self.totals

    def restore(self, totals: list[int]) -> None:
        """Continue from a checkpoint's totals: rank 0 carries them, so that sums over ranks stay right."""
        values = torch.tensor(totals, dtype=torch.long)
        if rank_and_world()[0] != 0:
            values.zero_()
        self.trainer.tokens_seen.copy_(values.to(self.trainer.tokens_seen.device))
        self.totals = np.asarray(totals, dtype=np.int64)

    def on_step_end(self, args, state, control, **kwargs):
        # the Trainer's flow callback has already decided whether this step saves
        if self.budget is None and not control.should_save:
            return control
        total = int(self.sum_over_ranks().sum())
        if self.budget is not None and total >= self.budget and not control.should_training_stop:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"  # as at max_steps: the last step is saved
        return control
