"""The noise-aware dynamic update: the paper's update on scores shrunk by their noise, a variant beside it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from moemix.config import MixingConfig
from moemix.errors import MixingError
from moemix.mixing import DynamicPolicy, Signals, from_state
from moemix.mixing.noise import routing_noise

PROBS = [[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.4, 0.3, 0.2, 0.1]]
ALIKE = [[0.3, 0.3, 0.2, 0.2]] * 4


def measure(rng, probs, examples, tokens=40, spread=20.0):
    """Per dataset, (examples, N) expert counts: each example routes by its own Dirichlet draw around probs."""
    return [
        np.array([rng.multinomial(tokens, rng.dirichlet(spread * np.asarray(p))) for _ in range(examples)])
        for p in probs
    ]


def policy(noise_aware: bool, z: float = 1.0, eta: float = 10.0, c: float = 0.05) -> DynamicPolicy:
    return DynamicPolicy(eta=eta, c=c, distance="l2", criterion="mean", noise_aware=noise_aware, noise_z=z)


def signals_of(units, seed=0) -> Signals:
    loads = np.stack([u.sum(axis=0) for u in units])
    return Signals(step=seed, loads=loads, noise=routing_noise(units, seed=[1, seed]))


def moved(weights: np.ndarray) -> float:
    """Total variation distance from uniform."""
    return 0.5 * float(np.abs(weights - 1 / len(weights)).sum())


def test_off_by_default_and_the_same_as_the_paper_when_off_or_at_z_zero():
    assert MixingConfig().noise_aware is False and MixingConfig().noise_z == 1.0
    signals = signals_of(measure(np.random.default_rng(0), PROBS, examples=20))
    w = np.full(4, 0.25)
    paper = policy(False).update(w, signals)
    np.testing.assert_array_equal(policy(True, z=0.0).update(w, signals), paper)
    assert policy(False).needs == frozenset({"loads"}) and policy(True).needs == frozenset({"loads", "noise"})


def test_on_loads_that_differ_only_by_noise_it_moves_far_less_than_the_paper():
    rng = np.random.default_rng(1)
    w = np.full(4, 0.25)
    paper, aware = [], []
    for k in range(30):
        signals = signals_of(measure(rng, ALIKE, examples=10), seed=k)
        paper.append(moved(policy(False, eta=30.0).update(w, signals)))
        aware.append(moved(policy(True, eta=30.0).update(w, signals)))
    assert np.mean(aware) < 0.25 * np.mean(paper), (np.mean(aware), np.mean(paper))


def test_on_clearly_distinct_loads_it_moves_about_as_far_as_the_paper():
    rng = np.random.default_rng(2)
    w = np.full(4, 0.25)
    for k in range(5):
        signals = signals_of(measure(rng, PROBS, examples=200), seed=k)
        assert signals.noise.snr > 3
        paper, aware = policy(False).update(w, signals), policy(True).update(w, signals)
        assert np.argmax(aware) == np.argmax(paper)
        assert 0.75 * moved(paper) < moved(aware) <= moved(paper)


def test_a_deviation_within_its_noise_leaves_that_weight_to_the_smoothing_alone():
    loads = np.array([[9, 1, 0, 0], [1, 9, 0, 0], [5, 5, 0, 0]], dtype=float)
    noise = routing_noise([np.stack([row, row]) for row in loads])  # two equal units: zero noise
    assert np.allclose(noise.score_se, 0.0, atol=1e-12)
    huge = dataclasses.replace(noise, score_se=np.full(3, 10.0))
    w = np.array([0.5, 0.3, 0.2])
    # Every deviation is inside its noise: the softmax sees equal scores and only c pulls towards uniform.
    np.testing.assert_allclose(
        policy(True, c=0.1).update(w, Signals(step=1, loads=loads, noise=huge)), 0.9 * w + 0.1 / 3
    )
    # Zero noise: exactly the paper's scores.
    np.testing.assert_allclose(
        policy(True).update(w, Signals(step=1, loads=loads, noise=noise)),
        policy(False).update(w, Signals(step=1, loads=loads)),
    )


def test_without_its_noise_or_with_another_distances_noise_it_says_so():
    units = measure(np.random.default_rng(3), PROBS, examples=8)
    loads = np.stack([u.sum(axis=0) for u in units])
    with pytest.raises(MixingError, match="noise_aware: needs the noise of the gate loads"):
        policy(True).update(np.full(4, 0.25), Signals(step=1, loads=loads))
    other = Signals(step=1, loads=loads, noise=routing_noise(units, distance="cosine"))
    with pytest.raises(MixingError, match="noise is of cosine/mean scores, the update's are l2/mean"):
        policy(True).update(np.full(4, 0.25), other)


def test_state_round_trip_keeps_the_variant():
    aware = policy(True, z=2.0)
    rebuilt = from_state(json.loads(json.dumps(aware.state_dict())))
    assert rebuilt.noise_aware and rebuilt.noise_z == 2.0 and "noise" in rebuilt.needs
    signals = signals_of(measure(np.random.default_rng(4), PROBS, examples=12))
    np.testing.assert_array_equal(rebuilt.update(np.full(4, 0.25), signals), aware.update(np.full(4, 0.25), signals))
