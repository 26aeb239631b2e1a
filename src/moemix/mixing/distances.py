"""Distances between dataset representations, and how a dataset's distance to the others is summarised.

All without an (n, n, N) difference array: Gram forms over row blocks, so 10,000 datasets stay cheap.
"""

from __future__ import annotations

import numpy as np

from moemix.errors import MixingError
from moemix.mixing.dynamic import pairwise_l2

DISTANCES = ("l2", "cosine", "js")
CRITERIA = ("mean", "min", "max")
_BLOCK_ROWS = 1024


def pairwise_distances(points: np.ndarray, metric: str = "l2", rows: slice | None = None) -> np.ndarray:
    """Distances between ``points[rows]`` and every point.

    Args:
        points: (n, N) array; for ``js`` rows must be probability distributions.
        metric: ``l2`` (Euclidean), ``cosine`` (1 - cosine similarity) or ``js`` (Jensen-Shannon distance,
            the square root of the divergence in nats).
        rows: the rows to compute (default: all).

    Returns:
        (len(rows), n) float64 array with zeros on the diagonal.
    """
    points = np.asarray(points, dtype=np.float64)
    rows = rows if rows is not None else slice(0, points.shape[0])
    if metric == "l2":
        return pairwise_l2(points, rows)
    start = rows.start or 0
    block = points[rows]
    if metric == "cosine":
        norms = np.linalg.norm(points, axis=1)
        if np.any(norms == 0):
            raise MixingError("cosine distance: a dataset's vector is all zeros")
        unit = points / norms[:, None]
        dist = 1.0 - np.clip(unit[rows] @ unit.T, -1.0, 1.0)
    elif metric == "js":
        # JS(p, q) = H(m) - (H(p) + H(q)) / 2 with m = (p + q) / 2; H computed per pair over the block.
        def entropy(x: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                return -np.where(x > 0, x * np.log(x), 0.0).sum(axis=-1)

        h = entropy(points)
        mixed = (block[:, None, :] + points[None, :, :]) / 2.0  # (block, n, N): bounded by the block size
        dist = np.sqrt(np.maximum(entropy(mixed) - (h[rows][:, None] + h[None, :]) / 2.0, 0.0))
    else:
        raise MixingError(f"mixing.distance: unknown distance {metric!r}; choose one of {', '.join(DISTANCES)}")
    idx = np.arange(dist.shape[0])
    dist[idx, start + idx] = 0.0
    return dist


def summarise_distances(points: np.ndarray, metric: str = "l2", criterion: str = "mean") -> np.ndarray:
    """D_i: each dataset's distance to the others, computed in row blocks.

    ``mean`` divides the row sum by n, the zero self-distance included (the paper's definition); ``min`` and
    ``max`` are taken over the other datasets only.
    """
    if criterion not in CRITERIA:
        raise MixingError(f"mixing.criterion: unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    n = points.shape[0]
    block_rows = _BLOCK_ROWS
    if metric == "js":  # js holds a (block, n, N) array: keep it near 256 MB
        block_rows = max(1, min(_BLOCK_ROWS, 2**25 // max(n * points.shape[1], 1)))
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, block_rows):
        rows = slice(start, min(start + block_rows, n))
        dist = pairwise_distances(points, metric, rows)
        if criterion == "mean":
            out[rows] = dist.sum(axis=1) / n
        else:
            if n == 1:
                out[rows] = 0.0
                continue
            idx = np.arange(dist.shape[0])
            fill = np.inf if criterion == "min" else -np.inf
            dist[idx, start + idx] = fill
            out[rows] = dist.min(axis=1) if criterion == "min" else dist.max(axis=1)
    return out
