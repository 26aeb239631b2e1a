"""The GPU benchmark scripts run end to end on the CPU at a tiny shape: a lent GPU is spent measuring, not fixing."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_compare_strategies_tiny_writes_its_tables_and_figures(tmp_path):
    out = tmp_path / "gpu_compare"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "gpu" / "compare_strategies.py"), "--tiny", "--out", str(out),
        "--strategies", "uniform,dynamic", "--seeds", "1", "--steps", "4", "--batch", "4", "--max-length", "96",
    ]
    env = dict(os.environ, MOEMIX_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sorted((r["strategy"], r["seed"]) for r in rows) == [("dynamic", "1"), ("uniform", "1")]
    assert all(float(r["dev_loss/mean"]) > 0 for r in rows)
    assert "| uniform | 1 |" in (out / "summary.md").read_text()
    assert (out / "dev_loss.png").stat().st_size > 0 and (out / "weights.png").stat().st_size > 0
