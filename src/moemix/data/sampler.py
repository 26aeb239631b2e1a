"""A seeded weighted sampler over n datasets whose weights can change between draws.

Draw i picks its dataset from a uniform number that depends only on (seed, i), against the weights in
effect when it is drawn, and takes the next example of that dataset's current epoch, a seeded permutation:
no example is drawn twice within an epoch of its dataset. ``set_weights`` reaches every draw made after it;
:class:`moemix.data.feed.MixtureFeed` makes each optimizer step's draws when the step starts, so that they see
the weights of the update before it, whatever the DataLoader prefetches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from moemix.mixing import check_weights

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def counter_uniform(seed: int, i: int) -> float:
    """A uniform number in [0, 1) that depends only on (seed, i): counter-based, no generator state."""
    return (_splitmix64(_splitmix64(seed & _MASK) ^ i) >> 11) * (1.0 / (1 << 53))


class MixtureSampler:
    """Draws ``(dataset, example)`` pairs, one :meth:`draw` at a time.

    Args:
        sizes: number of examples of each dataset.
        weights: initial sampling weights (n,), non-negative, summing to 1.
        seed: seed of every draw.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int = 0):
        self.sizes = [int(s) for s in sizes]
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"every dataset needs at least one example, sizes={self.sizes}")
        self.seed = int(seed)
        self.draws = 0
        self.positions = [0] * len(self.sizes)
        self.epochs = [0] * len(self.sizes)
        self.counts = [0] * len(self.sizes)
        self._perms: dict[int, np.ndarray] = {}
        self.set_weights(weights)

    @property
    def weights(self) -> np.ndarray:
        return self._weights.copy()

    def set_weights(self, weights: Sequence[float]) -> None:
        """Use these weights from the next draw on."""
        w = check_weights(weights, n=len(self.sizes), what="sampler weights")
        self._weights = w
        self._cum = np.cumsum(w)
        self._cum[-1] = 1.0  # so that every u in [0, 1) falls inside

    def _permutation(self, d: int) -> np.ndarray:
        perm = self._perms.get(d)
        if perm is None:
            rng = np.random.default_rng([self.seed, d, self.epochs[d]])
            perm = self._perms[d] = rng.permutation(self.sizes[d])
        return perm

    def draw(self) -> tuple[int, int]:
        """Make the next draw: ``(dataset index, example index within that dataset)``."""
        u = counter_uniform(self.seed, self.draws)
        d = min(int(np.searchsorted(self._cum, u, side="right")), len(self.sizes) - 1)
        example = int(self._permutation(d)[self.positions[d]])
        self.draws += 1
        self.counts[d] += 1
        self.positions[d] += 1
        if self.positions[d] == self.sizes[d]:
            self.positions[d] = 0
            self.epochs[d] += 1
            self._perms.pop(d, None)
        return d, example

    def state_dict(self) -> dict[str, Any]:
        """Position and weights, JSON-serialisable; ``load_state_dict`` continues the same sequence."""
        return {
            "seed": self.seed,
            "sizes": self.sizes,
            "draws": self.draws,
            "positions": list(self.positions),
            "epochs": list(self.epochs),
            "counts": list(self.counts),
            "weights": self._weights.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["sizes"] != self.sizes or state["seed"] != self.seed:
            raise ValueError("sampler state is for other datasets or another seed")
        self.draws = int(state["draws"])
        self.positions = list(state["positions"])
        self.epochs = list(state["epochs"])
        self.counts = list(state["counts"])
        self._perms.clear()
        self.set_weights(state["weights"])
