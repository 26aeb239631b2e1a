"""The routing signal's noise: a bootstrap over measured units that matches the spread of real re-measurements."""

from __future__ import annotations

import numpy as np
import pytest

from moemix.errors import MixingError
from moemix.mixing import summarise_distances
from moemix.mixing.noise import RoutingNoise, routing_noise, shrink_scores


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


def test_a_kept_load_has_no_noise_and_a_smoothed_one_the_window_share_of_it():
    units = measure(np.random.default_rng(5), PROBS, examples=20)
    window = np.stack([u.sum(axis=0) / u.sum() for u in units])
    plain = routing_noise(units, seed=1)
    # Dataset 3 kept an earlier load (share 0); the others mixed half an earlier load in (load_ema 0.5).
    earlier = np.full(4, 0.25)
    loads = 0.5 * earlier + 0.5 * window
    loads[3] = earlier
    smoothed = routing_noise(units, seed=1, loads=loads, fresh=[0.5, 0.5, 0.5, 0.0])
    assert smoothed.load_noise[3] == 0.0
    np.testing.assert_allclose(smoothed.load_noise[:3], 0.5 * plain.load_noise[:3], rtol=1e-9)
    # The scores are those of the loads the update saw, not of the window's.
    np.testing.assert_allclose(smoothed.scores, summarise_distances(loads, "l2", "mean"))


def test_units_without_counts_measure_nothing():
    units = measure(np.random.default_rng(6), PROBS, examples=10)
    padded = [np.concatenate([u, np.zeros((7, 4))]) for u in units]
    a, b = routing_noise(units, seed=3), routing_noise(padded, seed=3)
    assert b.units.tolist() == [10] * 4
    np.testing.assert_array_equal(a.score_se, b.score_se)


def test_separation_is_about_one_on_alike_loads_and_large_on_distinct_ones():
    rng = np.random.default_rng(7)
    alike = [routing_noise(measure(rng, [[0.3, 0.3, 0.2, 0.2]] * 15, examples=40), seed=k) for k in range(5)]
    assert all(0.5 < a.separation < 1.41 and a.indistinguishable for a in alike)
    distinct = routing_noise(measure(rng, PROBS, examples=40))
    assert distinct.separation > 3 and not distinct.indistinguishable


def test_the_logged_record_rebuilds_the_estimate():
    import json

    noise = routing_noise(measure(np.random.default_rng(8), PROBS, examples=12), distance="js", criterion="max")
    rebuilt = RoutingNoise.from_record(json.loads(json.dumps(noise.to_record())))
    np.testing.assert_allclose(rebuilt.score_se, noise.score_se, atol=1e-6)
    np.testing.assert_allclose(rebuilt.scores, noise.scores, atol=1e-6)
    assert (rebuilt.distance, rebuilt.criterion) == ("js", "max")
    assert rebuilt.snr == pytest.approx(noise.snr, abs=1e-4)
    with pytest.raises(MixingError, match="no 'scores' field"):
        RoutingNoise.from_record({k: v for k, v in noise.to_record().items() if k != "scores"})


def test_hundreds_of_datasets_of_wide_loads_still_match_the_spread_of_re_measurements():
    # 300 datasets x 64 experts: the resamples are drawn in blocks to bound memory; the estimate is still right.
    # (With 6 units instead of 20 the bootstrap overstates these standard errors about 1.5 times: it errs towards
    # calling a signal noise.)
    rng = np.random.default_rng(9)
    probs = rng.dirichlet(np.full(64, 2.0), size=300)
    repeats = np.stack([scores_of(measure(rng, probs, examples=20, tokens=100)) for _ in range(40)])
    noise = routing_noise(measure(rng, probs, examples=20, tokens=100), resamples=60)
    ratio = noise.score_se.mean() / repeats.std(axis=0, ddof=1).mean()
    assert 0.7 < ratio < 1.3, ratio
