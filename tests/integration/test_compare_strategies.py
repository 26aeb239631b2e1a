"""`moemix compare`: strategies x seeds on the demo setup, summaries whose numbers come from the runs; inspect."""

from __future__ import annotations

import csv
import json

import pytest

from moemix.cli import main
from moemix.testing import schema_policy_config

CONFIG = schema_policy_config(max_examples=50, max_steps=4)


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "cmp.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.slow  # 4 tiny training runs: ~17 s
def test_compare_two_strategies_two_seeds(config, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", str(config), "--strategies", "uniform,dynamic", "--seeds", "1,2", "--out", str(out)]
    assert main(argv) == 0
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["strategy"], r["seed"]) for r in rows] == [
        ("uniform", "1"),
        ("dynamic", "1"),
        ("uniform", "2"),
        ("dynamic", "2"),
    ]
    expected = {"strategy", "seed", "dev_loss/mean", "wall_time_s", "steps", "run_dir"}
    expected |= {f"{kind}/{n}" for kind in ("dev_loss", "tokens", "weight") for n in ("dialogue", "math", "code")}
    assert expected <= set(rows[0])
    for row in rows:  # every number comes from that run's own metrics
        metrics = json.loads((out / f"{row['strategy']}-seed{row['seed']}" / "metrics.json").read_text())
        assert float(row["dev_loss/math"]) == metrics["eval/math/loss"]
        assert float(row["dev_loss/mean"]) == metrics["eval/mean_loss"]
        assert int(row["tokens/code"]) == metrics["tokens_seen"]["code"]
    assert float(rows[0]["weight/math"]) == pytest.approx(1 / 3)
    assert float(rows[1]["weight/math"]) != pytest.approx(1 / 3)
    summary = (out / "summary.md").read_text()
    assert "| uniform | 2 |" in summary and "| dynamic | 2 |" in summary and "vs uniform" in summary
    # The seeds give different runs.
    assert rows[0]["dev_loss/mean"] != rows[2]["dev_loss/mean"]

    # Resumable: a second call trains nothing and rewrites the same rows.
    mtime = (out / "dynamic-seed2" / "metrics.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "dynamic-seed2" / "metrics.json").stat().st_mtime_ns == mtime
    assert list(csv.DictReader((out / "summary.csv").open())) == rows


def test_compare_rejects_unknown_strategy(config, tmp_path, capsys):
    assert main(["compare", str(config), "--strategies", "uniform,doremi", "--out", str(tmp_path / "x")]) == 2
    assert "unknown policy 'doremi'" in capsys.readouterr().err


def test_inspect_draws_the_heatmap_without_training(config, tmp_path):
    out = tmp_path / "inspect"
    assert main(["inspect", str(config), "--out", str(out)]) == 0
    loads = json.loads((out / "loads.json").read_text())
    assert set(loads["loads"]) == {"dialogue", "math", "code"}
    assert all(abs(sum(v) - 1) < 1e-9 for v in loads["loads"].values())
    assert (out / "loads.png").read_bytes().startswith(b"\x89PNG")
