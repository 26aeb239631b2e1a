"""The noise-aware update is one flag away in ``moemix replay`` and ``moemix compare``, replayed from the
logged noise.
"""

from __future__ import annotations

import json

import numpy as np

from moemix.cli import main
from moemix.config import load_config
from moemix.files import read_jsonl
from moemix.mixing.noise import routing_noise
from moemix.train.compare import parse_strategy


def log_noise(path, examples: int, seed: int = 0) -> None:
    """Give every update of a run folder a real noise estimate from ``examples`` units around its loads."""
    rng = np.random.default_rng(seed)
    records = read_jsonl(path / "mixture.jsonl")
    for record in records:
        units = [rng.multinomial(20, np.asarray(load) / sum(load), size=examples) for load in record["loads"].values()]
        record["noise"] = routing_noise(units, seed=[0, record["step"]], resamples=40).to_record()
    (path / "mixture.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def replayed(capsys, *flags) -> list[dict]:
    capsys.readouterr()
    assert main(["replay", *flags, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def spread(rows: list[dict]) -> float:
    """Mean total variation distance of the replayed weights from uniform."""
    w = np.array([list(r["weights"].values()) for r in rows])
    return float(0.5 * np.abs(w - 1 / w.shape[1]).sum(axis=1).mean())


def test_replay_of_the_noise_aware_update_follows_the_logged_noise(make_run, capsys):
    run = make_run(4, updates=10)
    log_noise(run, examples=3)  # few units: wide standard errors
    paper = replayed(capsys, str(run))
    aware = replayed(capsys, str(run), "--noise-aware", "true")
    stricter = replayed(capsys, str(run), "--noise-aware", "true", "--noise-z", "3")
    assert [r["step"] for r in aware] == [r["step"] for r in paper]
    assert spread(stricter) < spread(aware) < spread(paper)
    assert replayed(capsys, str(run), "--noise-aware", "true", "--noise-z", "0") == paper


def test_replay_of_the_noise_aware_update_on_a_log_without_noise_says_so(make_run, capsys):
    run = make_run(3)  # its records carry no estimate the update can read
    records = read_jsonl(run / "mixture.jsonl")
    (run / "mixture.jsonl").write_text("".join(json.dumps({**r, "noise": None}) + "\n" for r in records))
    assert main(["replay", str(run), "--noise-aware", "true"]) == 2
    assert "logs no noise signal, which policy dynamic reads" in capsys.readouterr().err
    assert main(["replay", str(run), "--noise-z", "-1"]) == 2
    assert "--noise-z: must be >= 0, got -1.0" in capsys.readouterr().err


def test_compare_names_the_noise_aware_strategy_in_one_word():
    strategy = parse_strategy("dynamic/noise_aware=true")
    assert strategy.label == "dynamic_noise_aware-true"
    text = """
datasets: [{name: a, path: a.jsonl}, {name: b, path: b.jsonl}]
model: {tiny: mixtral, tokenizer: builtin}
"""
    mixing = load_config(text=text, overrides=list(strategy.overrides)).mixing
    assert mixing.policy == "dynamic" and mixing.noise_aware is True and mixing.noise_z == 1.0
    assert load_config(text=text).mixing.noise_aware is False  # the paper's update unless asked


def test_the_report_header_names_the_variant_and_leaves_the_paper_plain():
    from moemix.report.header import describe_policy

    paper = {"policy": "dynamic", "eta": 10.0, "c": 0.05, "noise_aware": False, "noise_z": 1.0, "interval": 20}
    assert "noise" not in describe_policy(paper)
    assert "noise-aware, z 2" in describe_policy(paper | {"noise_aware": True, "noise_z": 2.0})
