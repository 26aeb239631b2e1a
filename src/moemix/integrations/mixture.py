"""The recipe's mixing parts, assembled around a Trainer that someone else built (the user, TRL, LLaMA-Factory).

The same parts as ``moemix train``'s (:mod:`moemix.train.run`): a :class:`~moemix.data.sampler.MixtureSampler`
over the tagged training rows, a :class:`~moemix.data.feed.MixtureFeed` that draws each optimizer step when it
starts, the routing signal (online counts of the training forwards, or probe batches), the
:class:`~moemix.train.callback.MixingCallback` that updates the weights and writes ``mixture.jsonl``, the
scalars that ride along with the Trainer's logs, and the mixture state written beside every checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from moemix.config import MixingConfig
from moemix.data.feed import MixtureFeed
from moemix.data.sampler import MixtureSampler
from moemix.errors import ConfigError
from moemix.files import write_json_atomic
from moemix.integrations.rows import (
    RowsByDataset,
    WithDatasetIds,
    probe_batches,
    rows_by_dataset,
)
from moemix.train.budget import TokenTotals
from moemix.train.callback import MixingCallback
from moemix.train.checkpoint import CheckpointCallback, resolve_resume, restart_log
from moemix.train.freeze import freeze_routers
from moemix.train.online import OnlineExpertCounts, check_routing
from moemix.train.policies import mixing_policy
from moemix.train.scalars import PendingScalars
from moemix.train.state import MixtureState
from moemix.train.trainer import ticket_count
from moemix.train.update_noise import online_units
from moemix.train.window_loss import WindowLoss

LOG_FILE = "mixture.jsonl"
"""One line per update, in the Trainer's ``output_dir``."""
FINAL_STATE = "mixture_state.json"
"""The mixture's state when training ends, in the Trainer's ``output_dir``."""


class _FinalState(TrainerCallback):
    def __init__(self, mixture: TrainerMixture):
        self.mixture = mixture

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_json_atomic(self.mixture.log_path.with_name(FINAL_STATE), self.mixture.final_state())
        return control


class TrainerMixture:
    """Build the mixing parts around ``trainer`` (a :class:`~moemix.train.trainer.MixtureTraining` subclass, its
    ``__init__`` done) and install them: feed, signal, callbacks.

    Args:
        trainer: The trainer; its ``train_dataset`` rows carry the dataset column
            (:func:`moemix.integrations.tag_datasets`).
        names: The datasets' names, in the order of the column's indices.
        mixing: Validated settings (:func:`moemix.integrations.mixing_settings`).
        probe: Tokenised probe rows by dataset name (for ``source: probe`` and policies that read the dev loss).

    Raises:
        ConfigError: For settings this trainer cannot run (a probe signal without probe rows, ``embedding``).
        DataError: For training rows without the dataset column, or a dataset left without rows.
        RoutingError: If the configured MoE layers cannot be read.
    """

    def __init__(self, trainer, names: list[str], mixing: MixingConfig, probe: Mapping[str, Any] | None = None):
        args = trainer.args
        n = len(names)
        self.names, self.mixing, self.trainer = names, mixing, trainer
        self.log_path = Path(args.output_dir) / LOG_FILE
        rows = rows_by_dataset(trainer.train_dataset, n, names)
        sizes = [len(r) for r in rows]
        if mixing.policy == "embedding":
            raise ConfigError("mixing.policy: embedding is available to `moemix train` only (it reads the texts)")
        tokens = sizes if mixing.datasize_by != "tokens" else _token_sizes(trainer.train_dataset, rows)
        policy = mixing_policy(mixing, names, sizes=sizes, token_sizes=tokens, seed=args.seed, max_steps=args.max_steps)
        self.sampler = MixtureSampler(sizes, policy.initial_weights(n), seed=args.seed)
        # The trainer's own collator, behind the column removal its own DataLoader would apply.
        collator = trainer._get_collator_with_removed_columns(trainer.data_collator, description="training")
        self.feed = MixtureFeed(
            self.sampler,
            RowsByDataset(trainer.train_dataset, rows),
            WithDatasetIds(collator),
            batch_size=args.per_device_train_batch_size,
            world_size=args.world_size,
            rank=args.process_index,
        )
        self.tickets = ticket_count(args, sum(sizes))
        model = trainer.model
        check_routing(model, mixing.layers, mixing.router_module)
        if mixing.freeze_router:
            freeze_routers(model, mixing.router_module)
        self.online = None
        if mixing.source == "online":
            self.online = OnlineExpertCounts(
                model, n, mixing.layers, mixing.router_module, mixing.count_prompt_tokens, units=online_units(n, policy)
            )
        batches = [[] for _ in names]
        if mixing.source == "probe" or "dev_loss" in policy.needs:
            if probe is None:
                raise ConfigError(
                    f"mixing.source: {'probe' if mixing.source == 'probe' else 'policy ' + mixing.policy} needs probe "
                    "rows of every dataset (pass probe=...), or use source online"
                )
            size = mixing.probe_batch_size or args.per_device_eval_batch_size
            batches = probe_batches(probe, names, size, mixing.probe_batches, _pad_token_id(trainer))
        window_loss = WindowLoss(n, args.device) if "train_loss" in policy.needs else None
        scalars = PendingScalars()
        self.callback = MixingCallback.from_config(
            mixing,
            names,
            policy,
            self.sampler,
            batches,
            self.log_path,
            source=self.online,
            window_loss=window_loss,
            scalars=scalars,
        )
        trainer.attach_mixture(self.feed, n, self.online, window_loss, scalars)
        self.tokens = TokenTotals(trainer)
        fingerprint = {"datasets": list(names), "seed": args.seed, "mixing": dataclasses.asdict(mixing)}
        self.state = MixtureState(names, fingerprint, self.sampler, self.callback, self.tokens, self.online, trainer)
        for callback in (
            self.callback,
            self.tokens,
            CheckpointCallback(self.state.state_dict, self.feed),
            _FinalState(self),
        ):
            trainer.add_callback(callback)

    def begin(self, resume_from_checkpoint: Any = None, allow_change: bool = False) -> str | None:
        """Before training: start ``mixture.jsonl`` afresh, or restore a checkpoint's mixture and cut the log back
        to it.

        Args:
            resume_from_checkpoint: As ``Trainer.train`` takes it: None/False, True (the newest complete
                checkpoint of ``output_dir``) or a checkpoint folder.
            allow_change: Resume although the datasets, seed or mixing settings changed.

        Returns:
            The checkpoint folder to hand to ``Trainer.train``, or None.

        Raises:
            MoemixError: If there is no complete checkpoint, or it was made with another mixture.
        """
        main = self.trainer.args.process_index == 0
        checkpoint = resolve_resume(resume_from_checkpoint, self.trainer.args.output_dir)
        step = None if checkpoint is None else self.state.restore(checkpoint, allow_change)["step"]
        if main:
            restart_log(self.log_path, step)
        return None if checkpoint is None else str(checkpoint)

    def final_state(self) -> dict[str, Any]:
        """The mixture's state as a checkpoint holds it, with the final weights and draws by name."""
        state = self.state.state_dict()
        state.pop("train_loss_sum")
        state["weights"] = {n: float(w) for n, w in zip(self.names, self.sampler.weights)}
        state["draws"] = {n: int(c) for n, c in zip(self.names, self.sampler.counts)}
        return state


def _token_sizes(dataset, rows: list[np.ndarray]) -> list[int]:
    lengths = np.array([len(ids) for ids in dataset["input_ids"]], dtype=np.int64)
    return [int(lengths[r].sum()) for r in rows]


def _pad_token_id(trainer) -> int:
    for owner in (getattr(trainer, "processing_class", None), getattr(trainer.model, "config", None)):
        value = getattr(owner, "pad_token_id", None)
        if value is not None:
            return int(value)
    return 0
