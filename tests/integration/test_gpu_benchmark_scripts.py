"""The GPU benchmark scripts run end to end on the CPU at a tiny shape: a lent GPU is spent measuring, not fixing."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # 4 tiny runs in a subprocess: ~35 s
def test_compare_strategies_tiny_writes_its_tables_and_figures(tmp_path):
    out = tmp_path / "gpu_compare"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "gpu" / "compare_strategies.py"),
        "--tiny",
        "--out",
        str(out),
        "--strategies",
        "uniform,dynamic,dynamic/eta=3",
        "--seeds",
        "1,2",
        "--steps",
        "4",
        "--batch",
        "4",
        "--max-length",
        "96",
    ]
    env = dict(os.environ, MOEMIX_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    rows = list(csv.DictReader((out / "summary.csv").open()))
    pairs = sorted((r["strategy"], r["seed"]) for r in rows)
    assert pairs == sorted((s, seed) for s in ("uniform", "dynamic", "dynamic_eta-3") for seed in ("1", "2"))
    assert all(float(r["dev_loss/mean"]) > 0 for r in rows)
    summary = (out / "summary.md").read_text()
    assert "| uniform | 2 |" in summary and "95% CI (t)" in summary  # compare's own table, paired over seeds
    assert (out / "dev_loss.png").stat().st_size > 0 and (out / "weights.png").stat().st_size > 0
    assert not any((out / "runs").glob("*/model"))  # save_model: false, the study keeps metrics only
