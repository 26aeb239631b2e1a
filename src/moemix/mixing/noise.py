"""How much of an update is signal: the sampling noise of the gate loads and of the distances built on them.

A dataset's gate load is measured on a finite sample (a few probe batches, or one window of training tokens),
so it would differ on another sample of the same data. Resampling the measured units (examples of the probe,
micro-batches online) with replacement and recomputing every dataset's load and score gives the spread the
update would have shown on other samples: a bootstrap, pure numpy, seeded by the update's step.

What moves the weights is each score's deviation from the mean score (softmax ignores a shift), so the
signal-to-noise ratio compares those deviations with the scores' standard errors. :func:`shrink_scores` is the
noise-aware variant of the update's input: each deviation is pulled towards 0 by ``z`` standard errors, so
the weights move only as far as the signal stands above its noise (and not at all where it does not).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moemix.errors import MixingError
from moemix.mixing.distances import summarise_distances

RESAMPLES = 100
"""Bootstrap resamples per update: the standard errors are within ~7% of their limit (1 / sqrt(2 * 100))."""
INDISTINGUISHABLE = 0.01
"""Largest pairwise load distance below which the loads carry no signal whatever the noise estimate says."""


@dataclass(frozen=True)
class RoutingNoise:
    """The noise of one update's routing signal.

    Attributes:
        load_noise: (n,) root-mean-square L2 distance of a dataset's resampled load from its measured load:
            the radius within which its load is uncertain, comparable with the distances between datasets.
        score_se: (n,) standard error of each dataset's score D_i (its distance to the others).
        snr: root-mean-square deviation of the scores from their mean over the root-mean-square standard error;
            below 1 the update's direction is within the noise.
        units: (n,) measured units (examples or micro-batches) per dataset.
        max_distance: The largest distance between two datasets' measured loads.
    """

    load_noise: np.ndarray
    score_se: np.ndarray
    snr: float
    units: np.ndarray
    max_distance: float

    @property
    def within_noise(self) -> bool:
        """The update's direction is not told apart from sampling noise (SNR below 1)."""
        return not self.snr >= 1.0  # NaN (no spread to measure) counts as within noise

    @property
    def indistinguishable(self) -> bool:
        """Every dataset routes alike: the largest distance is below :data:`INDISTINGUISHABLE` or within noise."""
        return self.max_distance < INDISTINGUISHABLE or self.max_distance < 2.0 * float(np.max(self.load_noise))

    def to_record(self) -> dict:
        """JSON-ready, as logged in ``mixture.jsonl`` under ``noise``."""
        return {
            "load_noise": [round(float(x), 6) for x in self.load_noise],
            "score_se": [round(float(x), 6) for x in self.score_se],
            "snr": None if math.isnan(self.snr) else round(float(self.snr), 4),
            "units": [int(u) for u in self.units],
            "max_distance": round(float(self.max_distance), 6),
        }


def _normalise(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=-1, keepdims=True)
    return counts / np.where(totals == 0, 1.0, totals)


def routing_noise(
    units: Sequence[np.ndarray],
    distance: str = "l2",
    criterion: str = "mean",
    resamples: int = RESAMPLES,
    seed: Sequence[int] | int = 0,
) -> RoutingNoise:
    """Bootstrap the loads and scores of one update over its measured units.

    Args:
        units: Per dataset, a ``(m_i, N)`` array of expert counts, one row per measured unit (an example of
            the probe, a micro-batch online); their sum is the dataset's load. A dataset with no unit keeps a
            zero noise (its load is carried or the update is skipped elsewhere).
        distance: The distance of the update (``l2``, ``cosine``, ``js``).
        criterion: How distances become scores (``mean``, ``min``, ``max``).
        resamples: Bootstrap resamples.
        seed: Seed of the resampling (e.g. ``[run seed, step]``), so a resumed run logs the same noise.

    Returns:
        The noise estimate.
    """
    rows = [np.asarray(u, dtype=np.float64).reshape(len(u), -1) if len(u) else None for u in units]
    known = [r.shape[1] for r in rows if r is not None]
    if not known:
        raise MixingError("routing noise: no dataset has a measured unit")
    width = known[0]
    n = len(rows)
    measured = np.stack([_normalise(r.sum(axis=0)) if r is not None else np.zeros(width) for r in rows])
    base = summarise_distances(measured, distance, criterion)
    rng = np.random.default_rng(seed)
    scores = np.empty((resamples, n))
    spread = np.zeros(n)
    for b in range(resamples):
        loads = measured.copy()
        for i, r in enumerate(rows):
            if r is not None and len(r) > 1:
                loads[i] = _normalise(r[rng.integers(0, len(r), len(r))].sum(axis=0))
        spread += ((loads - measured) ** 2).sum(axis=1)
        scores[b] = summarise_distances(loads, distance, criterion)
    score_se = scores.std(axis=0, ddof=1) if resamples > 1 else np.zeros(n)
    deviation = base - base.mean()
    noise_rms = math.sqrt(float(np.mean(score_se**2)))
    signal_rms = math.sqrt(float(np.mean(deviation**2)))
    snr = signal_rms / noise_rms if noise_rms > 0 else (math.inf if signal_rms > 0 else math.nan)
    pair = summarise_distances(measured, "l2", "max") if n > 1 else np.zeros(1)
    return RoutingNoise(
        load_noise=np.sqrt(spread / resamples),
        score_se=score_se,
        snr=snr,
        units=np.array([0 if r is None else len(r) for r in rows]),
        max_distance=float(pair.max()),
    )


def shrink_scores(scores: np.ndarray, score_se: np.ndarray, z: float = 1.0) -> np.ndarray:
    """Pull each score's deviation from the mean towards 0 by ``z`` standard errors (soft thresholding).

    ``s_i = mean + sign(d_i) * max(|d_i| - z * se_i, 0)`` with ``d_i = scores_i - mean``. A deviation inside
    its noise becomes 0 (that dataset's weight follows only the smoothing), one well above it keeps all but
    ``z`` standard errors. Softmax ignores the common ``mean``.

    Args:
        scores: (n,) the update's scores D_i.
        score_se: (n,) their standard errors (:attr:`RoutingNoise.score_se`).
        z: How many standard errors count as noise (>= 0; 0 is the plain update).

    Returns:
        (n,) the shrunk scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    mean = scores.mean()
    deviation = scores - mean
    return mean + np.sign(deviation) * np.maximum(np.abs(deviation) - z * np.asarray(score_se, dtype=np.float64), 0.0)
