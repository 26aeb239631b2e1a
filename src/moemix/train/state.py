"""The mixture's share of a checkpoint: what ``moemix_state.json`` holds, and how a run continues from it.

Saved beside every Hugging Face checkpoint (see :mod:`moemix.train.checkpoint`): the policy, the sampler's
position, the update history, the window in progress (online counts, smoothed loads), the tokens trained on
and the training-loss sum. Restoring is exact when the mixture is unchanged; under an allowed change only what
still means the same carries over (weights by dataset name, the history, tokens of the same datasets).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moemix.data.sampler import MixtureSampler
from moemix.mixing import from_state
from moemix.train.budget import TokenTotals
from moemix.train.callback import MixingCallback
from moemix.train.checkpoint import check_unchanged, load_state
from moemix.train.online import OnlineExpertCounts
from moemix.train.trainer import MixtureTraining

logger = logging.getLogger(__name__)


@dataclass
class MixtureState:
    """The parts of a run whose state a checkpoint carries.

    Args:
        names: Dataset names, in sampler order.
        fingerprint: What must not change on resume (see :func:`moemix.train.checkpoint.fingerprint`).
        sampler: The training sampler.
        callback: The mixing callback (policy, update history, window loads).
        tokens: Tokens trained on per dataset, summed over ranks (None: not carried).
        online_counts: The online gate-load counts of the window in progress, if ``mixing.source`` is online.
        trainer: The trainer, for the training-loss sum (None: not carried).
    """

    names: list[str]
    fingerprint: dict[str, Any]
    sampler: MixtureSampler
    callback: MixingCallback
    tokens: TokenTotals | None = None
    online_counts: OnlineExpertCounts | None = None
    trainer: MixtureTraining | None = None

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the mixture exactly: policy, sampler position, history, ..."""
        return {
            "names": self.names,
            "fingerprint": self.fingerprint,
            "policy": self.callback.policy.state_dict(),
            "sampler": self.sampler.state_dict(),
            "history": self.callback.history,
            # the window in progress: online counts since the last update, and the loads EMA / carried loads
            "window_loads": self.callback.window.state_dict(),
            "online_counts": None if self.online_counts is None else self.online_counts.state_dict(),
            # tokens trained on per dataset, all ranks (summed when the checkpoint was due)
            "tokens_seen": None if self.tokens is None else self.tokens.totals.tolist(),
            # so that a resumed run's train_loss averages every step, not only those after the resume
            "train_loss_sum": None if self.trainer is None else self.trainer.train_loss_sum(),
        }

    def restore(self, checkpoint: Path, allow_change: bool = False) -> dict[str, Any]:
        """Continue from a checkpoint's mixture state.

        Args:
            checkpoint: A complete ``checkpoint-N`` folder.
            allow_change: Resume even if the mixture (datasets, seed, mixing config) changed since.

        Returns:
            The checkpoint's state, as read.

        Raises:
            MoemixError: If the mixture changed and ``allow_change`` is false.
        """
        return self.load_state_dict(load_state(checkpoint), allow_change, source=str(checkpoint))

    def load_state_dict(
        self, state: dict[str, Any], allow_change: bool = False, source: str = "mixture state"
    ) -> dict[str, Any]:
        """Continue from what :meth:`state_dict` returned (``step`` added, as a checkpoint holds it).

        Args:
            state: The saved state.
            allow_change: Resume even if the mixture (datasets, seed, mixing config) changed since.
            source: Where the state comes from, for messages.

        Returns:
            ``state``.

        Raises:
            MoemixError: If the mixture changed and ``allow_change`` is false.
        """
        changed = check_unchanged(source, state, self.fingerprint, allow_change)
        same_names = state["names"] == self.names
        if same_names and state["sampler"]["sizes"] == self.sampler.sizes:
            self.sampler.load_state_dict(dict(state["sampler"], seed=self.sampler.seed))
        else:  # datasets changed (allowed): carry weights over by name, new datasets get the mean weight
            old = dict(zip(state["names"], state["sampler"]["weights"]))
            mean = sum(old.values()) / len(old)
            carried = np.array([old.get(name, mean) for name in self.names])
            self.sampler.set_weights(carried / carried.sum())
        self.callback.history = list(state["history"])
        if self.tokens is not None and same_names and state.get("tokens_seen") is not None:
            self.tokens.restore(state["tokens_seen"])
        if self.trainer is not None and state.get("train_loss_sum") is not None:
            self.trainer.carry_train_loss(state["train_loss_sum"], state["step"])
        if changed:  # the policy and its window start afresh under the changed mixture
            logger.warning("resuming %s with a changed mixture: %s", source, "; ".join(changed))
            return state
        self.callback.policy = from_state(state["policy"])
        if state.get("window_loads") is not None:
            self.callback.window.load_state_dict(state["window_loads"])
        if state.get("online_counts") is not None and self.online_counts is not None:
            self.online_counts.load_state_dict(state["online_counts"])
        return state
