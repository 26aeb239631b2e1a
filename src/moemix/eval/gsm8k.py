"""GSM8K (Cobbe et al., 2021, arXiv 2110.14168): exact match of the final number of a greedy answer.

Problems are read from a JSONL file of ``{question, answer}`` as OpenAI's grade-school-math repository ships
them (``test.jsonl``); the gold answer is the number after ``####``. The model is asked zero-shot, through its
chat template, to reason and end with ``#### <number>``; its final number is the one after ``####``, else after
"answer is", else the last number in the answer.
"""

from __future__ import annotations

import re
from pathlib import Path

from moemix.data.readers import read_records
from moemix.errors import DataError

PROMPT = (
    "Solve this math word problem. Think step by step, then give the final answer on the last line as "
    "'#### <number>'.\n\n{question}"
)

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"


def load_gsm8k(path: str | Path, limit: int | None = None) -> list[dict]:
    """Read GSM8K problems: ``[{question, answer, gold}]`` (gold is the number after ``####``, as text).

    Raises:
        DataError: If the file is missing, a line is not JSON, or a record lacks a field or a ``####`` answer.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: GSM8K file not found")
    problems = []
    for place, record in read_records(path):
        for key in ("question", "answer"):
            if not isinstance(record.get(key), str):
                raise DataError(f"{place}: field {key!r}: missing or not a string")
        gold = gold_number(record["answer"])
        if gold is None:
            raise DataError(f"{place}: field 'answer': no '#### <number>' final answer")
        problems.append({"question": record["question"], "answer": record["answer"], "gold": gold})
        if limit is not None and len(problems) >= limit:
            break
    return problems


def _clean(number: str) -> str:
    return number.replace(",", "").replace("$", "").rstrip(".")


def gold_number(answer: str) -> str | None:
    """The number after ``####`` in a GSM8K answer, commas removed; None if there is none."""
    match = re.search(rf"####\s*({_NUMBER})", answer)
    return _clean(match.group(1)) if match else None


def final_number(text: str) -> str | None:
    """The final number of a model's answer: after ``####``, else after "answer is", else the last one."""
    for pattern in (rf"####\s*({_NUMBER})", rf"answer is[:\s]*({_NUMBER})"):
        found = re.findall(pattern, text, flags=re.IGNORECASE)
        if found:
            return _clean(found[-1])
    numbers = re.findall(_NUMBER, text)
    return _clean(numbers[-1]) if numbers else None


def same_number(a: str | None, b: str | None) -> bool:
    """Whether two numbers written as text are equal (``18`` equals ``18.0``)."""
    if a is None or b is None:
        return False
    try:
        return abs(float(a) - float(b)) < 1e-6
    except ValueError:
        return False


def score(problems: list[dict], answers: list[str]) -> dict:
    """Exact match over problems and answers (same order): ``{exact_match, correct, n, samples}``."""
    samples = []
    for problem, answer in zip(problems, answers, strict=True):
        predicted = final_number(answer)
        samples.append(
            {"gold": problem["gold"], "predicted": predicted, "correct": same_number(predicted, problem["gold"])}
        )
    correct = sum(s["correct"] for s in samples)
    return {"exact_match": correct / max(len(samples), 1), "correct": correct, "n": len(samples), "samples": samples}
