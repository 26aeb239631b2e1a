"""How much of an update is signal: the sampling noise of the gate loads and of the distances built on them.

A dataset's gate load is measured on a finite sample (a few probe batches, or one window of training tokens),
so it would differ on another sample of the same data. Resampling the measured units (examples of the probe,
groups of training sequences online) with replacement and recomputing every dataset's load and score gives the
spread the update would have shown on other samples: a bootstrap, pure numpy, seeded by the update's step.
Its standard errors match the spread of independent re-measurements within ~15% from about 20 units per
dataset; with a handful of units of wide loads it overstates them (1.5 times at 6 units of 64 experts),
erring towards calling a signal noise.

What moves the weights is each score's deviation from the mean score (softmax ignores a shift), so the
signal-to-noise ratio compares those deviations with the scores' standard errors. :func:`shrink_scores` is
the noise-aware variant of the update's input: each deviation is pulled towards 0 by ``z`` standard errors,
so the weights move only as far as the signal stands above its noise (and not at all where it does not).
Noise also inflates distances, most for the datasets measured on the fewest units (a dataset measured on 5
examples beside three on 40, all routing alike, drew 0.30 of the weight from the paper's update at eta 10
and 0.26 from the shrunk one); removing the bootstrap's estimate of that bias as well changed the error of
the deviations by a tenth of a standard error in simulations, so the update does not.
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
MAX_DATASETS = 256
"""Most datasets whose noise an update estimates unless the policy reads it: each resample recomputes every
distance (n^2 of them), so past a few hundred datasets the estimate costs more than the update it checks."""
INDISTINGUISHABLE = 0.01
"""Largest pairwise load distance below which the loads carry no signal whatever the noise estimate says."""
SEPARATION = math.sqrt(2.0)
"""Loads whose spread is below this many noise radii are indistinguishable: on datasets that route alike the
separation is about 1 (the spread is all noise), on clearly distinct ones several."""
_BLOCK_NUMBERS = 2**22


@dataclass(frozen=True)
class RoutingNoise:
    """The noise of one update's routing signal.

    Attributes:
        scores: (n,) the measured scores D_i of the update's distance and criterion.
        load_noise: (n,) root-mean-square L2 distance of a dataset's resampled load from its measured load:
            the radius within which its load is uncertain, comparable with the distances between datasets.
        score_se: (n,) standard error of each dataset's score D_i (its distance to the others).
        snr: root-mean-square deviation of the scores from their mean over the root-mean-square standard error;
            below 1 the update's direction is within the noise.
        separation: root-mean-square distance of the loads from their mean load over the root-mean-square
            load noise: about 1 when every dataset routes alike, large when the loads differ.
        units: (n,) measured units (examples or groups of sequences) per dataset.
        max_distance: The largest distance between two datasets' measured loads.
        distance: The distance the scores were computed with.
        criterion: The criterion the scores were computed with.
    """

    scores: np.ndarray
    load_noise: np.ndarray
    score_se: np.ndarray
    snr: float
    separation: float
    units: np.ndarray
    max_distance: float
    distance: str = "l2"
    criterion: str = "mean"

    @property
    def within_noise(self) -> bool:
        """The update's direction is not told apart from sampling noise (SNR below 1)."""
        return not self.snr >= 1.0  # NaN (no spread to measure) counts as within noise

    @property
    def indistinguishable(self) -> bool:
        """Every dataset routes alike: the loads are all within :data:`INDISTINGUISHABLE` of each other, or
        their spread is no larger than their noise (:attr:`separation` below :data:`SEPARATION`)."""
        return self.max_distance < INDISTINGUISHABLE or self.separation < SEPARATION

    def to_record(self) -> dict:
        """JSON-ready, as logged in ``mixture.jsonl`` under ``noise`` (what a replay needs, and the figures)."""

        def number(x: float, digits: int = 4) -> float | None:
            return None if math.isnan(x) else x if math.isinf(x) else round(float(x), digits)

        return {
            "snr": number(self.snr),
            "separation": number(self.separation),
            # in full: a replay of the noise-aware update reads them and must give the run's weights exactly
            "scores": [float(x) for x in self.scores],
            "score_se": [float(x) for x in self.score_se],
            "load_noise": [round(float(x), 6) for x in self.load_noise],
            "units": [int(u) for u in self.units],
            "max_distance": round(float(self.max_distance), 6),
            "within_noise": self.within_noise,
            "indistinguishable": self.indistinguishable,
            "distance": self.distance,
            "criterion": self.criterion,
        }

    @classmethod
    def from_record(cls, record: dict) -> RoutingNoise:
        """Rebuild the estimate from :meth:`to_record`'s dict (a replay reads it from ``mixture.jsonl``).

        Raises:
            MixingError: If the record lacks a field.
        """
        try:
            return cls(
                scores=np.asarray(record["scores"], dtype=np.float64),
                load_noise=np.asarray(record["load_noise"], dtype=np.float64),
                score_se=np.asarray(record["score_se"], dtype=np.float64),
                snr=math.nan if record["snr"] is None else float(record["snr"]),
                separation=math.nan if record["separation"] is None else float(record["separation"]),
                units=np.asarray(record["units"], dtype=np.int64),
                max_distance=float(record["max_distance"]),
                distance=record["distance"],
                criterion=record["criterion"],
            )
        except KeyError as err:
            raise MixingError(f"logged noise: no {err.args[0]!r} field") from None


def _normalise(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=-1, keepdims=True)
    return counts / np.where(totals == 0, 1.0, totals)


def _ratio(signal: float, noise: float) -> float:
    if noise > 0:
        return signal / noise
    return math.inf if signal > 0 else math.nan


def routing_noise(
    units: Sequence[np.ndarray],
    distance: str = "l2",
    criterion: str = "mean",
    resamples: int = RESAMPLES,
    seed: Sequence[int] | int = 0,
    loads: np.ndarray | None = None,
    fresh: Sequence[float] | None = None,
) -> RoutingNoise:
    """Bootstrap the loads and scores of one update over its measured units.

    Args:
        units: Per dataset, a ``(m_i, N)`` array of expert counts, one row per measured unit (an example of
            the probe, a group of training sequences online); their sum is the dataset's load of the window.
            Rows without counts are left out. A dataset with fewer than two units keeps a zero noise.
        distance: The distance of the update (``l2``, ``cosine``, ``js``).
        criterion: How distances become scores (``mean``, ``min``, ``max``).
        resamples: Bootstrap resamples.
        seed: Seed of the resampling (e.g. ``[run seed, step]``), so a resumed run logs the same noise.
        loads: ``(n, N)`` the loads the update used, rows summing to 1 (a dataset without tokens keeps an
            earlier load; smoothing mixes earlier loads in); default the units' normalised sums.
        fresh: ``(n,)`` share of each row of ``loads`` that this window's units make: ``1 - load_ema`` when
            loads are smoothed, 0 for a dataset whose earlier load was kept; default 1.

    Returns:
        The noise estimate.

    Raises:
        MixingError: If no dataset has a measured unit.
    """
    rows = []
    for u in units:
        r = np.asarray(u, dtype=np.float64).reshape(len(u), -1) if len(u) else None
        if r is not None:
            r = r[r.sum(axis=1) > 0]  # a unit that routed no counted token measures nothing
        rows.append(r if r is not None and len(r) else None)
    known = [r.shape[1] for r in rows if r is not None]
    if not known:
        raise MixingError("routing noise: no dataset has a measured unit")
    width = known[0]
    n = len(rows)
    window = np.stack([_normalise(r.sum(axis=0)) if r is not None else np.zeros(width) for r in rows])
    measured = window if loads is None else np.asarray(loads, dtype=np.float64)
    share = np.ones(n) if fresh is None else np.asarray(fresh, dtype=np.float64)
    base = summarise_distances(measured, distance, criterion)
    rng = np.random.default_rng(seed)
    scores = np.empty((resamples, n))
    squared = np.zeros(n)
    # Resamples in blocks of a few million numbers, so that hundreds of datasets of wide loads (several
    # layers) stay within tens of MB; drawing m units with replacement is a multinomial count per unit.
    chunk = max(1, min(resamples, _BLOCK_NUMBERS // max(n * width, 1)))
    for start in range(0, resamples, chunk):
        block = np.repeat(measured[None], min(chunk, resamples - start), axis=0)
        for i, r in enumerate(rows):
            if r is not None and len(r) > 1 and share[i] > 0:
                draws = rng.multinomial(len(r), np.full(len(r), 1.0 / len(r)), size=len(block))
                block[:, i] += share[i] * (_normalise(draws @ r) - window[i])
        squared += ((block - measured) ** 2).sum(axis=2).sum(axis=0)
        for b, loads_b in enumerate(block):
            scores[start + b] = summarise_distances(loads_b, distance, criterion)
    score_se = scores.std(axis=0, ddof=1) if resamples > 1 else np.zeros(n)
    load_noise = np.sqrt(squared / resamples)
    deviation = base - base.mean()
    snr = _ratio(math.sqrt(float(np.mean(deviation**2))), math.sqrt(float(np.mean(score_se**2))))
    spread = ((measured - measured.mean(axis=0)) ** 2).sum(axis=1)
    separation = _ratio(math.sqrt(float(spread.mean())), math.sqrt(float(np.mean(load_noise**2))))
    pair = summarise_distances(measured, "l2", "max") if n > 1 else np.zeros(1)
    return RoutingNoise(
        scores=base,
        load_noise=load_noise,
        score_se=score_se,
        snr=snr,
        separation=separation,
        units=np.array([0 if r is None else len(r) for r in rows]),
        max_distance=float(pair.max()),
        distance=distance,
        criterion=criterion,
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
