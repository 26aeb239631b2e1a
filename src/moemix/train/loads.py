"""From one window's raw expert counts to the gate loads the policy sees: empty datasets and smoothing.

A dataset that received no tokens in a window (online counting with a small weight, an empty probe) has no
load to measure; it keeps its previous load vector rather than stopping the run or being read as zeros. Loads
can also be smoothed across windows with an exponential moving average (off by default, as in the paper).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class WindowLoads:
    """Normalises each window's counts, carries empty datasets over and applies the optional EMA.

    Args:
        names: Dataset names, in sampler order (for the log).
        ema: Weight of the previous loads in ``ema * previous + (1 - ema) * new``; None is no smoothing.

    Attributes:
        previous: The ``(n, N)`` loads of the last window, NaN in rows never measured; None before the first.
        fresh: ``(n,)`` share of each of the last window's loads that the window itself measured: 1, or
            ``1 - ema`` where an earlier load was smoothed in, 0 where the earlier load was kept (what the
            noise estimate resamples).
    """

    names: Sequence[str]
    ema: float | None = None
    previous: np.ndarray | None = field(default=None, repr=False)
    fresh: np.ndarray | None = field(default=None, repr=False)

    def __call__(self, counts: np.ndarray, step: int) -> tuple[np.ndarray | None, list[str]]:
        """The loads of this window.

        Args:
            counts: ``(n, N)`` non-negative expert counts of the window, one row per dataset.
            step: The optimizer step of the update (for the log).

        Returns:
            ``(loads, carried)``: loads with rows summing to 1, or None when a dataset without tokens has no
            previous load to keep (the update is then skipped); and the names of the datasets whose previous
            load was kept.
        """
        counts = np.asarray(counts, dtype=np.float64)
        totals = counts.sum(axis=1)
        empty = np.flatnonzero(totals == 0)
        loads = counts / np.where(totals == 0, 1.0, totals)[:, None]
        carried = [self.names[i] for i in empty]
        previous = self.previous if self.previous is not None and self.previous.shape == loads.shape else None
        if previous is None:
            previous = np.full_like(loads, np.nan)  # rows never measured are NaN
        fresh = np.ones(len(loads))
        if self.ema is not None:
            # Rows without a previous load start from this window's.
            loads = np.where(np.isnan(previous), loads, self.ema * previous + (1.0 - self.ema) * loads)
            fresh[~np.isnan(previous).any(axis=1)] = 1.0 - self.ema
        loads[empty] = previous[empty]
        fresh[empty] = 0.0
        self.fresh = fresh
        unknown = [self.names[i] for i in empty if np.isnan(previous[i]).any()]
        self.previous = loads
        if unknown:
            logger.warning(
                "step %d: dataset(s) %s received no tokens in this window and have no previous load; "
                "the weights stay as they are",
                step,
                ", ".join(unknown),
            )
            return None, carried
        if carried:
            logger.warning(
                "step %d: dataset(s) %s received no tokens in this window; keeping their previous load",
                step,
                ", ".join(carried),
            )
        return loads, carried

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: the previous loads, None for rows never measured (for a checkpoint)."""
        if self.previous is None:
            return {"previous": None}
        return {"previous": [None if np.isnan(row).any() else row.tolist() for row in self.previous]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        rows = state.get("previous")
        if rows is None:
            self.previous = None
            return
        width = max((len(row) for row in rows if row is not None), default=0)
        self.previous = np.array([[np.nan] * width if row is None else row for row in rows], dtype=np.float64)
