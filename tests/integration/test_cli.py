"""The command line: the demo end to end, and bad input as one line on stderr with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from moemix.cli import main
from moemix.files import read_jsonl
from moemix.testing import tiny_run_config


def _config(tmp_path, a="builtin:code", a_extra=None, mixing_extra=None):
    """A two-dataset run (dataset ``a`` from ``a``, ``b`` built-in math) written to ``tmp_path/run.yaml``."""
    a_entry = {"name": "a", "path": a, **(a_extra if a_extra is not None else {"max_examples": 40})}
    path = tmp_path / "run.yaml"
    path.write_text(
        tiny_run_config(
            [a_entry, {"name": "b", "path": "builtin:math", "max_examples": 40}],
            vocab_size=300,
            max_length=192,
            eval_batches=None,
            mixing={"policy": None, "probe_batch_size": None, **(mixing_extra or {})},
            training={
                "max_steps": 2,
                "per_device_train_batch_size": 2,
                "per_device_eval_batch_size": None,
                "logging_strategy": None,
            },
        )
    )
    return path


def _line(path, text) -> int:
    """The number of the first line of ``path`` holding ``text`` (from 1, as error messages count)."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("moemix: error: ")
    return err


# the tiny demo itself: a 2048-token BPE trained on all four built-in domains, 4 dev sets: ~17 s of CPU
@pytest.mark.slow
def test_demo_runs_and_moves_weights(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--tiny",
            "--out",
            str(out),
            "--max-steps",
            "6",
            "--mixing.interval=2",
            "--mixing.probe_batches=1",
            "--training.disable_tqdm=true",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "dev loss end" in printed and "3 mixture updates" in printed
    log = read_jsonl(out / "mixture.jsonl")
    assert [r["step"] for r in log] == [2, 4, 6]
    for record in log:
        weights = np.array(list(record["weights"].values()))
        assert abs(weights.sum() - 1) < 1e-9
        assert np.abs(weights - 0.25).max() > 1e-3  # moved away from uniform
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["weights"]) == {"dialogue", "nlp", "math", "code"}
    assert all(f"eval/{n}/loss" in metrics for n in metrics["weights"])


def test_train_with_overrides(tmp_path, capsys, caplog):
    config = _config(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(config), f"--output_dir={out}", "--max_steps", "4", "mixing.eta=0"]) == 0
    # Two datasets are always equally far from each other: moemix says the dynamic update cannot move them.
    assert any("with two datasets" in r.getMessage() for r in caplog.records)
    log = read_jsonl(out / "mixture.jsonl")
    assert [r["step"] for r in log] == [2, 4]
    # eta = 0: the update leaves the weights where they were (uniform), whatever the loads.
    assert all(np.allclose(list(r["weights"].values()), 0.5) for r in log)


def test_missing_config(tmp_path, capsys):
    err = _error(capsys, ["train", str(tmp_path / "nope.yaml")])
    assert "nope.yaml: config file not found" in err


def test_unknown_key_names_file_and_line(tmp_path, capsys):
    config = _config(tmp_path, mixing_extra={"etta": 3})
    err = _error(capsys, ["train", str(config)])
    assert f"{config}:{_line(config, 'etta: 3')}: mixing.etta: unknown key" in err


def test_malformed_jsonl_line(tmp_path, capsys):
    data = tmp_path / "a.jsonl"
    good = json.dumps({"instruction": "Say hi", "output": "hi"})
    data.write_text(f'{good}\n{good}\n{{"instruction": "x"\n')
    err = _error(capsys, ["train", str(_config(tmp_path, a=str(data), a_extra={"dev_size": 1}))])
    assert f"{data}:3: not valid JSON" in err


def test_missing_data_file(tmp_path, capsys):
    err = _error(capsys, ["train", str(_config(tmp_path, a=str(tmp_path / "gone.jsonl"), a_extra={"dev_size": 1}))])
    assert "gone.jsonl: data file not found" in err


def test_dataset_with_no_usable_example(tmp_path, capsys):
    data = tmp_path / "long.jsonl"
    # Every prompt is longer than max_length (192 tokens): truncation removes all assistant tokens.
    data.write_text("".join(json.dumps({"instruction": "word " * 400, "output": "ok"}) + "\n" for _ in range(5)))
    err = _error(capsys, ["train", str(_config(tmp_path, a=str(data), a_extra={"dev_size": 2}))])
    assert "dataset 'a': no usable example" in err and "max_length=192" in err


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("--mixing.weights={a: 1.5, b: -0.5}", "mixing.weights: weights must be non-negative"),
        ("--mixing.weights={a: 0.5, b: 0.6}", "mixing.weights: weights must sum to 1"),
        ("--mixing.eta=-1", "mixing.eta: must be >= 0"),
        ("--mixing.c=1.5", "mixing.c: must be in [0, 1]"),
        ("--mixing.interval=0", "mixing.interval: must be >= 1"),
        ("--training.not_a_field=1", "training.not_a_field: unknown key"),
    ],
)
def test_bad_mixing_values(tmp_path, capsys, override, expected):
    err = _error(capsys, ["train", str(_config(tmp_path)), override])
    assert expected in err


def test_real_process_prints_no_traceback(tmp_path):
    config = _config(tmp_path, mixing_extra={"c": 2})
    proc = subprocess.run([sys.executable, "-m", "moemix.cli", "train", str(config)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip() == f"moemix: error: {config}:{_line(config, 'c: 2')}: mixing.c: must be in [0, 1], got 2.0"
    )
