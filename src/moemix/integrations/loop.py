"""Dynamic mixing in a training loop you write yourself: accelerate, plain PyTorch, Lightning."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moemix.config import MixingConfig
from moemix.data.feed import MixtureFeed
from moemix.data.mixture import MixtureCollator
from moemix.data.sampler import MixtureSampler
from moemix.errors import ConfigError
from moemix.integrations.rows import COLUMN, WithDatasetIds, probe_batches
from moemix.integrations.settings import mixing_settings
from moemix.train.callback import MixingCallback
from moemix.train.checkpoint import restart_log
from moemix.train.distributed import rank_and_world
from moemix.train.online import OnlineExpertCounts, check_routing
from moemix.train.policies import mixing_policy
from moemix.train.state import MixtureState
from moemix.train.update_noise import online_units


class _Tagged(torch.utils.data.Dataset):
    """The datasets end to end; index ``offsets[d] + i`` is row i of dataset d, with its dataset column."""

    def __init__(self, datasets: Sequence[Sequence[Mapping[str, Any]]]):
        self.datasets = list(datasets)
        self.sizes = [len(d) for d in self.datasets]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        d = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return {**self.datasets[d][int(index - self.offsets[d])], COLUMN: d}


class MixtureLoop:
    """The mixture for a custom loop: draws each optimizer step's micro-batches, counts their routing, updates the
    weights every ``interval`` steps and saves / restores its state with yours.

    Usage::

        mixture = MixtureLoop({"math": math_rows, "code": code_rows}, model, {"interval": 10}, batch_size=8)
        for step in range(steps):
            for batch in mixture.next_step(accumulation):
                with mixture.counting(batch) as inputs:
                    loss = model(**inputs).loss / accumulation
                loss.backward()
            optimizer.step(); optimizer.zero_grad()
            mixture.after_step(model)

    Args:
        datasets: Tokenised rows by name (``input_ids`` and ``labels`` each; a ``datasets.Dataset`` or a list of
            dicts), in order.
        model: The model (bare or wrapped): its MoE layers are checked and, for the online signal, hooked.
        mixing: The mixing settings: the keys of the YAML ``mixing:`` section (``source`` defaults to online).
        batch_size: Examples per micro-batch on each process.
        collator: Pads a list of rows into a batch; default: moemix's (right padding, ``pad_token_id``).
        pad_token_id: The padding token of the default collator and of the probe batches.
        seed: Seed of every draw.
        log_path: ``mixture.jsonl``, one line per update (written by process 0); None: not written.
        probe: Tokenised probe rows by name, for ``source: probe`` and policies that read the dev loss.
        max_steps: The run's optimizer steps (the ``sequential`` policy's windows).

    Attributes:
        sampler: The :class:`~moemix.data.sampler.MixtureSampler` whose weights the updates set.
        step: Optimizer steps taken (as :meth:`after_step` counted them).

    Raises:
        ConfigError: For settings the config's rules refuse or this loop cannot run (``train_loss`` policies).
    """

    def __init__(
        self,
        datasets: Mapping[str, Sequence[Mapping[str, Any]]],
        model: torch.nn.Module,
        mixing: MixingConfig | Mapping[str, Any] | None = None,
        *,
        batch_size: int,
        collator=None,
        pad_token_id: int = 0,
        seed: int = 0,
        log_path: str | Path | None = None,
        probe: Mapping[str, Any] | None = None,
        max_steps: int = 0,
    ):
        self.names = list(datasets)
        settings = mixing_settings(mixing, self.names)
        rows = _Tagged([datasets[name] for name in self.names])
        policy = mixing_policy(
            settings,
            self.names,
            sizes=rows.sizes,
            token_sizes=[sum(len(r["input_ids"]) for r in d) for d in rows.datasets]
            if settings.datasize_by == "tokens"
            else rows.sizes,
            seed=seed,
            max_steps=max_steps,
        )
        if "train_loss" in policy.needs or settings.policy == "embedding":
            raise ConfigError(f"mixing.policy: {settings.policy} is not available in a custom loop")
        self.rank, world = rank_and_world()
        self.sampler = MixtureSampler(rows.sizes, policy.initial_weights(len(self.names)), seed=seed)
        collator = collator if collator is not None else MixtureCollator(pad_token_id=pad_token_id)
        self.feed = MixtureFeed(
            self.sampler, rows, WithDatasetIds(collator), batch_size, world_size=world, rank=self.rank
        )
        check_routing(model, settings.layers, settings.router_module)
        self.online = None
        if settings.source == "online":
            self.online = OnlineExpertCounts(
                model,
                len(self.names),
                settings.layers,
                settings.router_module,
                settings.count_prompt_tokens,
                units=online_units(len(self.names), policy),
            )
        batches = [[] for _ in self.names]
        if settings.source == "probe" or "dev_loss" in policy.needs:
            if probe is None:
                raise ConfigError("mixing.source: probe needs probe rows of every dataset (pass probe=...)")
            size = settings.probe_batch_size or batch_size
            batches = probe_batches(probe, self.names, size, settings.probe_batches, pad_token_id)
        self.log_path = None if log_path is None else Path(log_path)
        self.callback = MixingCallback.from_config(
            settings,
            self.names,
            policy,
            self.sampler,
            batches,
            self.log_path or Path("mixture.jsonl"),
            source=self.online,
        )
        fingerprint = {"datasets": self.names, "seed": seed, "mixing": dataclasses.asdict(settings)}
        self.state = MixtureState(self.names, fingerprint, self.sampler, self.callback, online_counts=self.online)
        self.interval = settings.interval
        self.step = 0
        self._log_started = False  # a fresh loop starts the log at its first step; a restored one cuts it back

    def next_step(self, micro_batches: int = 1) -> list[dict[str, torch.Tensor]]:
        """This process's micro-batches of the next optimizer step, drawn now with the weights in effect.

        Every process draws the same global sequence and keeps its own slice: W processes with batch B train on
        what one process with batch W x B would.
        """
        return self.feed.next_step(micro_batches)

    @contextlib.contextmanager
    def counting(self, batch: dict[str, torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
        """Count the routing of the one training forward run inside the context; yields the model's inputs (the
        batch without its dataset ids, on the batch's device)."""
        inputs = {k: v for k, v in batch.items() if k not in ("dataset_ids", "token_dataset_ids")}
        if self.online is None:
            yield inputs
            return
        with self.online.counting(inputs, batch.get("dataset_ids"), batch.get("token_dataset_ids")):
            yield inputs

    def after_step(self, model: torch.nn.Module) -> dict | None:
        """Call after each optimizer step (on every process): every ``interval`` steps, update the weights.

        Returns:
            The update's record (as ``mixture.jsonl`` holds it), or None between updates.
        """
        self._start_log(None)
        self.step += 1
        if self.step % self.interval:
            return None
        return self.callback.update(self.step, model, write=self.log_path is not None and self.rank == 0)

    @property
    def weights(self) -> dict[str, float]:
        """The current weights by dataset name."""
        return {n: float(w) for n, w in zip(self.names, self.sampler.weights)}

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (sampler position, policy, history, the window in progress): save it with your
        checkpoint."""
        return {"step": self.step} | self.state.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s result: the same draws and updates as without the interruption.

        Raises:
            MoemixError: If it was saved for other datasets or settings.
        """
        self.state.load_state_dict(state)
        self.step = int(state["step"])
        self._log_started = False
        self._start_log(self.step)

    def _start_log(self, resumed_step: int | None) -> None:
        if not self._log_started and self.log_path is not None and self.rank == 0:
            restart_log(self.log_path, resumed_step)
        self._log_started = True
