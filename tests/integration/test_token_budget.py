"""max_tokens: the run stops at the first optimizer step whose tokens bring the total to the budget, and a
resumed run counts the tokens trained before its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moemix.config import load_config
from moemix.errors import ConfigError
from moemix.files import read_jsonl
from moemix.testing import tiny_run_config
from moemix.train import prepare_run
from moemix.train.checkpoint import STATE_FILE

CONFIG = tiny_run_config(
    ("dialogue", "math", "code"),
    120,
    seed=5,
    log_draws=True,
    mixing={"interval": 3},
    training={"max_steps": 50, "learning_rate": 0.003, "lr_scheduler_type": "constant_with_warmup"},
)


def test_stops_at_the_step_that_reaches_the_budget(tmp_path):
    budget = 2000
    config = load_config(text=CONFIG, overrides=[f"--output_dir={tmp_path / 'run'}", f"--max_tokens={budget}"])
    run = prepare_run(config)
    run.train()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    draws = read_jsonl(tmp_path / "run" / "draws.jsonl")
    assert metrics["max_tokens"] == budget and metrics["global_step"] == len(draws)
    # Tokens of every step, from the draw log and the tokenised examples (every token is a real one).
    splits = run.trainer.feed.dataset.splits
    per_step = [[0] * len(splits) for _ in draws]
    for step, record in enumerate(draws):
        for d, i in record["draws"]:
            per_step[step][d] += len(splits[d].input_ids[i])
    totals = np.cumsum([sum(s) for s in per_step])
    # The run stopped at the first step whose tokens reached the budget, well before max_steps.
    assert totals[-1] >= budget and totals[-2] < budget and len(draws) < 50
    assert metrics["tokens_seen"] == {name: int(sum(s[d] for s in per_step)) for d, name in enumerate(run.names)}


def test_resume_counts_tokens_before_the_checkpoint(tmp_path):
    common = ["--max_steps=12", "--save_strategy=steps", "--save_steps=6"]
    straight = prepare_run(load_config(text=CONFIG, overrides=[f"--output_dir={tmp_path / 'a'}", *common]))
    straight.train()
    state = json.loads((tmp_path / "a" / "checkpoint-6" / STATE_FILE).read_text())
    assert sum(state["tokens_seen"]) > 0

    first = prepare_run(
        load_config(text=CONFIG, overrides=[f"--output_dir={tmp_path / 'b'}", *common, "--max_steps=6"])
    )
    first.train()
    resumed = prepare_run(
        load_config(text=CONFIG, overrides=[f"--output_dir={tmp_path / 'b'}", *common, "--resume_from_checkpoint=true"])
    )
    resumed.train()
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())["tokens_seen"]
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())["tokens_seen"]
    assert a == b
    assert np.sum(list(b.values())) > np.sum(state["tokens_seen"])


def test_budget_must_be_positive():
    with pytest.raises(ConfigError, match="max_tokens: must be >= 1"):
        load_config(text=CONFIG, overrides=["--max_tokens=0"])
