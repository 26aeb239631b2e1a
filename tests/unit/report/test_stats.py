"""Paired differences over seeds: t-interval, bootstrap interval, and the smallest detectable difference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moemix.report.stats import BOOTSTRAP_FROM, paired_difference


def test_t_interval_matches_the_textbook_formula():
    d = [-0.10, -0.05, -0.12, -0.08, -0.02]
    diff = paired_difference(d)
    # t_{0.975, 4} = 2.776445...; se = sd / sqrt(5)
    se = np.std(d, ddof=1) / math.sqrt(5)
    assert diff.mean == pytest.approx(np.mean(d))
    assert diff.low == pytest.approx(np.mean(d) - 2.7764451 * se, rel=1e-6)
    assert diff.high == pytest.approx(np.mean(d) + 2.7764451 * se, rel=1e-6)
    assert diff.excludes_zero and diff.high < 0


def test_an_interval_that_holds_zero_is_not_a_finding():
    diff = paired_difference([0.1, -0.1, 0.05, -0.04, 0.0])
    assert diff.low < 0 < diff.high
    assert not diff.excludes_zero


def test_detectable_difference_shrinks_with_more_seeds():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, 40)
    few, many = paired_difference(noise[:3]), paired_difference(noise)
    assert many.detectable < few.detectable
    # With 40 seeds the detectable size is about (1.96 + 0.84) * sd / sqrt(n).
    assert many.detectable == pytest.approx(2.8 * np.std(noise, ddof=1) / math.sqrt(40), rel=0.05)


def test_the_detectable_difference_is_found_about_as_often_as_promised():
    # Simulate comparisons whose true difference equals the detectable size computed from the true sd:
    # the t-interval should exclude 0 in roughly POWER = 80% of them.
    rng = np.random.default_rng(1)
    n, sd = 5, 0.04
    reference = paired_difference(rng.normal(0, sd, 100_000)[:n])  # any draw: only its formula is reused
    from scipy import stats

    delta = (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / math.sqrt(n)
    found = sum(paired_difference(rng.normal(delta, sd, n)).excludes_zero for _ in range(2000))
    assert 0.6 < found / 2000 < 0.9
    assert reference.n == n


def test_bootstrap_only_from_enough_seeds_and_deterministic():
    assert math.isnan(paired_difference([0.1, 0.2, 0.3]).boot_low)
    d = [0.1, 0.2, 0.3, -0.1, 0.05][:BOOTSTRAP_FROM]
    a, b = paired_difference(d), paired_difference(d)
    assert a.boot_low == b.boot_low and a.boot_high == b.boot_high
    assert min(d) <= a.boot_low <= a.mean <= a.boot_high <= max(d)


def test_one_seed_gives_a_mean_and_nothing_else():
    diff = paired_difference([0.3])
    assert diff.mean == 0.3 and math.isnan(diff.low) and math.isnan(diff.detectable) and not diff.excludes_zero
