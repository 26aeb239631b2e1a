"""The Trainer callback that probes the router every ``interval`` optimizer steps and updates the mixture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback

from moemix.data.sampler import MixtureSampler
from moemix.mixing import MixingPolicy, Signals, normalise_loads, pairwise_l2
from moemix.routing import expert_counts, select_moe_layer
from moemix.train.distributed import all_reduce_sum, assert_same_across_ranks, rank_and_world
from moemix.files import append_jsonl


@torch.no_grad()
def probe_loads(model: torch.nn.Module, probe_batches: Sequence[list], layer: str | int = "last") -> np.ndarray:
    """Expert counts of the chosen MoE layer per dataset over fixed dev batches: (n, num_experts) int64.

    In a multi-process run each rank probes every W-th batch and the counts are summed over ranks: the
    result equals a single process's, at 1/W of the cost.
    """
    rank, world = rank_and_world()
    device = next(model.parameters()).device
    num_experts = select_moe_layer(model, layer).num_experts
    was_training = model.training
    model.eval()
    try:
        rows = []
        for batches in probe_batches:
            total = torch.zeros(num_experts, dtype=torch.long, device=device)
            for batch in batches[rank::world]:
                total += expert_counts(
                    model, batch["input_ids"].to(device), batch["attention_mask"].to(device), layer=layer
                ).sum(dim=0)
            rows.append(total.cpu().numpy().astype(np.int64))
    finally:
        model.train(was_training)
    return all_reduce_sum(np.stack(rows))


class MixingCallback(TrainerCallback):
    """Every ``interval`` optimizer steps: probe, update the weights, hand them to the sampler, log a line.

    Args:
        names: dataset names, in sampler order.
        policy: the mixing policy.
        sampler: the training sampler whose weights are updated.
        probe_batches: for each dataset, the fixed dev batches the probe runs.
        interval: optimizer steps between updates.
        log_path: ``RUN/mixture.jsonl``; one line per update, written by the main process only.
        layer: which MoE layer's router to read.
    """

    def __init__(
        self,
        names: Sequence[str],
        policy: MixingPolicy,
        sampler: MixtureSampler,
        probe_batches: Sequence[list],
        interval: int,
        log_path: str | Path,
        layer: str | int = "last",
    ):
        self.names = list(names)
        self.policy = policy
        self.sampler = sampler
        self.probe_batches = probe_batches
        self.interval = interval
        self.log_path = Path(log_path)
        self.layer = layer
        self.history: list[dict] = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 or state.global_step % self.interval:
            return control
        self.update(state.global_step, model, write=state.is_world_process_zero)
        return control

    def update(self, step: int, model: torch.nn.Module, write: bool = True) -> dict:
        """Probe the model, compute the new weights, apply them and log the update."""
        loads = probe_loads(model, self.probe_batches, self.layer)
        probs = normalise_loads(loads)
        weights = self.policy.update(self.sampler.weights, Signals(step=int(step), loads=loads))
        assert_same_across_ranks(weights, f"mixture weights at step {step}")
        self.sampler.set_weights(weights)
        record = {
            "step": int(step),
            "weights": {name: float(w) for name, w in zip(self.names, weights)},
            "loads": {name: row.tolist() for name, row in zip(self.names, probs)},
            "distances": pairwise_l2(probs).tolist(),
        }
        self.history.append(record)
        if write:
            append_jsonl(self.log_path, record)
            shown = "  ".join(f"{name}={w:.3f}" for name, w in record["weights"].items())
            tqdm.write(f"[moemix] step {step}: weights {shown}")
        return record
