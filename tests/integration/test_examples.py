"""Every script in examples/ runs as a user would run it (on a tiny MoE) and its mixture moves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moemix.files import read_jsonl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("script", ["hf_trainer.py", "trl_sft.py", "accelerate_loop.py"])
def test_example_runs_and_its_weights_move(tmp_path, script):
    if script == "trl_sft.py":
        pytest.importorskip("trl")
    assert len((EXAMPLES / script).read_text().splitlines()) <= 60  # short enough to read at a glance
    env = os.environ | {"OMP_NUM_THREADS": "1", "MOEMIX_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--tiny", "--out", str(tmp_path / "run")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    log = read_jsonl(tmp_path / "run" / "mixture.jsonl")
    assert [r["step"] for r in log] == [3, 6, 9, 12]
    first, last = log[0]["weights"], log[-1]["weights"]
    assert len(last) == 3 and abs(sum(last.values()) - 1.0) < 1e-9
    assert max(abs(last[name] - first[name]) for name in last) > 0.005  # the weights moved between updates
    assert "final weights:" in proc.stdout
