"""Distributed and multi-worker runs draw the global sequence a single process would, and ranks agree."""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict

import numpy as np
import pytest

from moemix.config import load_config
from moemix.data import MixtureSampler
from moemix.files import read_jsonl
from moemix.testing import tiny_run_config, torchrun
from moemix.train import prepare_run


def config_text(batch, workers):
    return tiny_run_config(
        ("dialogue", "math", "code"),
        40,
        seed=5,
        log_draws=True,
        mixing={"probe_batches": 3},
        training={
            "max_steps": 12,
            "per_device_train_batch_size": batch,
            "gradient_accumulation_steps": 2,
            "learning_rate": 0.003,
            "dataloader_num_workers": workers,
        },
    )


def _write(tmp_path, batch=4, workers=0):
    path = tmp_path / f"b{batch}w{workers}.yaml"
    path.write_text(config_text(batch, workers))
    return path


def _draws_by_step(path):
    out = {}
    for record in read_jsonl(path):
        out[record["step"]] = [tuple(x) for x in record["draws"]]
    return out


def _replay(run_dir, sizes, seed, per_step, steps):
    """The draws a single process makes with the weight schedule the run logged."""
    updates = {r["step"]: list(r["weights"].values()) for r in read_jsonl(run_dir / "mixture.jsonl")}
    sampler = MixtureSampler(sizes, np.full(len(sizes), 1 / len(sizes)), seed=seed)
    out = {}
    for step in range(1, steps + 1):
        out[step] = [sampler.draw() for _ in range(per_step)]
        if step in updates:
            sampler.set_weights(updates[step])
    return out


def test_num_workers_do_not_change_the_draws(tmp_path):
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        prepare_run(load_config(_write(tmp_path, workers=workers), [f"--output_dir={out}"])).train()
        runs[workers] = out
    assert (runs[0] / "draws.jsonl").read_text() == (runs[2] / "draws.jsonl").read_text()
    assert (runs[0] / "mixture.jsonl").read_text() == (runs[2] / "mixture.jsonl").read_text()


@pytest.mark.slow  # torchrun and two ranks, each importing torch and transformers, then a run to compare: ~20 s of CPU
def test_two_process_gloo_run(tmp_path):
    out = tmp_path / "ddp"
    config = _write(tmp_path, batch=2)  # 2 ranks x 2 x 2 accumulation = the single process's 4 x 2
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = torchrun(2, "-m", "moemix.cli", "train", str(config), f"--output_dir={out}")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = read_jsonl(out / "draws.jsonl"), read_jsonl(out / "draws.rank1.jsonl")
    assert [r["step"] for r in rank0] == [r["step"] for r in rank1] == list(range(1, 13))
    # Both ranks drew every step with bit-identical weights (a hash of the exact values).
    assert [r["weights_sha"] for r in rank0] == [r["weights_sha"] for r in rank1]
    assert len({r["weights_sha"] for r in rank0}) > 1  # and the weights did move
    assert len(read_jsonl(out / "mixture.jsonl")) == 6

    ranks = [_draws_by_step(out / "draws.jsonl"), _draws_by_step(out / "draws.rank1.jsonl")]
    sizes = json.loads((out / "mixture_state.json").read_text())["sampler"]["sizes"]
    expected = _replay(out, sizes, seed=5, per_step=8, steps=12)
    seen = defaultdict(list)
    for step in range(1, 13):
        assert not set(ranks[0][step]) & set(ranks[1][step])
        assert sorted(ranks[0][step] + ranks[1][step]) == sorted(expected[step])
        for d, e in expected[step]:
            seen[d].append(e)
    for d, examples in seen.items():  # within an epoch of a dataset, no example twice
        for start in range(0, len(examples), sizes[d]):
            epoch = examples[start : start + sizes[d]]
            assert len(set(epoch)) == len(epoch)

    # tokens_seen in metrics.json counts every rank's tokens (summed over ranks), not rank 0's alone.
    splits = prepare_run(load_config(config, [f"--output_dir={tmp_path / 'splits'}"])).trainer.feed.dataset.splits
    expected_tokens = [0] * len(splits)
    for rank in ranks:
        for draws in rank.values():
            for d, e in draws:
                expected_tokens[d] += len(splits[d].input_ids[e])
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["tokens_seen"].values()) == expected_tokens
