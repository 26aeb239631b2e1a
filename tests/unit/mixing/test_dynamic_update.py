"""The paper's update pinned on hand-computed cases, and its invariants over random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from moemix.errors import MixingError
from moemix.mixing import dynamic_update, mean_distances, pairwise_l2

# Three datasets over two experts. Raw counts, normalised inside the update:
#   O1 = [1, 0], O2 = [0, 1], O3 = [1/2, 1/2]
#   d12 = sqrt(2), d13 = d23 = sqrt(1/2)
#   D1 = D2 = (0 + sqrt(2) + sqrt(1/2)) / 3 = 0.70710678..., D3 = (2 sqrt(1/2)) / 3 = 0.47140452...
# eta = 10, uniform w: a1 = a2 = 1 / (2 + e^{-10 (D1 - D3)}) = 0.477394..., a3 = 0.045213...
# c = 0.05: w' = 0.95 a + 0.05 / 3 -> [0.470191848, 0.470191848, 0.059616303]
COUNTS = np.array([[4, 0], [0, 2], [3, 3]])


def test_mean_distances_by_hand():
    probs = COUNTS / COUNTS.sum(axis=1, keepdims=True)
    r2 = np.sqrt(2.0)
    np.testing.assert_allclose(mean_distances(probs), [r2 / 2, r2 / 2, r2 / 3], rtol=1e-12)


def test_update_by_hand_uniform_start_with_smoothing():
    w = dynamic_update(np.full(3, 1 / 3), COUNTS, eta=10.0, c=0.05)
    np.testing.assert_allclose(w, [0.470191848, 0.470191848, 0.059616303], atol=1e-9)


def test_update_by_hand_from_unequal_weights():
    # a = softmax(log w + eta D) with w = [.5, .25, .25], eta = 1, then c = 0.1 smoothing.
    w = dynamic_update(np.array([0.5, 0.25, 0.25]), COUNTS, eta=1.0, c=0.1)
    np.testing.assert_allclose(w, [0.508265383, 0.270799358, 0.220935259], atol=1e-9)


def test_eta_zero_and_full_smoothing():
    w0 = np.array([0.6, 0.3, 0.1])
    np.testing.assert_allclose(dynamic_update(w0, COUNTS, eta=0.0, c=0.0), w0)
    np.testing.assert_allclose(dynamic_update(w0, COUNTS, eta=10.0, c=1.0), np.full(3, 1 / 3))


def test_identical_loads_keep_weights():
    w0 = np.array([0.2, 0.3, 0.5])
    loads = np.tile([5, 1, 7, 3], (3, 1)) * np.array([[1], [2], [10]])  # same distribution, other scales
    np.testing.assert_allclose(dynamic_update(w0, loads, eta=10.0, c=0.0), w0, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_invariants_random(seed):
    rng = np.random.default_rng(seed)
    n, experts = rng.integers(2, 40), rng.integers(2, 64)
    w = rng.dirichlet(np.ones(n))
    loads = rng.integers(0, 100, size=(n, experts)) + 1
    c = 0.05
    new = dynamic_update(w, loads, eta=10.0, c=c)
    assert new.shape == (n,)
    assert abs(new.sum() - 1.0) < 1e-12
    assert np.all(new >= c / n * (1 - 1e-9))  # smoothing floor
    # Without smoothing, a_i / w_i grows with exp(eta D_i): the dataset farthest from the others gains most.
    probs = loads / loads.sum(axis=1, keepdims=True)
    ratio = dynamic_update(w, loads, eta=10.0, c=0.0) / w
    assert np.argmax(ratio) == np.argmax(mean_distances(probs))


def test_gram_distances_match_naive():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(16), size=30)
    naive = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)
    np.testing.assert_allclose(pairwise_l2(p), naive, atol=1e-7)
    np.testing.assert_allclose(pairwise_l2(p, slice(5, 9)), naive[5:9], atol=1e-7)
    assert np.all(np.diag(pairwise_l2(p)) == 0)


def test_many_datasets_blocked():
    # More rows than one block: the blocked mean equals the full-matrix mean.
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(8), size=2500)
    full = pairwise_l2(p).mean(axis=1)
    np.testing.assert_allclose(mean_distances(p), full, atol=1e-9)


@pytest.mark.parametrize(
    ("weights", "loads", "eta", "c", "match"),
    [
        ([0.5, 0.6], [[1, 1], [1, 1]], 10, 0.05, "sum to 1"),
        ([1.5, -0.5], [[1, 1], [1, 1]], 10, 0.05, "non-negative"),
        ([0.5, 0.5], [[1, 1], [1, 1]], -1, 0.05, "eta"),
        ([0.5, 0.5], [[1, 1], [1, 1]], 10, 1.5, r"c: must be in \[0, 1\]"),
        ([0.5, 0.5], [[1, 1], [0, 0]], 10, 0.05, "row 1 has no expert counts"),
        ([0.5, 0.5], [[1, 1], [-1, 3]], 10, 0.05, "non-negative"),
        ([0.5, 0.3, 0.2], [[1, 1], [1, 1]], 10, 0.05, "expected 2 weights"),
    ],
)
def test_bad_input(weights, loads, eta, c, match):
    with pytest.raises(MixingError, match=match):
        dynamic_update(np.array(weights), np.array(loads), eta=eta, c=c)


def test_float32_gram_path_matches_float64():
    # From 4,096 datasets on the Gram products run in float32: D stays within 1e-6 of the float64 value.
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(32), size=4200)
    sq = (p * p).sum(axis=1)
    exact = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * p @ p.T, 0))
    np.fill_diagonal(exact, 0)
    np.testing.assert_allclose(mean_distances(p), exact.mean(axis=1), atol=1e-6)
