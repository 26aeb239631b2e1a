"""The mixture sampler: seeded, weighted, epoch-complete, and weight changes take effect on the next draw."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moemix.data import MixtureSampler, counter_uniform
from moemix.errors import MixingError


def _draws(sampler, k):
    return [sampler.draw() for _ in range(k)]


def test_same_seed_same_sequence_other_seed_differs():
    a = _draws(MixtureSampler([50, 30, 20], [0.5, 0.3, 0.2], seed=7), 500)
    b = _draws(MixtureSampler([50, 30, 20], [0.5, 0.3, 0.2], seed=7), 500)
    c = _draws(MixtureSampler([50, 30, 20], [0.5, 0.3, 0.2], seed=8), 500)
    assert a == b
    assert a != c


def test_frequencies_follow_weights():
    sampler = MixtureSampler([1000, 1000, 1000], [0.6, 0.3, 0.1], seed=0)
    ds = np.array([d for d, _ in _draws(sampler, 20000)])
    freq = np.bincount(ds, minlength=3) / len(ds)
    np.testing.assert_allclose(freq, [0.6, 0.3, 0.1], atol=0.015)


def test_every_example_once_per_epoch():
    # The model test: within an epoch of a dataset, each of its examples is drawn exactly once.
    sizes = [7, 13, 5]
    sampler = MixtureSampler(sizes, [0.2, 0.5, 0.3], seed=3)
    seen = [[] for _ in sizes]
    for d, e in _draws(sampler, 3000):
        seen[d].append(e)
    for d, examples in enumerate(seen):
        full_epochs = len(examples) // sizes[d]
        assert full_epochs >= 2
        for k in range(full_epochs):
            assert sorted(examples[k * sizes[d] : (k + 1) * sizes[d]]) == list(range(sizes[d]))
        # Epochs are shuffled differently.
        assert examples[: sizes[d]] != examples[sizes[d] : 2 * sizes[d]]


def test_set_weights_takes_effect_on_next_draw():
    sampler = MixtureSampler([100, 100], [0.5, 0.5], seed=1)
    _draws(sampler, 10)
    sampler.set_weights([0.0, 1.0])
    assert {d for d, _ in _draws(sampler, 200)} == {1}
    sampler.set_weights([1.0, 0.0])
    assert {d for d, _ in _draws(sampler, 200)} == {0}


def test_draw_depends_only_on_seed_counter_and_weights():
    # Counter-based: the dataset choice of draw i is a function of (seed, i, weights), not of the past.
    w = np.array([0.25, 0.25, 0.5])
    sampler = MixtureSampler([10, 10, 10], w, seed=5)
    choices = [d for d, _ in _draws(sampler, 100)]
    cum = np.cumsum(w)
    expected = [int(np.searchsorted(cum, counter_uniform(5, i), side="right")) for i in range(100)]
    assert choices == expected


def test_state_round_trip_continues_sequence():
    a = MixtureSampler([9, 4, 6], [0.3, 0.3, 0.4], seed=2)
    _draws(a, 37)
    a.set_weights([0.1, 0.1, 0.8])
    state = json.loads(json.dumps(a.state_dict()))
    b = MixtureSampler([9, 4, 6], [1 / 3, 1 / 3, 1 / 3], seed=2)
    b.load_state_dict(state)
    assert _draws(a, 100) == _draws(b, 100)


def test_bad_weights_rejected():
    sampler = MixtureSampler([3, 3], [0.5, 0.5])
    with pytest.raises(MixingError, match="sum to 1"):
        sampler.set_weights([0.5, 0.6])
    with pytest.raises(MixingError, match="non-negative"):
        sampler.set_weights([1.5, -0.5])
