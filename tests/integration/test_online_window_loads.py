"""Windows without tokens of a dataset, and smoothed loads: through the real mixing callback and policy."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from moemix.data.sampler import MixtureSampler
from moemix.files import read_jsonl
from moemix.mixing import from_state
from moemix.train.callback import MixingCallback
from moemix.train.loads import WindowLoads

NAMES = ["chat", "math", "code"]


class ScriptedCounts:
    """A load source whose windows are given in advance (what online counting would have accumulated)."""

    def __init__(self, windows):
        self.windows = list(windows)

    def read(self, model=None):
        return np.asarray(self.windows.pop(0), dtype=np.int64)


def callback(tmp_path, windows, load_ema=None):
    sampler = MixtureSampler([10, 10, 10], np.full(3, 1 / 3), seed=0)
    policy = from_state(
        {
            "name": "dynamic",
            "eta": 10.0,
            "c": 0.0,
            "distance": "l2",
            "criterion": "mean",
            "noise_aware": False,
            "noise_z": 1.0,
            "weights": None,
        }
    )
    return MixingCallback(
        NAMES, policy, sampler, [], 1, tmp_path / "mixture.jsonl", source=ScriptedCounts(windows), load_ema=load_ema
    )


def test_a_dataset_without_tokens_keeps_its_previous_load_and_it_is_logged(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="moemix.train.loads")
    windows = [[[8, 2, 0, 0], [0, 1, 6, 3], [2, 2, 2, 4]], [[5, 5, 0, 0], [0, 0, 0, 0], [1, 1, 1, 7]]]
    mixing = callback(tmp_path, windows)

    first = mixing.update(1, model=None)
    second = mixing.update(2, model=None)

    assert "carried" not in first
    assert second["carried"] == ["math"] and "skipped" not in second
    assert second["loads"]["math"] == first["loads"]["math"] == [0.0, 0.1, 0.6, 0.3]
    assert second["loads"]["chat"] == [0.5, 0.5, 0.0, 0.0]
    assert second["weights"] != first["weights"]  # the update still ran, on the carried load
    assert "step 2: dataset(s) math received no tokens in this window; keeping their previous load" in caplog.messages
    assert [r["step"] for r in read_jsonl(tmp_path / "mixture.jsonl")] == [1, 2]


def test_without_a_previous_load_the_weights_stay_until_every_dataset_was_measured(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="moemix.train.loads")
    windows = [[[8, 2, 0, 0], [0, 0, 0, 0], [2, 2, 2, 4]], [[5, 5, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]]
    mixing = callback(tmp_path, windows)

    first = mixing.update(1, model=None)
    second = mixing.update(2, model=None)

    assert first["skipped"] and first["carried"] == ["math"]
    np.testing.assert_allclose(list(first["weights"].values()), np.full(3, 1 / 3))
    assert "skipped" not in second and second["carried"] == ["code"]
    assert second["loads"]["code"] == [0.2, 0.2, 0.2, 0.4]  # kept from the first window, measured there
    assert not np.allclose(list(second["weights"].values()), np.full(3, 1 / 3))
    assert any("no previous load; the weights stay as they are" in m for m in caplog.messages)


def test_load_ema_smooths_each_dataset_across_windows():
    window = WindowLoads(NAMES, ema=0.75)
    first, _ = window(np.array([[4, 0], [1, 1], [0, 2]]), step=1)
    second, _ = window(np.array([[0, 4], [2, 0], [0, 0]]), step=2)

    np.testing.assert_allclose(first, [[1, 0], [0.5, 0.5], [0, 1]])
    np.testing.assert_allclose(second, [[0.75, 0.25], [0.625, 0.375], [0, 1]])  # code: no tokens, kept as is
    restored = WindowLoads(NAMES, ema=0.75)
    restored.load_state_dict(window.state_dict())
    np.testing.assert_array_equal(restored.previous, window.previous)


@pytest.mark.parametrize("ema", [None, 0.0])
def test_no_ema_is_the_papers_window_load(ema):
    window = WindowLoads(NAMES, ema=ema)
    window(np.array([[4, 0], [1, 1], [0, 2]]), step=1)
    loads, carried = window(np.array([[1, 3], [2, 0], [5, 5]]), step=2)
    np.testing.assert_allclose(loads, [[0.25, 0.75], [1, 0], [0.5, 0.5]])
    assert carried == []
