"""Through the Trainer integration too, 2 processes with per-device batch B train the model 1 process with batch
2B trains (torchrun, gloo on the CPU; plain SGD, which moves the parameters by any gradient scaling error)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from moemix.testing import torchrun

SCRIPT = Path(__file__).with_name("integration_ddp.py")


def launch(out: Path, batch: int, nproc: int) -> None:
    runner = [sys.executable] if nproc == 1 else torchrun(nproc)
    env = os.environ | {
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(SCRIPT.parent), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [*runner, str(SCRIPT), str(out), str(batch)], check=False, capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def max_difference(a, b) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.slow  # a 1-rank and a 2-rank launch: ~28 s
def test_two_ranks_train_the_parameters_of_one_rank_with_twice_the_batch(tmp_path):
    launch(tmp_path / "one", batch=4, nproc=1)
    launch(tmp_path / "two", batch=2, nproc=2)

    reference = load_file(tmp_path / "one" / "params.rank0.safetensors")
    rank0, rank1 = (load_file(tmp_path / "two" / f"params.rank{r}.safetensors") for r in (0, 1))
    between_ranks, from_reference = max_difference(rank0, rank1), max_difference(rank0, reference)
    print(f"between ranks {between_ranks:.2e}, from the 1-rank run {from_reference:.2e}")
    assert between_ranks == 0.0
    assert from_reference < 1e-5
    one, two = ((tmp_path / run / "mixture.jsonl").read_bytes() for run in ("one", "two"))
    assert one == two and one.count(b"\n") == 3  # the same weights at every update (steps 2, 4, 6)
