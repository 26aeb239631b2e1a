"""One run per output folder: the lock, what a failed start leaves behind, half-written checkpoints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from moemix.errors import MoemixError
from moemix.train.checkpoint import STATE_FILE
from moemix.train.folder import HOLDER_FILE, LOCK_FILE, RunFolder

# Holds a folder's lock in another process until it is killed.
HOLDER = textwrap.dedent(
    """
    import sys
    from moemix.train.folder import RunFolder
    folder = RunFolder.open(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def test_a_second_run_into_a_held_folder_stops_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MoemixError) as err:
            RunFolder.open(out)
        message = str(err.value)
        assert "\n" not in message
        assert str(out) in message and f"pid {holder.pid}" in message and socket.gethostname() in message
        assert (out / LOCK_FILE).exists()  # the holder's lock is left alone
    finally:
        holder.kill()  # killed, not released: the OS lock dies with the process
        holder.wait()
    RunFolder.open(out).release()


def test_the_lock_is_held_until_released_and_leaves_no_files(tmp_path):
    first = RunFolder.open(tmp_path / "run")
    with pytest.raises(MoemixError, match="another moemix run is writing to it"):
        RunFolder.open(tmp_path / "run")
    first.release()
    assert not (tmp_path / "run" / LOCK_FILE).exists() and not (tmp_path / "run" / HOLDER_FILE).exists()
    RunFolder.open(tmp_path / "run").release()


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "run"
    path.write_text("not a folder")
    with pytest.raises(MoemixError, match=r"output_dir .*run: is a file, not a folder"):
        RunFolder.open(path)
    assert path.read_text() == "not a folder"


def test_abandon_removes_only_the_folders_this_run_created(tmp_path):
    folder = RunFolder.open(tmp_path / "new" / "deeper" / "run")
    (folder.path / "run_config.yaml").write_text("x")
    folder.abandon()
    assert not (tmp_path / "new").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mixture.jsonl").write_text("earlier run\n")
    folder = RunFolder.open(existing)
    folder.abandon()
    assert sorted(os.listdir(existing)) == ["mixture.jsonl"]
    assert (existing / "mixture.jsonl").read_text() == "earlier run\n"


def test_abandon_keeps_a_parent_another_run_wrote_into(tmp_path):
    folder = RunFolder.open(tmp_path / "runs" / "a")
    (tmp_path / "runs" / "b").mkdir()  # a sibling run started meanwhile
    folder.abandon()
    assert not (tmp_path / "runs" / "a").exists() and (tmp_path / "runs" / "b").is_dir()


def test_half_written_checkpoints_are_removed_when_the_next_run_starts(tmp_path):
    out = tmp_path / "run"
    complete, torn = out / "checkpoint-10", out / "checkpoint-20"
    for path in (complete, torn):
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(b"weights")
    (complete / STATE_FILE).write_text("{}")
    (out / "checkpoint-notes").mkdir()  # not a checkpoint folder: left alone

    folder = RunFolder.open(out)
    assert torn.is_dir()  # opening changes nothing: a run that then fails its checks leaves the folder as it was
    folder.remove_torn_checkpoints()  # what prepare_run does once every check has passed
    folder.release()

    assert complete.is_dir() and (complete / "model.safetensors").exists()
    assert not torn.exists()
    assert (out / "checkpoint-notes").is_dir()


def test_other_ranks_neither_lock_nor_remove(tmp_path):
    main = RunFolder.open(tmp_path / "run")
    other = RunFolder.open(tmp_path / "run", main=False)  # rank 1 of the same launch: no lock to take
    other.abandon()
    assert (tmp_path / "run").is_dir() and (tmp_path / "run" / LOCK_FILE).exists()
    main.release()
