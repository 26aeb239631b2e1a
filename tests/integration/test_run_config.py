"""Every run writes its resolved config (file plus overrides) into its folder; `moemix eval RUN --tasks devloss`
reads it, so the dev loss of a finished run needs no --config and matches what training measured."""

from __future__ import annotations

import json

import pytest

from moemix.cli import main
from moemix.config import load_config
from moemix.testing import tiny_run_config
from moemix.train.run import RUN_CONFIG

CONFIG = tiny_run_config(seed=7)


def test_run_writes_its_config_and_eval_reads_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(CONFIG)
    overrides = ["--output_dir=run", "--mixing.eta=3", "--learning_rate=0.002"]
    assert main(["train", "c.yaml", *overrides]) == 0

    saved = load_config(tmp_path / "run" / RUN_CONFIG)
    assert saved == load_config(tmp_path / "c.yaml", overrides)
    assert saved.mixing.eta == 3 and saved.training["learning_rate"] == 0.002

    assert main(["eval", "run", "--tasks", "devloss"]) == 0
    evaluated = json.loads((tmp_path / "run" / "eval.json").read_text())["tasks"]["devloss"]["loss"]
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("dialogue", "math"):
        assert evaluated[name] == pytest.approx(trained[f"eval/{name}/loss"], rel=1e-4)
