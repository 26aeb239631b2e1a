"""Bad input to ``moemix export-weights``: exit 2, one line naming the flag or file and the rule, nothing written.

Each case is ``(run folder kind, argv, expected substring)``; ``{run}`` and ``{tmp}`` are filled in per test, so
the cases can join the project's bad-input matrix as they are.
"""

from __future__ import annotations

import json

import pytest

from moemix.cli import main

RUN_KINDS = {
    "finished": {"mixture.jsonl": '{"step": 4, "weights": {"chat": 0.25, "code": 0.75}}\n',
                 "metrics.json": '{"global_step": 4}'},
    "no_log": {"metrics.json": '{"global_step": 4}'},
    "no_metrics": {"mixture.jsonl": '{"step": 4, "weights": {"chat": 0.25, "code": 0.75}}\n'},
    "bad_line": {"mixture.jsonl": '{"step": 4, "weights": {"chat": 0.25, "code": 0.75}}\n{"step": 8, "wei\n',
                 "metrics.json": '{"global_step": 8}'},
    "negative": {"mixture.jsonl": '{"step": 4, "weights": {"chat": -0.25, "code": 1.25}}\n',
                 "metrics.json": '{"global_step": 4}'},
    "renamed": {"mixture.jsonl": '{"step": 4, "weights": {"chat": 0.5, "code": 0.5}}\n'
                                 '{"step": 8, "weights": {"chat": 0.5, "math": 0.5}}\n',
                "metrics.json": '{"global_step": 8}'},
    "bad_metrics": {"mixture.jsonl": '{"step": 4, "weights": {"chat": 0.25, "code": 0.75}}\n',
                    "metrics.json": '{"global_step": '},
    "missing": None,
}

CASES = [
    ("finished", ["export-weights", "{run}", "--format", "parquet"], "--format: unknown format 'parquet'"),
    ("finished", ["export-weights", "{run}", "--format", "megatorn"], "did you mean megatron?"),
    ("finished", ["export-weights", "{run}", "--fromat", "megatron"], "unknown flag --fromat; did you mean --format?"),
    ("finished", ["export-weights", "{run}", "--averge"], "unknown flag --averge; did you mean --average?"),
    ("finished", ["export-weights", "{run}", "--names", "chat"], "--names: 'chat' is neither a file nor name=consumer"),
    ("finished", ["export-weights", "{run}", "--names", "chta=sharegpt"], "--names: 'chta' is not a dataset of the run (chat, code); did you mean chat?"),
    ("finished", ["export-weights", "{run}", "--names", "chat="], "--names: 'chat=' is not name=consumer"),
    ("finished", ["export-weights", "{run}", "--names", "chat=a,code=a"], "--names: chat and code both map to 'a'"),
    ("finished", ["export-weights", "{run}", "--names", "chat=a,chat=b"], "--names: chat is mapped twice"),
    ("finished", ["export-weights", "{run}", "--names", "{tmp}/list.yaml"], "list.yaml: expected a mapping"),
    ("finished", ["export-weights", "{run}", "--names", "{tmp}/broken.yaml"], "broken.yaml line 2: not valid YAML/JSON"),
    ("finished", ["export-weights", "{run}", "--names", "{tmp}/comma.yaml", "--format", "llamafactory"], "has a comma"),
    ("finished", ["export-weights", "{run}", "--names", "{tmp}/number.yaml"], "names must be strings"),
    ("finished", ["export-weights", "{run}", "--format", "megatron", "--names", "chat=/d/chat"], "Megatron needs a file prefix for every dataset; missing: code"),
    ("finished", ["export-weights", "{run}", "--format", "megatron-args", "--names", "chat=/d/my chat,code=/d/code"], "has whitespace"),
    ("finished", ["export-weights", "{run}", "--schedule", "--average"], "--schedule: writes every window's weights"),
    ("finished", ["export-weights", "{run}", "--out", "{tmp}"], "--out: {tmp} is a folder"),
    ("finished", ["export-weights", "{run}", "--out", "{tmp}/list.yaml/weights.json"], "a parent of it is a file"),
    ("no_log", ["export-weights", "{run}"], "{run}/mixture.jsonl: not found"),
    ("no_metrics", ["export-weights", "{run}"], "{run}/metrics.json: not found; the run has not finished"),
    ("bad_line", ["export-weights", "{run}"], "{run}/mixture.jsonl line 2: not valid JSON"),
    ("negative", ["export-weights", "{run}"], "{run}/mixture.jsonl line 1: weights must be finite, >= 0"),
    ("renamed", ["export-weights", "{run}"], "{run}/mixture.jsonl line 2: datasets ['chat', 'math'] differ"),
    ("bad_metrics", ["export-weights", "{run}"], "{run}/metrics.json: not valid JSON"),
    ("missing", ["export-weights", "{run}"], "{run}: run folder not found"),
]


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("kind", "argv", "expected"), CASES, ids=[" ".join(c[1][2:]) or c[0] for c in CASES])
def test_bad_export_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, kind, argv, expected):
    run = tmp_path / "run"
    for name, text in (RUN_KINDS[kind] or {}).items():
        run.mkdir(exist_ok=True)
        (run / name).write_text(text)
    (tmp_path / "list.yaml").write_text("- chat\n- code\n")
    (tmp_path / "broken.yaml").write_text("chat: a\ncode: [b")
    (tmp_path / "comma.yaml").write_text(json.dumps({"chat": "a,b"}))
    (tmp_path / "number.yaml").write_text("chat: 2024\n")
    before = _files(tmp_path)
    fill = {"run": str(run), "tmp": str(tmp_path)}
    code = main([arg.format(**fill) for arg in argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moemix: error: "), captured.err
    assert expected.format(**fill) in lines[0]
    assert "Traceback" not in captured.err + captured.out and captured.out == ""
    assert _files(tmp_path) == before  # nothing half-written, no temporary file left
