"""The Trainer callback that probes the router every ``interval`` optimizer steps and updates the mixture."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback

from moemix.data.render import IGNORE_INDEX
from moemix.data.sampler import MixtureSampler
from moemix.files import append_jsonl
from moemix.mixing import MixingPolicy, Signals, apply_bounds, collapsed, pairwise_l2
from moemix.routing import LayerSpec, expert_counts, select_moe_layers
from moemix.train.distributed import all_reduce_sum, assert_same_across_ranks, rank_and_world
from moemix.train.evaluate import dev_loss
from moemix.train.loads import WindowLoads
from moemix.train.scalars import PendingScalars

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
    rank, world = rank_and_world()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        rows = []
        for batches in probe_batches:
            total = None
            for batch in batches[rank::world]:
                mask = batch["attention_mask"].to(device)
                counted = None if count_prompt_tokens else mask * (batch["labels"].to(device) != IGNORE_INDEX)
                counts = expert_counts(
                    model, batch["input_ids"].to(device), mask, layer, router_module, count_mask=counted
                ).sum(dim=0)
                total = counts if total is None else total + counts
            rows.append(None if total is None else total.cpu().numpy().astype(np.int64))
        # A rank (or a dataset) without probe batches counts zeros, as wide as the others' counts.
        width = _probe_width(model, layer, router_module, rows)
        rows = [np.zeros(width, dtype=np.int64) if row is None else row for row in rows]
    finally:
        model.train(was_training)
    return all_reduce_sum(np.stack(rows))


def _probe_width(model: torch.nn.Module, layer: LayerSpec, router_module: str | None, rows: list) -> int:
    known = next((len(row) for row in rows if row is not None), None)
    if known is not None:
        return known
    return sum(moe.num_experts for moe in select_moe_layers(model, layer, router_module))


class MixingCallback(TrainerCallback):
    """Every ``interval`` optimizer steps: probe, update the weights, hand them to the sampler, log a line.

    Args:
        names: dataset names, in sampler order.
        policy: the mixing policy.
        sampler: the training sampler whose weights are updated.
        probe_batches: for each dataset, the fixed dev batches the probe runs.
        interval: optimizer steps between updates.
        log_path: ``RUN/mixture.jsonl``; one line per update, written by the main process only.
        layer: which MoE layers' routing to read (``last``, ``all``, an index or a list of indices).
        source: where the counts come from: an object whose ``read(model)`` returns the window's (n, N) counts
            (:class:`moemix.train.online.OnlineExpertCounts`); None probes ``probe_batches``.
        load_ema: weight of the previous loads when smoothing them across updates; None: no smoothing.
        router_module: router path pattern for models whose routers moemix does not find by itself.
        count_prompt_tokens: probe: count prompt tokens too (False: only tokens that carry a loss).
        bounds: ``(floor, ceiling)`` every weight is kept within after an update.
        collapse_warning: warn when one weight exceeds this.
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
        collapse_warning: float = 0.9,
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

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 or state.global_step % self.interval:
            return control
        self.update(state.global_step, model, write=state.is_world_process_zero)
        control.should_log = True  # the update's scalars go out with this step's logs
        return control

    def update(self, step: int, model: torch.nn.Module, write: bool = True) -> dict:
        """Probe the model, compute the new weights, apply them and log the update."""
        if self.source is not None:
            counts = self.source.read(model)
        else:
            counts = probe_loads(
                model, self.probe_batches, self.layer, self.router_module, self.count_prompt_tokens
            )
        # Empty datasets keep their previous load; without one yet the weights stay (both logged).
        loads, carried = self.window(counts, step)
        skipped = loads is None
        if skipped:
            loads = np.asarray(counts, dtype=np.float64)
            weights = self.sampler.weights
        else:
            signals = Signals(step=int(step), loads=loads)
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
        }
        if carried:
            record["carried"] = carried  # datasets without tokens in the window: previous load kept
        if skipped:
            record["skipped"] = True  # one of them had no previous load: weights unchanged
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
        top = collapsed(weights, self.collapse_warning)
        if top is not None and write:
            logger.warning(
                "step %d: the mixture has collapsed onto %r (weight %.3f > %.2f); set mixing.floor or a smaller "
                "mixing.eta to keep the others in play", step, self.names[top], weights[top], self.collapse_warning,
            )
        self.history.append(record)
        if write:
            append_jsonl(self.log_path, record)
            shown = "  ".join(f"{name}={w:.3f}" for name, w in record["weights"].items())
            tqdm.write(f"[moemix] step {step}: weights {shown}")
        return record
