"""Launches that would not train one model stop before anything loads, with one line saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from moemix.cli import main
from moemix.testing import tiny_run_config, torchrun

# Every launch here is refused before the config's data or model loads: what it would train does not matter.
CONFIG = tiny_run_config(
    max_examples=20, vocab_size=384, max_length=64, training={"max_steps": 2, "per_device_train_batch_size": 2}
)


@pytest.fixture
def config(tmp_path, cache):
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return path


def refusals(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("moemix: error: ")]


def launch(*command: str) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # MOEMIX_CACHE: the test's own (the cache fixture)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow  # accelerate launch: ~20 s
def test_accelerate_launch_that_starts_one_of_two_processes_is_refused(tmp_path, cache, config):
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    out = tmp_path / "run"
    proc = launch(
        accelerate,
        "launch",
        "--cpu",
        "--num_processes",
        "2",
        "-m",
        "moemix.cli",
        "train",
        str(config),
        f"--output_dir={out}",
    )
    assert proc.returncode != 0
    [line] = refusals(proc.stderr)  # one process started: one line
    assert "accelerate launch asked for several processes but started one" in line and "torchrun" in line
    assert not out.exists() and not cache.exists()


@pytest.mark.slow  # two processes: ~15 s
def test_two_processes_that_accelerate_would_not_join_are_refused(tmp_path, cache, config):
    # use_cpu false on a machine without an accelerator: accelerate leaves each process on its own
    out = tmp_path / "run"
    proc = launch(
        *torchrun(2, "-m", "moemix.cli", "train", str(config), f"--output_dir={out}", "--training.use_cpu=false")
    )
    assert proc.returncode != 0
    lines = refusals(proc.stderr)
    assert len(lines) == 2  # one line from each rank, no traceback from moemix
    assert all("launched as 2 processes, but the Trainer would train 2 separate models" in line for line in lines)
    assert all("training.use_cpu" in line for line in lines)
    assert not out.exists() and not cache.exists()


def test_fsdp_on_a_cpu_is_refused(tmp_path, cache, config, capsys):
    out = tmp_path / "run"
    assert main(["train", str(config), f"--output_dir={out}", "--training.fsdp=full_shard auto_wrap"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("moemix: error: training.fsdp: FSDP through the Hugging Face Trainer does not run on a CPU")
    assert len(err.splitlines()) == 1
    assert not out.exists() and not cache.exists()
