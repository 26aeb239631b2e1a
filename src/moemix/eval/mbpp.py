"""MBPP (Austin et al., 2021, arXiv 2108.07732): pass@1 of greedy programs against the task's asserts.

Problems come from a JSONL file of ``{task_id, text, test_list, test_setup_code}`` as the MBPP release ships it
(``mbpp.jsonl``, 974 tasks); the test split is task ids 11-510, used whenever the file holds them. The prompt is
the paper's: the task, then the asserts the code must pass. The program is the setup code, the answer's code and
the asserts, run in a separate process (:mod:`moemix.eval.sandbox`).
"""

from __future__ import annotations

from pathlib import Path

from moemix.data.readers import read_records
from moemix.errors import DataError
from moemix.eval.codeblocks import extract_code

PROMPT = (
    "You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:\n\n"
    "{tests}\n\nReply with the code in one ```python code block."
)
TEST_IDS = range(11, 511)


def load_mbpp(path: str | Path, limit: int | None = None) -> list[dict]:
    """Read MBPP problems, the test split (task ids 11-510) when the file has it, else every task.

    Raises:
        DataError: If the file is missing, a line is not JSON or lacks a field.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MBPP file not found")
    problems = []
    for place, record in read_records(path):
        if not isinstance(record.get("text"), str):
            raise DataError(f"{place}: field 'text': missing or not a string")
        tests = record.get("test_list")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            raise DataError(f"{place}: field 'test_list': must be a non-empty list of strings")
        problems.append(record)
    if any(p.get("task_id") in TEST_IDS for p in problems):
        problems = [p for p in problems if p.get("task_id") in TEST_IDS]
    return problems[:limit] if limit is not None else problems


def prompt(problem: dict) -> str:
    """The user prompt of a task."""
    return PROMPT.format(text=problem["text"], tests="\n".join(problem["test_list"]))


def program(problem: dict, answer: str) -> str:
    """The program that tests an answer: setup code, the answer's code, then every assert."""
    setup = problem.get("test_setup_code") or ""
    return f"{setup}\n{extract_code(answer)}\n\n" + "\n".join(problem["test_list"]) + "\n"
