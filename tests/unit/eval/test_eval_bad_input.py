"""Bad input to the options of ``moemix eval`` that reach the code sandbox: exit 2, one line, nothing written.

Each case is ``(argv, expected substring)``; ``{tmp}`` is filled in per test. They are refused before any model
loads, so the target can be an empty folder, and the cases can join the project's bad-input matrix as they are.
"""

from __future__ import annotations

import pytest

from moemix.cli import main

HE = ["--tasks", "humaneval", "--humaneval-file", "{tmp}/he.jsonl"]

CASES = [
    (["eval", "{tmp}/target", *HE, "--timeout", "0"], "eval --timeout: must be a number of seconds > 0, got 0.0"),
    (["eval", "{tmp}/target", *HE, "--timeout", "-3"], "eval --timeout: must be a number of seconds > 0"),
    (["eval", "{tmp}/target", *HE, "--timeout", "nan"], "eval --timeout: must be a number of seconds > 0, got nan"),
    (["eval", "{tmp}/target", *HE, "--timeout", "inf"], "eval --timeout: must be a number of seconds > 0, got inf"),
    (["eval", "{tmp}/target", *HE, "--memory-mb", "0"], "eval --memory-mb: must be >= 1, got 0"),
    (["eval", "{tmp}/target", *HE, "--memory-mb", "99999999"], "eval --memory-mb: at most 4194304"),
    (["eval", "{tmp}/target", *HE, "--workers", "0"], "eval --workers: must be >= 1, got 0"),
    (["eval", "{tmp}/target", "--tasks", "humaneval", "--humaneval-file", "{tmp}/missing.jsonl"],
     "eval --humaneval-file: {tmp}/missing.jsonl: file not found"),
    (["eval", "{tmp}/target", "--tasks", "mbpp"], "eval --tasks mbpp: give --mbpp-file"),
    (["eval", "{tmp}/target", "--tasks", "humanevel"], "eval --tasks: unknown task 'humanevel'"),
]


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(c[0][2:]) for c in CASES])
def test_bad_sandbox_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, expected):
    (tmp_path / "target").mkdir()
    (tmp_path / "he.jsonl").write_text("")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main([arg.format(tmp=tmp_path) for arg in argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moemix: error: "), captured.err
    assert expected.format(tmp=tmp_path) in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no eval.json, nothing half-written
