"""Fifteen datasets through the per-file form: T0/P3-style task files and a chat set validate (the end-of-text
artefacts stripped by the config, the task without answers reported invalid) and train, with one data table."""

from __future__ import annotations

import json
import logging
import random

import yaml

from moemix.cli import build_parser, main
from moemix.testing import tiny_run_config

CONFIG = tiny_run_config(
    [
        {
            "name": "{stem}",
            "path": "data/t0/*.jsonl",
            "each_file": True,
            "format": "prompt_completion",
            "dev_size": 4,
            "strip_suffix": {"completion": "<|endoftext|>"},
            "truncation": "left",
        },
        {"name": "chat", "path": "data/chat.jsonl", "dev_size": 4},
    ],
    vocab_size=400,
    max_length=64,
)
TASKS = 14
WORDS = "cat dog tree lake moon star road book lamp rain song wind".split()


def _write_fixture(root) -> None:
    rng = random.Random(0)
    t0 = root / "data" / "t0"
    t0.mkdir(parents=True)
    for k in range(TASKS):
        rows = []
        for _ in range(20):
            # Task 3 summarises long passages: only truncation: left keeps its answers within 64 tokens.
            words = rng.randint(60, 90) if k == 3 else rng.randint(3, 12)
            text = " ".join(rng.choice(WORDS) for _ in range(words))
            rows.append({"prompt": f"Task {k}. {text}\nAnswer:", "completion": f" {rng.choice(WORDS)} <|endoftext|>"})
        (t0 / f"task_{k:02d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    empty = [{"prompt": f"Task 99. Question {i}?", "completion": "<|endoftext|>"} for i in range(20)]
    (t0 / "no_answer.jsonl").write_text("".join(json.dumps(r) + "\n" for r in empty))
    chat = [
        {"instruction": f"Name a word like {w}", "input": "", "output": f"{w}s", "history": [["Hello", "Hi!"]]}
        for w in WORDS * 2
    ]
    (root / "data" / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chat))
    (root / "c.yaml").write_text(CONFIG)


def _rows(out: str) -> dict[tuple[str, str], list[str]]:
    """The report's table (up to its first blank line), by (dataset, split)."""
    table = out.split("\n\n")[0].splitlines()[3:]
    return {tuple(line.split()[:2]): line.split()[2:] for line in table}


def test_fifteen_datasets_validate_then_train(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    _write_fixture(tmp_path)

    # Validate: 14 tasks, the task without answers and the chat set; the config strips the artefact.
    assert main(["data", "validate", "c.yaml"]) == 2
    out, err = capsys.readouterr()
    rows = _rows(out)
    assert {name for name, _ in rows} == {f"task_{k:02d}" for k in range(TASKS)} | {"no_answer", "chat"}
    assert rows[("no_answer", "train")][:3] == ["20", "0", "20"]  # records, kept, invalid
    assert (
        "no_answer: train: data/t0/no_answer.jsonl" in out
        and "data/t0/no_answer.jsonl:1: field 'completion': empty" in out
    )
    assert out.count("clean-up strip_suffix.completion: changed 20 of 20 records read") == TASKS + 1
    assert rows[("task_03", "train")][4] != "0"  # prompt cut (left), nothing truncated away
    assert rows[("task_03", "train")][3] == "0" and rows[("task_03", "dev")][3] == "0"
    assert "special token" not in out
    assert err.startswith(
        "moemix: error: 20 invalid record(s) in strict dataset(s) no_answer; first: data/t0/no_answer.jsonl:"
    )
    assert len(err.strip().splitlines()) == 1

    # Without the clean-up, every task answer carries the artefact (a warning) and no_answer's are empty targets.
    assert main(["data", "validate", "c.yaml", "--datasets.0.strip_suffix={}"]) == 2
    out = capsys.readouterr().out
    assert "no_answer: train: data/t0/no_answer.jsonl" in out and "problems: 16 empty target" in out
    assert (
        "train problems: 16 special token in target" in out
        and "30 answer(s) hold the tokenizer's special tokens" not in out
    )
    assert out.count("note: 20 answer(s) hold the tokenizer's special tokens as text") == TASKS

    # Train on the fifteen that have answers: one data table, no line per split.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="moemix"):
        assert main(["train", "c.yaml", "--datasets.0.path=data/t0/task_*.jsonl", "--output_dir=run"]) == 0
    names = [f"task_{k:02d}" for k in range(TASKS)] + ["chat"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["weights"]) == names and abs(sum(metrics["weights"].values()) - 1) < 1e-6
    saved = yaml.safe_load((tmp_path / "run" / "run_config.yaml").read_text())
    assert [(d["name"], d["path"], d["each_file"]) for d in saved["datasets"][:2]] == [
        ("task_00", "data/t0/task_00.jsonl", False),
        ("task_01", "data/t0/task_01.jsonl", False),
    ]
    data = [r.getMessage() for r in caplog.records if r.name.startswith("moemix.data")]
    assert len(data) == 1 and data[0].startswith("data: 15 of 15 dataset(s) skipped, dropped or noted something")
    table = {line.split()[0]: line.split()[1:] for line in data[0].splitlines()[3:18]}
    assert list(table) == names
    assert table["task_03"][:5] == ["16", "4", "0", "0", "20"]  # kept whole: every prompt cut, nothing dropped


def test_verbose_is_a_flag_of_the_commands_that_load_data_not_a_config_override():
    for argv in (["train", "c.yaml", "--verbose", "--max_steps", "2"], ["demo", "--tiny", "--verbose"]):
        args, overrides = build_parser().parse_known_args(argv)
        assert args.verbose and "--verbose" not in overrides
    args, overrides = build_parser().parse_known_args(["data", "validate", "c.yaml", "--all-problems"])
    assert args.all_problems and overrides == []
