"""MixtureLoop in a hand-written loop: its state, saved and loaded mid-window, continues the same draws and
updates; and a mixing section's bad value is refused with the config's own message."""

from __future__ import annotations

import json

import pytest
import torch
from integration_runs import model, ranged_datasets

from moemix.errors import ConfigError
from moemix.integrations import MixtureLoop


def rows():
    return {n: [{"input_ids": ids, "labels": ids} for ids in d["input_ids"]] for n, d in ranged_datasets().items()}


def train(loop: MixtureLoop, net, optimizer, steps: int) -> list[list]:
    drawn = []
    for _ in range(steps):
        for batch in loop.next_step(micro_batches=2):
            drawn.append(batch["dataset_ids"].tolist())
            with loop.counting(batch) as inputs:
                loss = net(**inputs).loss / 2
            loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loop.after_step(net)
    return drawn


def run(tmp_path, name, steps, state=None, net_state=None):
    net = model("mixtral")
    if net_state is not None:
        net.load_state_dict(net_state)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    loop = MixtureLoop(
        rows(), net, {"interval": 3}, batch_size=4, pad_token_id=1, log_path=tmp_path / name / "mixture.jsonl"
    )
    if state is not None:
        loop.load_state_dict(json.loads(json.dumps(state)))  # through JSON, as a checkpoint keeps it
    return loop, net, train(loop, net, optimizer, steps)


def test_a_loop_continued_from_its_state_equals_an_uninterrupted_one(tmp_path):
    whole, whole_net, whole_draws = run(tmp_path, "whole", 10)
    first, first_net, first_draws = run(tmp_path, "parts", 4)  # stops mid-window (updates at 3, 6, 9)
    state = first.state_dict()
    second, _, second_draws = run(tmp_path, "parts", 6, state=state, net_state=first_net.state_dict())

    assert first_draws + second_draws == whole_draws
    assert second.step == 10 and second.callback.history == whole.callback.history
    assert (tmp_path / "parts" / "mixture.jsonl").read_bytes() == (tmp_path / "whole" / "mixture.jsonl").read_bytes()
    assert max(abs(w - 1 / 3) for w in whole.weights.values()) > 0.01


def test_bad_settings_are_refused_with_the_config_rule():
    with pytest.raises(ConfigError, match=r"mixing\.eta: must be >= 0, got -1"):
        MixtureLoop(rows(), model("mixtral"), {"eta": -1.0}, batch_size=4)
    with pytest.raises(ConfigError, match=r"mixing\.intervall: unknown key; did you mean 'interval'"):
        MixtureLoop(rows(), model("mixtral"), {"intervall": 3}, batch_size=4)
