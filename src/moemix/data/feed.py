"""Resolve each optimizer step's draws when the step starts: exact, whatever the loader prefetches.

A DataLoader (its workers, its prefetching, accelerate's one-batch look-ahead) asks for data before the
weights of the step that will consume it are known. moemix therefore lets the DataLoader hand out only
*tickets*, which pace the Trainer's loop, and turns them into examples at the start of each optimizer step,
after the previous step's mixture update. Draw ``i`` then depends only on (seed, i, the weights in effect
for its step), and the global order of draws is the same for any number of workers and, for the same global
batch size, any world size:

    step s, micro-batch m, rank r, position j  ->  global draw  s*G + (m*W + r)*B + j

with ``B`` the per-device batch size, ``W`` the world size and ``G = accumulation * W * B``. Every rank runs
the whole global sequence (cheap: a few integer operations a draw) and keeps its own disjoint slice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from moemix.data.mixture import MixtureCollator, MixtureDataset
from moemix.data.sampler import MixtureSampler


class TicketDataset(torch.utils.data.Dataset):
    """``n`` placeholders: the Trainer's loop counts them; the feed decides what each step trains on."""

    def __init__(self, n: int):
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return int(index)


def collate_tickets(tickets: list[int]) -> dict[str, torch.Tensor]:
    """Collate tickets into a batch of their indices (kept only for inspection)."""
    return {"tickets": torch.tensor(tickets, dtype=torch.long)}


def weights_digest(weights: np.ndarray) -> str:
    """A short hash of the exact weight values, to compare them across ranks and runs."""
    return hashlib.sha256(np.ascontiguousarray(weights, dtype=np.float64).tobytes()).hexdigest()[:16]


@dataclass
class MixtureFeed:
    """Turns the start of an optimizer step into this rank's micro-batches.

    Args:
        sampler: the global mixture sampler (identical state on every rank).
        dataset: the concatenated training splits.
        collator: pads a list of examples into a batch.
        batch_size: per-device micro-batch size.
        world_size: number of data-parallel ranks.
        rank: this rank.
    """

    sampler: MixtureSampler
    dataset: MixtureDataset
    collator: MixtureCollator
    batch_size: int
    world_size: int = 1
    rank: int = 0
    record: bool = False
    """Keep this rank's draws of each step in ``steps`` (for the draw log)."""
    steps: list[dict] = field(default_factory=list)

    def next_step(self, num_micro_batches: int) -> list[dict[str, torch.Tensor]]:
        """Draw one optimizer step for all ranks; return this rank's ``num_micro_batches`` batches."""
        weights = self.sampler.weights
        start = self.sampler.draws
        per_micro = self.world_size * self.batch_size
        draws = [self.sampler.draw() for _ in range(num_micro_batches * per_micro)]
        batches, mine = [], []
        for m in range(num_micro_batches):
            lo = m * per_micro + self.rank * self.batch_size
            chunk = draws[lo : lo + self.batch_size]
            mine.extend(chunk)
            features = []
            for d, e in chunk:
                item = self.dataset[int(self.dataset.offsets[d] + e)]
                features.append(item)
            batches.append(self.collator(features))
        if self.record:
            self.steps.append(
                {"first_draw": start, "weights_sha": weights_digest(weights), "draws": [[d, e] for d, e in mine]}
            )
        return batches
