"""Through the CLI: one run per output folder, and a run that fails before training leaves no trace."""

from __future__ import annotations

import os
import socket

import pytest

from moemix.cli import main
from moemix.testing import tiny_run_config
from moemix.train.folder import RunFolder

CONFIG = tiny_run_config(
    max_examples=30,
    vocab_size=384,
    seed=2,
    max_length=64,
    training={"max_steps": 2, "per_device_train_batch_size": 2, "per_device_eval_batch_size": 4},
)


@pytest.fixture
def config(tmp_path, cache):
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("moemix: error: ")
    return err


def test_a_second_run_into_a_folder_in_use_stops_before_loading_anything(tmp_path, cache, config, capsys):
    out = tmp_path / "run"
    held = RunFolder.open(out)  # a run in progress (this process; the lock is per open file, as across processes)
    try:
        assert main(["train", str(config), f"--output_dir={out}"]) == 2
        err = one_line_error(capsys)
        assert str(out) in err and f"pid {os.getpid()}" in err and socket.gethostname() in err
        assert not cache.exists()  # no tokenizer, data or model was built
        assert sorted(p.name for p in out.iterdir()) == [".moemix.lock", ".moemix.lock.json"]
    finally:
        held.release()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--resume_from_checkpoint=true"], "no complete checkpoint"),  # found before the data loads
        (["--mixing.eta=.nan"], "eta"),  # found when the config loads
        (["--datasets.0.path={bad}", "--datasets.0.dev_size=2"], "bad.jsonl:1"),  # bad data: its file and line
    ],
    ids=["no-checkpoint", "eta-nan", "bad-data"],
)
def test_a_run_that_fails_before_training_leaves_no_folder_it_created(tmp_path, config, capsys, overrides, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "output": \n')
    out = tmp_path / "new" / "run"
    overrides = [o.format(bad=bad) for o in overrides]
    assert main(["train", str(config), f"--output_dir={out}", *overrides]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "new").exists()


def test_a_failed_start_in_an_earlier_runs_folder_changes_nothing_there(tmp_path, config, capsys):
    out = tmp_path / "run"
    out.mkdir()
    earlier = {"mixture.jsonl": '{"step": 2}\n', "run_config.yaml": "seed: 1\n", "draws.jsonl": '{"step": 1}\n'}
    for name, text in earlier.items():
        (out / name).write_text(text)
    assert main(["train", str(config), f"--output_dir={out}", "--mixing.eta=.nan"]) == 2
    one_line_error(capsys)
    assert {p.name: p.read_text() for p in out.iterdir()} == earlier


def test_output_dir_that_is_a_file_is_one_line(tmp_path, config, capsys):
    out = tmp_path / "run"
    out.write_text("keep me")
    assert main(["train", str(config), f"--output_dir={out}"]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)
    assert out.read_text() == "keep me"
