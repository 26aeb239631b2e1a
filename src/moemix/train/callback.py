"""The Trainer callback that probes the router every ``interval`` optimizer steps and updates the mixture."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback

from moemix.config import MixingConfig
from moemix.data.render import IGNORE_INDEX
from moemix.data.sampler import MixtureSampler
from moemix.errors import RoutingError
from moemix.files import append_jsonl
from moemix.mixing import MixingPolicy, Signals, apply_bounds, collapsed, pairwise_l2
from moemix.models.prefix import prefix_of
from moemix.routing import LayerSpec, select_moe_layers
from moemix.routing.probe import GroupedRows, grouped_counts, rows_of
from moemix.train.distributed import all_reduce_sum, assert_same_across_ranks, rank_and_world
from moemix.train.evaluate import dev_loss
from moemix.train.loads import WindowLoads
from moemix.train.scalars import PendingScalars
from moemix.train.update_noise import estimates_noise, update_noise, warn_about_noise

logger = logging.getLogger(__name__)


@torch.no_grad()
def probe_loads(
    model: torch.nn.Module,
    probe_batches: Sequence[list],
    layer: LayerSpec = "last",
    router_module: str | None = None,
    count_prompt_tokens: bool = True,
) -> np.ndarray:
    """Expert counts of the chosen MoE layers per dataset over fixed dev batches: (n, sum of num_experts) int64.

    Padding never counts; with ``count_prompt_tokens=False`` only tokens that carry a loss (assistant) count.

    In a multi-process run each rank probes every W-th batch and the counts are summed over ranks: the
    result equals a single process's, at 1/W of the cost.
    """
    return _probe(model, probe_batches, layer, router_module, count_prompt_tokens, per_example=False)[0]


@torch.no_grad()
def probe_units(
    model: torch.nn.Module,
    probe_batches: Sequence[list],
    layer: LayerSpec = "last",
    router_module: str | None = None,
    count_prompt_tokens: bool = True,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`probe_loads` counted per example as well: the same forwards, one count row per probe example.

    Returns:
        ``(counts, units)``: the ``(n, N)`` counts per dataset, equal to :func:`probe_loads`'s, and per dataset
        the ``(examples, N)`` counts of each of its probe examples (the units of the noise estimate).
    """
    return _probe(model, probe_batches, layer, router_module, count_prompt_tokens, per_example=True)


@dataclass
class _ProbeRows:
    """This rank's probe rows with the group of every token, and what :func:`grouped_counts` merged them into."""

    rows: list[GroupedRows]
    owners: list[int]  # per example: its dataset (groups are examples when counting per example)
    groups: int
    plans: dict = field(default_factory=dict)


def _probe_rows(
    probe_batches: Sequence[list], count_prompt_tokens: bool, per_example: bool, rank: int, world: int
) -> _ProbeRows:
    rows = []
    owners: list[int] = []
    for dataset, batches in enumerate(probe_batches):
        for index, batch in enumerate(batches):
            size = int(batch["input_ids"].shape[0])
            group = torch.arange(len(owners), len(owners) + size) if per_example else dataset
            if per_example:
                owners += [dataset] * size  # every rank numbers every example, so the sums over ranks agree
            if index % world != rank:
                continue
            counted = None
            if not count_prompt_tokens:
                counted = batch["attention_mask"] * (batch["labels"] != IGNORE_INDEX)
            rows.append(rows_of(batch, group, counted))
    return _ProbeRows(rows, owners, len(owners) if per_example else len(probe_batches))


def _probe(
    model: torch.nn.Module,
    probe_batches: Sequence[list],
    layer: LayerSpec,
    router_module: str | None,
    count_prompt_tokens: bool,
    per_example: bool,
    kept: dict | None = None,
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    rank, world = rank_and_world()
    # Every dataset's probe rows go into as few forwards as possible, each stopped right after the last read
    # MoE layer (moemix.routing.probe); with a frozen-prefix cache the frozen layers are replayed, not run.
    # The rows and their merged forwards are the same at every update: ``kept`` keeps them between updates.
    prefix = next((p for p in map(prefix_of, probe_batches) if p is not None), None)
    key = (count_prompt_tokens, per_example, rank, world)
    probe = None if kept is None else kept.get(key)
    if probe is None:
        probe = _probe_rows(probe_batches, count_prompt_tokens, per_example, rank, world)
        if kept is not None:
            kept[key] = probe
    rows, owners, groups = probe.rows, probe.owners, probe.groups
    if not rows:  # a rank (or a run) without probe batches counts zeros, as wide as the others' counts
        width = sum(moe.num_experts for moe in select_moe_layers(model, layer, router_module))
        counts = all_reduce_sum(np.zeros((groups, width), dtype=np.int64))
    else:
        forward = None
        if prefix is not None and prefix.active:
            try:
                read = select_moe_layers(model, layer, router_module)
            except RoutingError:
                read = []  # read through output_router_logits: the whole model runs, replay still applies
            if not any(prefix.skips(moe.block) for moe in read):
                forward = functools.partial(prefix.run, kind="probe")
        counts = grouped_counts(model, rows, groups, layer, router_module, forward=forward, plans=probe.plans)
        counts = all_reduce_sum(counts.cpu().numpy().astype(np.int64))
    if not per_example:
        return counts, None
    owner = np.asarray(owners, dtype=np.int64)
    totals = np.zeros((len(probe_batches), counts.shape[1]), dtype=np.int64)
    np.add.at(totals, owner, counts)
    return totals, [counts[owner == i] for i in range(len(probe_batches))]


class MixingCallback(TrainerCallback):
    """Every ``interval`` optimizer steps: probe, update the weights, hand them to the sampler, log a line.

    Each update also estimates the sampling noise of its loads (:mod:`moemix.train.update_noise`), logs it
    under ``noise`` and warns, on the main process, when the weights moved on noise.

    Args:
        names: dataset names, in sampler order.
        policy: the mixing policy.
        sampler: the training sampler whose weights are updated.
        probe_batches: for each dataset, the fixed dev batches the probe runs.
        interval: optimizer steps between updates.
        log_path: ``RUN/mixture.jsonl``; one line per update, written by the main process only.
        layer: which MoE layers' routing to read (``last``, ``all``, an index or a list of indices).
        source: where the counts come from: an object whose ``read_units(model)`` returns the window's
            (n, units, N) counts (:class:`moemix.train.online.OnlineExpertCounts`; one with only ``read(model)``,
            (n, N), gives no noise estimate); None probes ``probe_batches``, counting each example apart.
        load_ema: weight of the previous loads when smoothing them across updates; None: no smoothing.
        router_module: router path pattern for models whose routers moemix does not find by itself.
        count_prompt_tokens: probe: count prompt tokens too (False: only tokens that carry a loss).
        bounds: ``(floor, ceiling)`` every weight is kept within after an update.
        collapse_warning: warn when one weight exceeds this (the config's default, 0.8, is this default).
        window_loss: per-dataset training loss of the window (:class:`moemix.train.window_loss.WindowLoss`),
            for policies that read it; the trainer that fills it gets the same object.
        scalars: where each update's weights and distances wait for the Trainer's next log
            (:class:`moemix.train.scalars.PendingScalars`, shared with the trainer).
    """

    def __init__(
        self,
        names: Sequence[str],
        policy: MixingPolicy,
        sampler: MixtureSampler,
        probe_batches: Sequence[list],
        interval: int,
        log_path: str | Path,
        layer: LayerSpec = "last",
        *,
        source=None,
        load_ema: float | None = None,
        router_module: str | None = None,
        count_prompt_tokens: bool = True,
        bounds: tuple[float, float] = (0.0, 1.0),
        collapse_warning: float = 0.8,
        window_loss=None,
        scalars: PendingScalars | None = None,
    ):
        self.names = list(names)
        self.policy = policy
        self.sampler = sampler
        self.probe_batches = probe_batches
        self.interval = interval
        self.log_path = Path(log_path)
        self.layer = layer
        self.source = source
        self.router_module = router_module
        self.count_prompt_tokens = count_prompt_tokens
        self.window = WindowLoads(self.names, load_ema)
        self.bounds = bounds
        self.collapse_warning = collapse_warning
        self.window_loss = window_loss
        self.scalars = scalars if scalars is not None else PendingScalars()
        self.history: list[dict] = []
        self._probe_rows: dict = {}  # the probe's rows and merged forwards, the same at every update

    @classmethod
    def from_config(
        cls,
        mixing: MixingConfig,
        names: Sequence[str],
        policy: MixingPolicy,
        sampler: MixtureSampler,
        probe_batches: Sequence[list],
        log_path: str | Path,
        *,
        source=None,
        window_loss=None,
        scalars: PendingScalars | None = None,
    ) -> MixingCallback:
        """The callback that the ``mixing`` section describes: its interval, layers, smoothing, bounds and warning.

        Args:
            mixing: The run's ``mixing`` section.
            names, policy, sampler, probe_batches, log_path, source, window_loss, scalars: As for the class.

        Returns:
            The callback.
        """
        return cls(
            names,
            policy,
            sampler,
            probe_batches,
            mixing.interval,
            log_path,
            mixing.layers,
            source=source,
            load_ema=mixing.load_ema,
            router_module=mixing.router_module,
            count_prompt_tokens=mixing.count_prompt_tokens,
            bounds=(mixing.floor, mixing.ceiling),
            collapse_warning=mixing.collapse_warning,
            window_loss=window_loss,
            scalars=scalars,
        )

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 or state.global_step % self.interval:
            return control
        self.update(state.global_step, model, write=state.is_world_process_zero)
        control.should_log = True  # the update's scalars go out with this step's logs
        return control

    def update(self, step: int, model: torch.nn.Module, write: bool = True) -> dict:
        """Probe the model, compute the new weights, apply them and log the update."""
        counts, units = self._measure(model)
        # Empty datasets keep their previous load; without one yet the weights stay (both logged).
        loads, carried = self.window(counts, step)
        skipped = loads is None
        noise = None
        if not skipped:
            noise = update_noise(units, loads, self.window.fresh, self.policy, [self.sampler.seed, int(step)])
            if "noise" in self.policy.needs and noise is None:
                skipped = True  # the noise-aware update cannot tell signal from noise: the weights stay
                if write:
                    logger.warning(
                        "step %d: no noise estimate (no dataset has two measured units: probe examples or groups "
                        "of training sequences); the noise-aware update leaves the weights as they are",
                        step,
                    )
        if skipped:
            loads = np.asarray(counts, dtype=np.float64) if loads is None else loads
            weights = self.sampler.weights
        else:
            signals = Signals(step=int(step), loads=loads, noise=noise)
            if "dev_loss" in self.policy.needs:
                signals.dev_loss = np.array([dev_loss(model, batches) for batches in self.probe_batches])
            if self.window_loss is not None:
                signals.train_loss = self.window_loss.read()
            weights = apply_bounds(self.policy.update(self.sampler.weights, signals), *self.bounds)
        probs = loads / np.maximum(loads.sum(axis=1, keepdims=True), 1e-300)
        assert_same_across_ranks(weights, f"mixture weights at step {step}")
        self.sampler.set_weights(weights)
        record = {
            "step": int(step),
            "weights": {name: float(w) for name, w in zip(self.names, weights)},
            "loads": {name: row.tolist() for name, row in zip(self.names, probs)},
            "distances": pairwise_l2(probs).tolist(),
            # null: not estimated (no units, more datasets than the estimate is worth, a skipped update)
            "noise": None if noise is None else noise.to_record(),
        }
        if carried:
            record["carried"] = carried  # datasets without tokens in the window: previous load kept
        if skipped:
            record["skipped"] = True  # a dataset had no previous load, or the noise-aware update no noise
        else:
            if signals.dev_loss is not None:
                record["dev_loss"] = {n: float(v) for n, v in zip(self.names, signals.dev_loss)}
            if signals.train_loss is not None:
                # null where a dataset was not drawn in the window (JSON has no NaN)
                record["train_loss"] = {
                    n: float(v) if np.isfinite(v) else None for n, v in zip(self.names, signals.train_loss)
                }
        self.scalars.update({f"mixture/weight/{n}": w for n, w in record["weights"].items()})
        d = np.asarray(record["distances"])
        self.scalars.update({f"mixture/distance/{n}": float(d[i].mean()) for i, n in enumerate(self.names)})
        if noise is not None and np.isfinite(noise.snr):
            self.scalars.update({"mixture/snr": float(noise.snr)})
        if noise is not None and write:
            warn_about_noise(noise, step, "noise" in self.policy.needs)
        top = collapsed(weights, self.collapse_warning)
        if top is not None and write:
            logger.warning(
                "step %d: the mixture has collapsed onto %r (weight %.3f > %.2f); set mixing.floor or a smaller "
                "mixing.eta to keep the others in play",
                step,
                self.names[top],
                weights[top],
                self.collapse_warning,
            )
        self.history.append(record)
        if write:
            append_jsonl(self.log_path, record)
            shown = "  ".join(f"{name}={w:.3f}" for name, w in record["weights"].items())
            tqdm.write(f"[moemix] step {step}: weights {shown}")
        return record

    def _measure(self, model: torch.nn.Module) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """The window's ``(n, N)`` counts and, where measured, each dataset's counts per unit."""
        n = len(self.names)
        if self.source is None:
            per_example = estimates_noise(n, self.policy)
            args = (model, self.probe_batches, self.layer, self.router_module, self.count_prompt_tokens)
            return _probe(*args, per_example=per_example, kept=self._probe_rows)
        read_units = getattr(self.source, "read_units", None)
        if read_units is None:  # a source that counts per dataset only: no noise estimate
            return self.source.read(model), None
        units = read_units(model)
        return units.sum(axis=1), (list(units) if units.shape[1] > 1 else None)
