"""What an update says about its signal: its noise in the log and the scalars, and a warning when it has none."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from moemix.config import MixingConfig
from moemix.data.sampler import MixtureSampler
from moemix.files import read_jsonl
from moemix.mixing import DynamicPolicy, StaticPolicy
from moemix.mixing.noise import MAX_DATASETS
from moemix.testing import tiny_moe
from moemix.train.callback import MixingCallback
from moemix.train.scalars import PendingScalars

VOCAB = 256
NAMES = ["a", "b", "c", "d"]


def probe_of(tokens: list[list[int]], batches: int = 3, rows: int = 8, seq: int = 12, seed: int = 0) -> list[list]:
    """Per dataset, right-padded probe batches whose tokens are drawn from that dataset's token list."""
    generator = torch.Generator().manual_seed(seed)
    probe = []
    for choices in tokens:
        pool = torch.tensor(choices)
        dataset = []
        for _ in range(batches):
            input_ids = pool[torch.randint(0, len(pool), (rows, seq), generator=generator)]
            mask = torch.ones(rows, seq, dtype=torch.long)
            dataset.append({"input_ids": input_ids, "attention_mask": mask, "labels": input_ids.clone()})
        probe.append(dataset)
    return probe


ALIKE = [list(range(3, VOCAB))] * 4  # four samples of one distribution: no signal
DISTINCT = [[5, 6], [60, 61], [130, 131], [200, 201]]  # two tokens each: each dataset routes its own way


DEFAULT_COLLAPSE_WARNING = MixingConfig().collapse_warning


def callback(tmp_path, probe, policy, collapse_warning=DEFAULT_COLLAPSE_WARNING, names=NAMES):
    sampler = MixtureSampler([100] * len(names), policy.initial_weights(len(names)), seed=7)
    return MixingCallback(
        names,
        policy,
        sampler,
        probe,
        interval=10,
        log_path=tmp_path / "mixture.jsonl",
        collapse_warning=collapse_warning,
        scalars=PendingScalars(),
    )


def paper(noise_aware: bool = False) -> DynamicPolicy:
    m = MixingConfig()
    return DynamicPolicy(
        eta=m.eta, c=m.c, distance=m.distance, criterion=m.criterion, noise_aware=noise_aware, noise_z=m.noise_z
    )


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_datasets_that_route_alike_are_called_indistinguishable_once_per_update(tmp_path, caplog):
    model = tiny_moe("mixtral", seed=0)
    cb = callback(tmp_path, probe_of(ALIKE), paper())
    with caplog.at_level(logging.WARNING):
        record = cb.update(10, model)
    said = warnings_of(caplog)
    assert len(said) == 1 and "step 10: the datasets' gate loads are indistinguishable" in said[0]
    assert "mixing.noise_aware: true" in said[0]
    noise = record["noise"]
    assert noise["units"] == [24] * 4  # one unit per probe example
    assert noise["separation"] < 1.41 and noise["snr"] < 1
    assert read_jsonl(tmp_path / "mixture.jsonl")[0]["noise"] == noise
    assert cb.scalars.take()["mixture/snr"] == pytest.approx(noise["snr"], abs=1e-4)


def test_datasets_that_route_apart_raise_no_warning_and_a_rerun_logs_the_same_noise(tmp_path, caplog):
    model = tiny_moe("mixtral", seed=0)
    with caplog.at_level(logging.WARNING):
        record = callback(tmp_path / "one", probe_of(DISTINCT), paper()).update(10, model)
    assert not warnings_of(caplog)
    assert record["noise"]["separation"] > 3 and record["noise"]["snr"] > 1
    again = callback(tmp_path / "two", probe_of(DISTINCT), paper()).update(10, model)
    assert again["noise"] == record["noise"]  # seeded by (run seed, step)
    other_step = callback(tmp_path / "three", probe_of(DISTINCT), paper()).update(20, model)
    assert other_step["noise"]["score_se"] != record["noise"]["score_se"]


def test_a_direction_within_the_noise_is_said_and_the_noise_aware_update_stays_near_uniform(tmp_path, caplog):
    model = tiny_moe("mixtral", seed=0)
    # Two pairs of alike datasets, the pairs far apart: the loads differ, but every dataset is as far from the
    # others as any other, so which one gains weight is down to noise.
    tokens = [[5, 6]] * 2 + [[130, 131]] * 2
    probe = probe_of(tokens, batches=1, rows=6)
    with caplog.at_level(logging.WARNING):
        plain = callback(tmp_path / "paper", probe, paper()).update(10, model)
        aware = callback(tmp_path / "aware", probe, paper(noise_aware=True)).update(10, model)
    assert plain["noise"]["separation"] > 3 and plain["noise"]["snr"] < 1
    said = warnings_of(caplog)
    assert len(said) == 2 and all("step 10: the update's direction is within the sampling noise" in s for s in said)
    assert "leaves what is within the noise out" in said[1]
    uniform = np.full(4, 0.25)
    assert (
        np.abs(np.array(list(aware["weights"].values())) - uniform).sum()
        < np.abs(np.array(list(plain["weights"].values())) - uniform).sum()
    )


def test_a_weight_of_0_86_on_one_dataset_warns_of_collapse_with_the_default_threshold(tmp_path, caplog):
    model = tiny_moe("mixtral", seed=0)
    with caplog.at_level(logging.WARNING):
        callback(tmp_path / "a", probe_of(DISTINCT), StaticPolicy([0.75, 0.1, 0.1, 0.05])).update(10, model)
    assert not any("collapsed" in s for s in warnings_of(caplog))
    with caplog.at_level(logging.WARNING):
        callback(tmp_path / "b", probe_of(DISTINCT), StaticPolicy([0.86, 0.05, 0.05, 0.04])).update(10, model)
    said = [s for s in warnings_of(caplog) if "collapsed" in s]
    assert said == [
        "step 10: the mixture has collapsed onto 'a' (weight 0.860 > 0.80); set mixing.floor or a "
        "smaller mixing.eta to keep the others in play"
    ]


def test_past_the_dataset_limit_the_noise_is_not_estimated_unless_the_policy_reads_it(tmp_path, caplog):
    model = tiny_moe("mixtral", seed=0)
    names = [f"d{i}" for i in range(MAX_DATASETS + 1)]
    probe = [
        [
            {
                "input_ids": torch.tensor([[3 + i % 200, 4, 5]] * 2),
                "attention_mask": torch.ones(2, 3, dtype=torch.long),
                "labels": torch.ones(2, 3, dtype=torch.long),
            }
        ]
        for i in range(len(names))
    ]
    record = callback(tmp_path / "plain", probe, paper(), names=names).update(10, model)
    assert record["noise"] is None
    record = callback(tmp_path / "aware", probe, paper(noise_aware=True), names=names).update(10, model)
    assert record["noise"]["units"] == [2] * len(names)
