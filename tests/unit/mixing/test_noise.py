"""The routing signal's noise: a bootstrap over measured units that matches the spread of real re-measurements."""

from __future__ import annotations

import numpy as np
import pytest

from moemix.errors import MixingError
from moemix.mixing import summarise_distances
from moemix.mixing.noise import routing_noise, shrink_scores


def measure(rng, probs, examples, tokens=40, spread=20.0):
    """Per dataset, (examples, N) expert counts: each example routes by its own Dirichlet draw around probs."""
    out = []
    for p in probs:
        rows = [rng.multinomial(tokens, rng.dirichlet(spread * np.asarray(p))) for _ in range(examples)]
        out.append(np.array(rows))
    return out


def scores_of(units):
    loads = np.stack([u.sum(axis=0) / u.sum() for u in units])
    return summarise_distances(loads, "l2", "mean")


PROBS = [[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.4, 0.3, 0.2, 0.1]]


def test_bootstrap_standard_error_matches_the_spread_of_independent_measurements():
    rng = np.random.default_rng(0)
    repeats = np.stack([scores_of(measure(rng, PROBS, examples=20)) for _ in range(300)])
    true_sd = repeats.std(axis=0, ddof=1)
    estimates = np.stack([routing_noise(measure(rng, PROBS, examples=20), seed=k).score_se for k in range(20)])
    ratio = estimates.mean(axis=0) / true_sd
    assert np.all((ratio > 0.7) & (ratio < 1.3)), ratio


def test_datasets_that_route_alike_are_flagged_and_distinct_ones_are_not():
    rng = np.random.default_rng(1)
    alike = routing_noise(measure(rng, [[0.5, 0.5, 0.0, 0.0]] * 4, examples=10))
    assert alike.indistinguishable and alike.within_noise
    distinct = routing_noise(measure(rng, PROBS, examples=200))
    assert not distinct.indistinguishable and not distinct.within_noise
    assert distinct.snr > 3


def test_more_units_mean_less_noise():
    rng = np.random.default_rng(2)
    few = routing_noise(measure(rng, PROBS, examples=5)).load_noise.mean()
    many = routing_noise(measure(rng, PROBS, examples=200)).load_noise.mean()
    assert many < few / 3


def test_same_seed_same_estimate_and_record_is_json_ready():
    import json

    units = measure(np.random.default_rng(3), PROBS, examples=8)
    a, b = routing_noise(units, seed=[42, 100]), routing_noise(units, seed=[42, 100])
    assert np.array_equal(a.score_se, b.score_se)
    record = json.loads(json.dumps(a.to_record()))
    assert len(record["score_se"]) == 4 and record["units"] == [8] * 4


def test_a_dataset_without_units_has_no_noise_and_none_at_all_is_an_error():
    units = measure(np.random.default_rng(4), PROBS[:3], examples=6) + [np.zeros((0, 4))]
    noise = routing_noise(units)
    assert noise.units.tolist() == [6, 6, 6, 0] and noise.load_noise[3] == 0.0
    with pytest.raises(MixingError, match="no dataset"):
        routing_noise([np.zeros((0, 4))] * 2)


def test_shrinking_removes_what_is_within_noise_and_keeps_the_rest():
    scores = np.array([0.10, 0.12, 0.30, 0.08])
    se = np.full(4, 0.03)
    shrunk = shrink_scores(scores, se, z=1.0)
    mean = scores.mean()
    # 0.10 and 0.12 are within 0.03 of the mean 0.15? |d| = 0.05, 0.03 -> 0.02, 0.0; 0.30 keeps 0.15 - 0.03.
    assert shrunk[2] - mean == pytest.approx(0.15 - 0.03)
    assert shrunk[1] == pytest.approx(mean)
    assert shrunk[0] - mean == pytest.approx(-0.02)
    assert np.array_equal(shrink_scores(scores, se, z=0.0), scores)
    assert np.allclose(shrink_scores(scores, np.full(4, 1.0)), mean)
