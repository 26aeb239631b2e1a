"""What a policy may read at an update, and the guard rails applied to any policy's weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moemix.errors import MixingError
from moemix.mixing.noise import RoutingNoise


@dataclass
class Signals:
    """The measurements of one update window; a policy reads the ones it names in ``needs``.

    Attributes:
        step: the optimizer step of the update.
        loads: (n, N) expert counts per dataset (gate loads), or None.
        dev_loss: (n,) mean dev loss per dataset, or None.
        train_loss: (n,) mean training loss per dataset over the window (nan where a dataset was not drawn).
        noise: the sampling noise of the gate loads and their scores (:func:`moemix.mixing.noise.routing_noise`),
            or None where it was not estimated.
    """

    step: int
    loads: np.ndarray | None = None
    dev_loss: np.ndarray | None = None
    train_loss: np.ndarray | None = None
    noise: RoutingNoise | None = None

    def require(self, name: str, policy: str) -> np.ndarray:
        """The named signal; a policy asking for one the trainer did not measure is a bug, said plainly."""
        value = getattr(self, name)
        if value is None:
            raise MixingError(f"policy {policy}: needs the {name} signal, which this update did not measure")
        return np.asarray(value, dtype=np.float64)


def apply_bounds(weights: np.ndarray, floor: float = 0.0, ceiling: float = 1.0) -> np.ndarray:
    """Project weights onto ``{w : floor <= w_i <= ceiling, sum w = 1}``, keeping their proportions elsewhere.

    Finds the scale s with ``sum(clip(s * w, floor, ceiling)) = 1``: weights inside the bounds keep their
    proportions, the others sit on a bound.

    Raises:
        MixingError: if the bounds admit no weights (``n * floor > 1`` or ``n * ceiling < 1``).
    """
    w = np.asarray(weights, dtype=np.float64)
    n = w.size
    if n * floor > 1 + 1e-12 or n * ceiling < 1 - 1e-12 or floor > ceiling:
        raise MixingError(f"mixing.floor/ceiling: no weights of {n} datasets fit in [{floor}, {ceiling}] and sum to 1")
    if floor <= 0.0 and ceiling >= 1.0:
        return w.copy()

    def total(scale: float) -> float:
        return float(np.clip(scale * w, floor, ceiling).sum())

    # sum(clip(s * w, floor, ceiling)) grows with s: find the s where it is 1 by bisection.
    high = 1.0
    while total(high) < 1.0 and high < 1e12:
        high *= 2.0
    if total(high) < 1.0:  # zero weights hold the sum down: positives at the ceiling, zeros share the rest
        positive = w > 0
        out = np.where(positive, ceiling, (1.0 - positive.sum() * ceiling) / max((~positive).sum(), 1))
        return out / out.sum()
    low = 0.0
    for _ in range(100):
        mid = (low + high) / 2.0
        low, high = (mid, high) if total(mid) < 1.0 else (low, mid)
    out = np.clip(high * w, floor, ceiling)
    return out / out.sum()


def collapsed(weights: np.ndarray, threshold: float) -> int | None:
    """The index of a dataset holding more than ``threshold`` of the weight, if any."""
    top = int(np.argmax(weights))
    return top if weights[top] > threshold else None
