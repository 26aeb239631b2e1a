"""The paper's update: datasets whose gate loads differ most from the others gain weight.

Dynamic Data Mixing (Zhu et al., NAACL 2025, arXiv 2406.11256), eqs. for the redundancy-aware weights:
``D_i = (1/n) sum_j ||O_i - O_j||_2``, ``a = softmax(log w + eta * D)``, ``w = (1 - c) a + c / n``.
"""

from __future__ import annotations

import numpy as np

from moemix.errors import MixingError

# Rows of the distance matrix computed at once: bounds the temporary (block x n) arrays, so that
# 10,000 datasets need a few hundred MB at most, never an n x n x N difference array.
_BLOCK_ROWS = 1024
# From this many datasets on, Gram products run in float32 (see mean_distances).
_FLOAT32_FROM = 4096


def normalise_loads(loads: np.ndarray) -> np.ndarray:
    """Turn raw expert counts into distributions that sum to 1 per row.

    Args:
        loads: (n, N) non-negative expert counts (or loads), one row per dataset.

    Returns:
        float64 array of the same shape whose rows sum to 1.

    Raises:
        MixingError: if the array is not 2-D, holds negative or non-finite values, or a row sums to 0.
    """
    loads = np.asarray(loads, dtype=np.float64)
    if loads.ndim != 2:
        raise MixingError(f"loads: expected a 2-D array (datasets x experts), got shape {loads.shape}")
    if not np.all(np.isfinite(loads)) or np.any(loads < 0):
        raise MixingError("loads: expert counts must be finite and non-negative")
    totals = loads.sum(axis=1, keepdims=True)
    empty = np.flatnonzero(totals[:, 0] == 0)
    if empty.size:
        raise MixingError(f"loads: dataset row {int(empty[0])} has no expert counts (all zero)")
    return loads / totals


def pairwise_l2(points: np.ndarray, rows: slice | None = None) -> np.ndarray:
    """L2 distances between ``points[rows]`` and all points, through the Gram form.

    ``||a - b||^2 = |a|^2 + |b|^2 - 2 a.b``: one matrix product instead of an (n, n, N) difference array.

    Args:
        points: (n, N) array.
        rows: the rows to compute distances for (default: all, giving the full n x n matrix).

    Returns:
        (len(rows), n) float64 array of distances, exactly 0 on the diagonal.
    """
    points = np.asarray(points, dtype=np.float64)
    rows = rows if rows is not None else slice(0, points.shape[0])
    sq = np.einsum("ij,ij->i", points, points)
    block = points[rows]
    d2 = sq[rows][:, None] + sq[None, :] - 2.0 * (block @ points.T)
    np.maximum(d2, 0.0, out=d2)  # rounding can make tiny squared distances negative
    dist = np.sqrt(d2)
    start = rows.start or 0
    idx = np.arange(dist.shape[0])
    dist[idx, start + idx] = 0.0
    return dist


def mean_distances(points: np.ndarray) -> np.ndarray:
    """D_i: the mean over j of ``||p_i - p_j||_2``, the zero self-distance included (divides by n).

    The distance matrix is symmetric, so only the blocks j >= i are computed, each adding its row sums to
    block i and its column sums to block j: half the work, memory O(block x block). From a few thousand
    datasets on, the Gram products run in float32 (distances of probability vectors change by ~1e-8,
    nothing against eta * D) and the squared norms stay float64.
    """
    points = np.asarray(points, dtype=np.float64)
    n = points.shape[0]
    sq = np.einsum("ij,ij->i", points, points)
    gram_points = points.astype(np.float32) if n >= _FLOAT32_FROM else points
    sums = np.zeros(n, dtype=np.float64)
    for i0 in range(0, n, _BLOCK_ROWS):
        i1 = min(i0 + _BLOCK_ROWS, n)
        for j0 in range(i0, n, _BLOCK_ROWS):
            j1 = min(j0 + _BLOCK_ROWS, n)
            d2 = sq[i0:i1, None] + sq[None, j0:j1] - 2.0 * (gram_points[i0:i1] @ gram_points[j0:j1].T)
            np.maximum(d2, 0.0, out=d2)
            dist = np.sqrt(d2, out=d2)
            if i0 == j0:
                np.fill_diagonal(dist, 0.0)
                sums[i0:i1] += dist.sum(axis=1)
            else:
                sums[i0:i1] += dist.sum(axis=1)
                sums[j0:j1] += dist.sum(axis=0)
    return sums / n


def check_weights(weights: np.ndarray, n: int | None = None, what: str = "weights") -> np.ndarray:
    """Validate mixture weights: 1-D, finite, non-negative, summing to 1 (tolerance 1e-6).

    Raises:
        MixingError: naming the rule broken.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise MixingError(f"{what}: expected a non-empty 1-D array, got shape {w.shape}")
    if n is not None and w.size != n:
        raise MixingError(f"{what}: expected {n} weights (one per dataset), got {w.size}")
    if not np.all(np.isfinite(w)):
        raise MixingError(f"{what}: must be finite")
    if np.any(w < 0):
        raise MixingError(f"{what}: must be non-negative, got {w.min():g} at position {int(w.argmin())}")
    if abs(w.sum() - 1.0) > 1e-6:
        raise MixingError(f"{what}: must sum to 1, they sum to {w.sum():.6g}")
    return w


def check_params(eta: float, c: float) -> None:
    """Validate the update's knobs: ``eta >= 0`` and ``0 <= c <= 1``."""
    if not np.isfinite(eta) or eta < 0:
        raise MixingError(f"mixing.eta: must be >= 0, got {eta}")
    if not np.isfinite(c) or not 0.0 <= c <= 1.0:
        raise MixingError(f"mixing.c: must be in [0, 1], got {c}")


def dynamic_update(weights: np.ndarray, loads: np.ndarray, eta: float, c: float) -> np.ndarray:
    """One step of the paper's dynamic sampling-weight update.

    Args:
        weights: (n,) current sampling weights, non-negative, summing to 1.
        loads: (n, N) raw expert counts of the last MoE layer per dataset; normalised per row here.
        eta: step size of the update (>= 0; the paper's 10 is ``moemix.config.MixingConfig().eta``).
        c: smoothing towards uniform (in [0, 1]); keeps every dataset's weight >= c / n.

    Returns:
        (n,) float64 array of new weights summing to 1.

    Raises:
        MixingError: on invalid weights, loads, eta or c.
    """
    check_params(eta, c)
    probs = normalise_loads(loads)
    w = check_weights(weights, n=probs.shape[0])
    return exponentiated_update(w, mean_distances(probs), eta, c)


def exponentiated_update(weights: np.ndarray, scores: np.ndarray, eta: float, c: float) -> np.ndarray:
    """``a = softmax(log w + eta * scores)``, then ``(1 - c) a + c / n``, renormalised.

    The step shared by the paper's update and the policies built on it (other distances, embeddings,
    reference loss). A zero weight stays zero before smoothing (log 0 = -inf).
    """
    n = weights.size
    with np.errstate(divide="ignore"):
        logits = np.log(weights) + eta * np.asarray(scores, dtype=np.float64)
    logits -= logits.max()
    a = np.exp(logits)
    a /= a.sum()
    smoothed = (1.0 - c) * a + c / n
    return smoothed / smoothed.sum()
