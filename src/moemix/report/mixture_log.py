"""Read what a run wrote for the commands that read it back (report, replay, export-weights), checked line by line.

A user can point these commands at any file or folder; one that is not a run's log is an error naming the file,
the line and what a mixture record needs, never a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from moemix.errors import MoemixError


def parse_json(text: str, where: str) -> Any:
    """``json.loads`` whose error names ``where`` (a file, or a file and line)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise MoemixError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None


def check_weights(values, where: str) -> None:
    """Weights a run logged: numbers, finite, >= 0 and not all 0."""
    values = list(values)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise MoemixError(f"{where}: weights must be numbers")
    if not all(math.isfinite(v) and v >= 0 for v in values) or not any(values):
        raise MoemixError(f"{where}: weights must be finite, >= 0 and not all 0")


def read_mixture_log(log: Path) -> tuple[list[str], list[dict]]:
    """The dataset names and the records of a ``mixture.jsonl``, each checked.

    Raises:
        MoemixError: For a line that is not JSON or not a mixture record (an integer ``step`` and a ``weights``
            object of the same datasets as line 1's, finite and >= 0), or a log without any record.
    """
    records: list[dict] = []
    names: list[str] | None = None
    for number, line in enumerate(log.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        record = parse_json(line, f"{log} line {number}")
        weights = record.get("weights") if isinstance(record, dict) else None
        if not isinstance(weights, dict) or not isinstance(record.get("step"), int):
            raise MoemixError(f"{log} line {number}: a mixture record needs an integer 'step' and a 'weights' object")
        names = names if names is not None else list(weights)
        if list(weights) != names:
            raise MoemixError(f"{log} line {number}: datasets {list(weights)} differ from line 1's {names}")
        check_weights(weights.values(), f"{log} line {number}")
        records.append(record)
    if not records or names is None:
        raise MoemixError(f"{log}: holds no mixture update")
    return names, records
