"""Every policy behind the one interface: hand-checked update rules, JSON state round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from moemix.config import MixingConfig
from moemix.errors import MixingError
from moemix.mixing import (
    CyclePolicy,
    DataSizePolicy,
    DynamicPolicy,
    EmbeddingPolicy,
    OnlineDataMixingPolicy,
    RandomPolicy,
    RefLossPolicy,
    SequentialPolicy,
    Signals,
    StaticPolicy,
    UniformPolicy,
    dynamic_update,
    from_state,
)

LOADS = np.array([[9, 1, 0, 0], [1, 9, 0, 0], [5, 5, 0, 0]])
# The knobs are the config's to default: a policy is built with all of them given.
PAPER = MixingConfig()


def _signals(step=10, **kw):
    return Signals(
        step=step, loads=LOADS, dev_loss=np.array([2.0, 3.0, 1.0]), train_loss=np.array([2.0, np.nan, 4.0]), **kw
    )


ALL = [
    UniformPolicy(),
    StaticPolicy([0.5, 0.3, 0.2]),
    DataSizePolicy([100, 300, 600], by="examples"),
    RandomPolicy(seed=3),
    CyclePolicy(),
    SequentialPolicy(windows=7),
    DynamicPolicy(eta=3.0, c=0.1, distance="js", criterion="max", noise_aware=False, noise_z=1.0),
    EmbeddingPolicy([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], eta=2.0, c=0.05, distance="cosine", criterion="mean"),
    RefLossPolicy([1.5, 1.5, 1.5], eta=1.0, c=0.05),
    OnlineDataMixingPolicy(alpha=0.5),
]


@pytest.mark.parametrize("policy", ALL, ids=lambda p: p.name)
def test_state_round_trip_replays_identically(policy):
    w = policy.initial_weights(3)
    assert abs(w.sum() - 1) < 1e-12
    first = policy.update(w, _signals(step=1))
    rebuilt = from_state(json.loads(json.dumps(policy.state_dict())))
    np.testing.assert_array_equal(rebuilt.update(first, _signals(step=2)), policy.update(first, _signals(step=2)))


def test_uniform_static_datasize_ignore_signals():
    assert np.allclose(UniformPolicy().update(np.array([0.7, 0.2, 0.1]), _signals()), 1 / 3)
    assert np.allclose(StaticPolicy([0.5, 0.3, 0.2]).update(np.full(3, 1 / 3), _signals()), [0.5, 0.3, 0.2])
    assert np.allclose(DataSizePolicy([100, 300, 600], by="examples").initial_weights(3), [0.1, 0.3, 0.6])


def test_random_is_seeded_per_step():
    p = RandomPolicy(seed=3)
    a, b = p.update(np.full(3, 1 / 3), _signals(step=5)), p.update(np.full(3, 1 / 3), _signals(step=5))
    c = p.update(np.full(3, 1 / 3), _signals(step=6))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and abs(c.sum() - 1) < 1e-12


def test_cycle_and_sequential_by_hand():
    cycle, w = CyclePolicy(), CyclePolicy().initial_weights(3)
    assert w.tolist() == [1, 0, 0]
    assert [int(np.argmax(cycle.update(w, _signals()))) for _ in range(4)] == [1, 2, 0, 1]
    # 4 windows (before the first update, then 3 updates) over 3 datasets: k * 3 // 4 = 0, 0, 1, 2.
    seq = SequentialPolicy(windows=4)
    assert seq.initial_weights(3).tolist() == [1, 0, 0]
    assert [int(np.argmax(seq.update(w, _signals()))) for _ in range(3)] == [0, 1, 2]
    # More windows than datasets: contiguous, in order, every dataset gets its turn.
    seq = SequentialPolicy(windows=7)
    order = [0] + [int(np.argmax(seq.update(w, _signals()))) for _ in range(6)]
    assert order == sorted(order) and set(order) == {0, 1, 2}


def test_dynamic_with_the_config_defaults_is_the_paper():
    w = np.full(3, 1 / 3)
    policy = DynamicPolicy(
        eta=PAPER.eta,
        c=PAPER.c,
        distance=PAPER.distance,
        criterion=PAPER.criterion,
        noise_aware=PAPER.noise_aware,
        noise_z=PAPER.noise_z,
    )
    assert (PAPER.eta, PAPER.c, PAPER.distance, PAPER.criterion, PAPER.noise_aware) == (10.0, 0.05, "l2", "mean", False)
    np.testing.assert_array_equal(policy.update(w, _signals()), dynamic_update(w, LOADS, eta=10.0, c=0.05))


def test_dynamic_min_max_cosine_by_hand():
    # Normalised loads O1 = [.9, .1], O2 = [.1, .9], O3 = [.5, .5]. Cosine distances:
    # d12 = 1 - .18/.82 = 0.780488, d13 = d23 = 1 - .5/sqrt(.82 * .5) = 0.219131.
    d12, d13 = 1 - 0.18 / 0.82, 1 - 0.5 / math.sqrt(0.82 * 0.5)
    for criterion, scores in {"min": [d13, d13, d13], "max": [d12, d12, d13]}.items():
        policy = DynamicPolicy(eta=1.0, c=0.0, distance="cosine", criterion=criterion, noise_aware=False, noise_z=1.0)
        w = policy.update(np.full(3, 1 / 3), _signals())
        expected = np.exp(scores) / np.exp(scores).sum()
        np.testing.assert_allclose(w, expected, rtol=1e-9)


def test_js_distance_by_hand():
    # JS between [1, 0] and [0, 1] is ln 2 (in nats): the distance is sqrt(ln 2).
    policy = DynamicPolicy(eta=1.0, c=0.0, distance="js", criterion="max", noise_aware=False, noise_z=1.0)
    w = policy.update(np.full(2, 0.5), Signals(step=1, loads=np.array([[4, 0], [0, 4]])))
    np.testing.assert_allclose(w, [0.5, 0.5])
    from moemix.mixing import pairwise_distances

    d = pairwise_distances(np.array([[1.0, 0.0], [0.0, 1.0]]), "js")
    np.testing.assert_allclose(d, [[0, math.sqrt(math.log(2))], [math.sqrt(math.log(2)), 0]], atol=1e-12)


def test_refloss_by_hand():
    # excess = max([2, 3, 1] - 1.5, 0) = [.5, 1.5, 0]; a = softmax(log(1/3) + excess)
    w = RefLossPolicy([1.5, 1.5, 1.5], eta=1.0, c=0.0).update(np.full(3, 1 / 3), _signals())
    e = np.exp([0.5, 1.5, 0.0])
    np.testing.assert_allclose(w, e / e.sum())


def test_odm_exp3_by_hand():
    # n = 3 after 99 updates. Rewards R = (1 - .5) * loss / pi for the arms seen: [3, 0, 6] (arm 1 unseen).
    # eps_t = min(1/n, sqrt(ln n / (n t))); pi = (1 - n eps_101) softmax(eps_100 R) + eps_101.
    policy = OnlineDataMixingPolicy(alpha=0.5, updates=99)
    w = policy.update(np.full(3, 1 / 3), _signals())
    np.testing.assert_allclose(policy.rewards, [3.0, 0.0, 6.0])
    eps100, eps101 = (min(1 / 3, math.sqrt(math.log(3) / (3 * t))) for t in (100, 101))
    soft = np.exp(eps100 * np.array([3.0, 0.0, 6.0]))
    soft /= soft.sum()
    expected = (1 - 3 * eps101) * soft + eps101
    np.testing.assert_allclose(w, expected / expected.sum())
    assert np.argmax(w) == 2  # the highest-loss arm gains


def test_odm_explores_uniformly_at_first():
    # Early on eps_t = 1/n: pure exploration, whatever the rewards.
    policy = OnlineDataMixingPolicy(alpha=PAPER.odm_alpha)
    np.testing.assert_allclose(policy.update(np.full(3, 1 / 3), _signals()), 1 / 3)


def test_embedding_moves_towards_the_distinct_dataset():
    policy = EmbeddingPolicy(
        [[1.0, 0.0], [0.95, 0.05], [0.0, 1.0]], eta=5.0, c=0.0, distance="cosine", criterion="mean"
    )
    w = policy.update(np.full(3, 1 / 3), Signals(step=1))
    assert np.argmax(w) == 2


def test_bad_policy_arguments():
    with pytest.raises(MixingError, match="sum to 1"):
        StaticPolicy([0.5, 0.6])
    with pytest.raises(MixingError, match="unknown distance 'manhattan'"):
        policy = DynamicPolicy(eta=1.0, c=0.0, distance="manhattan", criterion="mean", noise_aware=False, noise_z=1.0)
        policy.update(np.full(3, 1 / 3), _signals())
    with pytest.raises(MixingError, match="unknown policy 'doremi'"):
        from_state({"name": "doremi"})
    with pytest.raises(MixingError, match="expected 2 weights"):
        StaticPolicy([0.5, 0.3, 0.2]).initial_weights(2)
    with pytest.raises(MixingError, match="needs the loads signal"):
        policy = DynamicPolicy(eta=1.0, c=0.0, distance="l2", criterion="mean", noise_aware=False, noise_z=1.0)
        policy.update(np.full(3, 1 / 3), Signals(step=1))
