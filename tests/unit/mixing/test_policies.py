"""Policies share one interface and round-trip their state through JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moemix.errors import MixingError
from moemix.mixing import DynamicPolicy, StaticPolicy, UniformPolicy, dynamic_update, from_state

LOADS = np.array([[9, 1, 0, 0], [1, 9, 0, 0], [5, 5, 0, 0]])


@pytest.mark.parametrize(
    "policy", [UniformPolicy(), StaticPolicy([0.5, 0.3, 0.2]), DynamicPolicy(eta=3.0, c=0.1)], ids=lambda p: p.name
)
def test_state_round_trip(policy):
    rebuilt = from_state(json.loads(json.dumps(policy.state_dict())))
    assert rebuilt == policy
    w = policy.initial_weights(3)
    np.testing.assert_array_equal(rebuilt.update(w, LOADS), policy.update(w, LOADS))


def test_uniform_and_static_ignore_loads():
    assert np.allclose(UniformPolicy().update(np.array([0.7, 0.2, 0.1]), LOADS), 1 / 3)
    static = StaticPolicy([0.5, 0.3, 0.2])
    assert np.allclose(static.update(np.full(3, 1 / 3), LOADS), [0.5, 0.3, 0.2])


def test_dynamic_policy_is_the_update():
    policy = DynamicPolicy(eta=10.0, c=0.05)
    w = policy.initial_weights(3)
    assert np.allclose(w, 1 / 3)
    np.testing.assert_array_equal(policy.update(w, LOADS), dynamic_update(w, LOADS, eta=10.0, c=0.05))


def test_bad_policy_arguments():
    with pytest.raises(MixingError, match="sum to 1"):
        StaticPolicy([0.5, 0.6])
    with pytest.raises(MixingError, match="eta"):
        DynamicPolicy(eta=-1)
    with pytest.raises(MixingError, match="unknown policy 'doremi'"):
        from_state({"name": "doremi"})
    with pytest.raises(MixingError, match="expected 2 weights"):
        StaticPolicy([0.5, 0.3, 0.2]).initial_weights(2)
