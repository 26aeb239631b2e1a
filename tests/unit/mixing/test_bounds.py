"""Guard rails shared by every policy: floor and ceiling per weight, collapse detection."""

from __future__ import annotations

import numpy as np
import pytest

from moemix.errors import MixingError
from moemix.mixing import apply_bounds, collapsed


def test_floor_and_ceiling_by_hand():
    # [.9, .08, .02] with floor .05 and ceiling .6: .9 sits on the ceiling; the others keep their 4:1 ratio
    # and share the remaining .4 -> [.6, .32, .08] (both above the floor).
    np.testing.assert_allclose(apply_bounds(np.array([0.9, 0.08, 0.02]), 0.05, 0.6), [0.6, 0.32, 0.08])
    # [.97, .02, .01] with floor .05: both small ones go to the floor, the large one takes .9.
    np.testing.assert_allclose(apply_bounds(np.array([0.97, 0.02, 0.01]), 0.05, 1.0), [0.9, 0.05, 0.05])


@pytest.mark.parametrize("seed", range(20))
def test_bounds_hold_and_sum_to_one(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    w = rng.dirichlet(np.full(n, 0.3))
    floor, ceiling = 0.5 / n, min(1.0, 2.5 / n)
    out = apply_bounds(w, floor, ceiling)
    assert abs(out.sum() - 1) < 1e-12
    assert np.all(out >= floor - 1e-12) and np.all(out <= ceiling + 1e-12)


def test_no_bounds_is_identity_and_impossible_bounds_error():
    w = np.array([0.7, 0.2, 0.1])
    np.testing.assert_array_equal(apply_bounds(w), w)
    with pytest.raises(MixingError, match="no weights of 3 datasets"):
        apply_bounds(w, floor=0.4)


def test_collapse():
    assert collapsed(np.array([0.95, 0.03, 0.02]), 0.9) == 0
    assert collapsed(np.array([0.5, 0.3, 0.2]), 0.9) is None
