"""Routing telemetry without mixing: how each MoE layer routes each dataset, logged as training goes.

Every ``interval`` optimizer steps the callback runs fixed probe batches of each named dataset through the model
(in eval mode, no gradient) and counts the experts every MoE layer sends their tokens to, on any architecture
moemix routes. Per layer and per dataset it logs the expert load (the share of the routed tokens each expert
got), its entropy (normalised by log E: 1 is perfectly balanced) and coefficient of variation (0 is balanced),
the experts no token was sent to, and the distance between the datasets' loads (what the dynamic mixing reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from moemix.files import append_jsonl
from moemix.integrations.rows import probe_batches
from moemix.mixing import pairwise_distances
from moemix.routing import LayerSpec, select_moe_layers
from moemix.train.callback import probe_loads
from moemix.train.scalars import PendingScalars

LOG_FILE = "routing.jsonl"
"""Where the records go by default, in the Trainer's ``output_dir``."""


def load_statistics(counts: np.ndarray) -> dict[str, Any]:
    """Balance statistics of one dataset's expert counts in one layer.

    Args:
        counts: ``(E,)`` tokens routed to each expert (top-k choices counted once each).

    Returns:
        ``load`` (shares summing to 1, zeros without tokens), ``entropy`` (normalised by log E, in [0, 1]),
        ``cv`` (standard deviation over mean of the counts), ``dead`` (experts with no token) and ``tokens``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    experts = len(counts)
    if total == 0:
        return {"load": [0.0] * experts, "entropy": 0.0, "cv": 0.0, "dead": list(range(experts)), "tokens": 0}
    load = counts / total
    nonzero = load[load > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum() / np.log(experts)) if experts > 1 else 1.0
    return {
        "load": load.tolist(),
        "entropy": entropy,
        "cv": float(counts.std() / counts.mean()),
        "dead": [int(e) for e in np.flatnonzero(counts == 0)],
        "tokens": int(total),
    }


class RoutingTelemetry(TrainerCallback):
    """Logs per MoE layer and per dataset: expert load, its entropy and coefficient of variation, dead experts,
    and the routing distances between datasets; to ``report_to`` (TensorBoard, W&B, ...) and a JSONL file.

    Add it with :meth:`attach` (``RoutingTelemetry(...).attach(trainer)``), which puts it before the Trainer's
    reporting callbacks so that its scalars reach them; ``trainer.add_callback`` writes only the JSONL.

    Args:
        probe: Tokenised rows by dataset name (``input_ids``, optionally ``labels``; a ``datasets.Dataset`` or a
            list of dicts): the same first rows are probed each time.
        interval: Optimizer steps between two measurements.
        layers: MoE layers to read: ``all`` (default), ``last``, an index or a list of indices.
        batch_size: Rows per probe batch.
        max_batches: Probe batches per dataset.
        pad_token_id: The padding token of the probe batches.
        log_path: The JSONL file (one line per measurement, written by process 0); default
            ``output_dir/routing.jsonl``.
        router_module: Router path pattern for a model whose routers moemix does not find by itself.
        count_prompt_tokens: Count prompt tokens too (False: only tokens that carry a loss).
        metric: Distance between two datasets' loads: ``l2`` (the paper's), ``cosine`` or ``js``.
    """

    def __init__(
        self,
        probe: Mapping[str, Any],
        interval: int,
        *,
        layers: LayerSpec = "all",
        batch_size: int = 8,
        max_batches: int = 2,
        pad_token_id: int = 0,
        log_path: str | Path | None = None,
        router_module: str | None = None,
        count_prompt_tokens: bool = True,
        metric: str = "l2",
    ):
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.names = list(probe)
        self.batches = probe_batches(probe, self.names, batch_size, max_batches, pad_token_id)
        self.interval = interval
        self.layers = layers
        self.log_path = None if log_path is None else Path(log_path)
        self.router_module = router_module
        self.count_prompt_tokens = count_prompt_tokens
        self.metric = metric
        self.scalars = PendingScalars()
        self.history: list[dict] = []

    def attach(self, trainer) -> RoutingTelemetry:
        """Add the callback to ``trainer`` ahead of its reporting callbacks; returns it."""
        trainer.callback_handler.callbacks.insert(0, self)
        return self

    def measure(self, model, step: int) -> dict[str, Any]:
        """Probe the model once; return the record (as the JSONL holds it) and queue its scalars.

        A collective in a multi-process run: call it on every process.
        """
        moe_layers = select_moe_layers(model, self.layers, self.router_module)
        counts = probe_loads(model, self.batches, self.layers, self.router_module, self.count_prompt_tokens)
        record: dict[str, Any] = {"step": int(step), "layers": []}
        at = 0
        for layer in moe_layers:
            block = counts[:, at : at + layer.num_experts]
            at += layer.num_experts
            stats = {name: load_statistics(row) for name, row in zip(self.names, block)}
            loads = np.array([s["load"] for s in stats.values()])
            distances = pairwise_distances(loads, self.metric)
            record["layers"].append(
                {
                    "layer": layer.name,
                    "experts": layer.num_experts,
                    "datasets": stats,
                    "dead": [int(e) for e in np.flatnonzero(block.sum(axis=0) == 0)],
                    "distances": distances.tolist(),
                }
            )
            tag = f"routing/{layer.name}"
            for i, (name, s) in enumerate(stats.items()):
                others = np.delete(distances[i], i)
                self.scalars.update(
                    {
                        f"{tag}/{name}/entropy": s["entropy"],
                        f"{tag}/{name}/cv": s["cv"],
                        f"{tag}/{name}/dead": float(len(s["dead"])),
                        f"{tag}/{name}/distance": float(others.mean()) if len(others) else 0.0,
                    }
                )
        self.history.append(record)
        return record

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 or state.global_step % self.interval:
            return control
        record = self.measure(model, state.global_step)
        if state.is_world_process_zero:
            append_jsonl(self.log_path or Path(args.output_dir) / LOG_FILE, record)
        control.should_log = True  # the scalars go out with this step's log
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and self.scalars:
            logs.update(self.scalars.take())
        return control
