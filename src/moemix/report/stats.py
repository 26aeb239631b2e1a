"""What a comparison over seeds can tell: paired differences, their confidence intervals, the detectable size.

Runs of two strategies with the same seed share their data order, initialisation and dev examples, so the
per-seed difference removes most of the seed-to-seed spread; the interval is over those differences. With few
seeds the interval is wide: :attr:`PairedDifference.detectable` says how large a true difference would have
to be for the comparison to find it most of the time, so "no difference found" reads as what it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
"""Confidence level of the intervals."""
POWER = 0.8
"""Chance of finding a true difference of :attr:`PairedDifference.detectable` (two-sided test at 1 - CONFIDENCE)."""
BOOTSTRAP_FROM = 5
"""Fewest seeds for a bootstrap interval: below it there are too few distinct resamples to mean anything."""
BOOTSTRAP_RESAMPLES = 9999


@dataclass(frozen=True)
class PairedDifference:
    """The per-seed differences of a strategy to the baseline, summarised.

    Attributes:
        n: Seeds that have both runs.
        mean: Mean difference (negative: lower than the baseline).
        sd: Sample standard deviation of the differences (NaN below 2 seeds).
        low, high: The t-interval of the mean at :data:`CONFIDENCE` (NaN below 2 seeds).
        boot_low, boot_high: Percentile bootstrap interval over seeds (NaN below :data:`BOOTSTRAP_FROM` seeds).
        detectable: Smallest true mean difference the comparison finds with probability :data:`POWER`
            (paired t-test, two-sided, at 1 - :data:`CONFIDENCE`), given the observed ``sd`` and ``n``.
    """

    n: int
    mean: float
    sd: float
    low: float
    high: float
    boot_low: float
    boot_high: float
    detectable: float

    @property
    def excludes_zero(self) -> bool:
        """The t-interval lies wholly on one side of 0: a difference the seeds can tell from noise."""
        return self.n >= 2 and (self.low > 0.0 or self.high < 0.0)


def paired_difference(differences: Sequence[float], seed: int = 0) -> PairedDifference:
    """Summarise per-seed differences (strategy minus baseline) with their intervals.

    Args:
        differences: One difference per seed.
        seed: Seed of the bootstrap resampling (the summary is deterministic).

    Returns:
        The summary; NaN where the number of seeds cannot give a value.
    """
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    n = int(d.size)
    nan = math.nan
    if n == 0:
        return PairedDifference(0, nan, nan, nan, nan, nan, nan, nan)
    mean = float(d.mean())
    if n < 2:
        return PairedDifference(n, mean, nan, nan, nan, nan, nan, nan)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
    # Normal-approximation power of the paired t-test with t quantiles: delta = (t_{1-a/2} + t_{power}) * se.
    detectable = (t + float(stats.t.ppf(POWER, n - 1))) * se
    boot_low = boot_high = nan
    if n >= BOOTSTRAP_FROM and sd > 0:
        result = stats.bootstrap(
            (d,),
            np.mean,
            confidence_level=CONFIDENCE,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
        boot_low, boot_high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    elif n >= BOOTSTRAP_FROM:  # every difference equal: the resamples are all the same
        boot_low = boot_high = mean
    return PairedDifference(n, mean, sd, mean - t * se, mean + t * se, boot_low, boot_high, detectable)


def format_interval(low: float, high: float, digits: int = 4) -> str:
    """``"[low, high]"`` with signs, or ``"-"`` when the interval is undefined."""
    if math.isnan(low) or math.isnan(high):
        return "-"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"
