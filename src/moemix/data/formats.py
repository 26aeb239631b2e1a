"""Read instruction data files and turn each record into chat messages ({role, content}).

Supported: ShareGPT (``conversations: [{from, value}]``) and Alpaca (``instruction``, ``input``, ``output``),
with a column map for other field names (GSM8K's ``question``/``answer``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moemix.errors import DataError

# ShareGPT speaker names seen in published dumps, mapped to chat-template roles.
ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}
FORMATS = ("auto", "sharegpt", "alpaca")


def read_records(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(place, record)`` from a .jsonl or .json (array) file; place is ``file:line`` or ``file[item]``.

    Raises:
        DataError: for a missing file, an unsupported extension, malformed JSON (naming the line) or a
            record that is not an object.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
                if not isinstance(record, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
                yield f"{path}:{lineno}", record
    elif suffix == ".json":
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(items, list):
            raise DataError(f"{path}: expected a JSON array of objects, got {type(items).__name__}")
        for i, record in enumerate(items):
            if not isinstance(record, dict):
                raise DataError(f"{path}[{i}]: expected a JSON object, got {type(record).__name__}")
            yield f"{path}[{i}]", record
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .jsonl or .json")


def _field(record: dict, columns: dict[str, str], name: str) -> Any:
    return record.get(columns.get(name, name))


def detect_format(record: dict, columns: dict[str, str]) -> str:
    """``sharegpt`` if the record has conversations, ``alpaca`` if it has an instruction or output."""
    if _field(record, columns, "conversations") is not None:
        return "sharegpt"
    if _field(record, columns, "instruction") is not None or _field(record, columns, "output") is not None:
        return "alpaca"
    return "unknown"


def to_messages(record: dict, fmt: str, columns: dict[str, str], place: str) -> list[dict[str, str]]:
    """Convert one record to chat messages, checking fields and role order.

    Args:
        record: the parsed JSON object.
        fmt: ``sharegpt``, ``alpaca`` or ``auto``.
        columns: map from moemix field names to the file's field names.
        place: ``file:line`` for error messages.

    Returns:
        Messages ``[{"role": system|user|assistant, "content": str}]``: an optional system message, then
        user and assistant alternating, ending with the assistant.

    Raises:
        DataError: naming the place, the field and the rule broken.
    """
    if fmt == "auto":
        fmt = detect_format(record, columns)
        if fmt == "unknown":
            raise DataError(
                f"{place}: cannot tell the format: no 'conversations' and no 'instruction'/'output' field "
                f"(fields: {', '.join(record)}); set format and columns"
            )
    if fmt == "sharegpt":
        return _sharegpt(record, columns, place)
    if fmt == "alpaca":
        return _alpaca(record, columns, place)
    raise DataError(f"{place}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _text(value: Any, place: str, name: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{place}: field '{name}': expected a string, got {type(value).__name__}")
    return value


def _sharegpt(record: dict, columns: dict[str, str], place: str) -> list[dict[str, str]]:
    key = columns.get("conversations", "conversations")
    turns = record.get(key)
    if turns is None:
        raise DataError(f"{place}: field '{key}': missing (sharegpt format)")
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{place}: field '{key}': expected a non-empty list of turns")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise DataError(f"{place}: field '{key}[{i}]': expected an object with from/value")
        speaker = turn.get("from", turn.get("role"))
        if speaker is None:
            raise DataError(f"{place}: field '{key}[{i}].from': missing")
        role = ROLES.get(str(speaker).lower())
        if role is None:
            raise DataError(f"{place}: field '{key}[{i}].from': unknown speaker {speaker!r}; use one of human, gpt, system")
        content = _text(turn.get("value", turn.get("content")), place, f"{key}[{i}].value")
        messages.append({"role": role, "content": content})
    system = [s.strip() for s in [_field(record, columns, "system")] if isinstance(s, str) and s.strip()]
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system[0]})
    check_roles(messages, place, key)
    return messages


def _alpaca(record: dict, columns: dict[str, str], place: str) -> list[dict[str, str]]:
    names = {name: columns.get(name, name) for name in ("instruction", "input", "output", "system")}
    for required in ("instruction", "output"):
        if record.get(names[required]) is None:
            raise DataError(f"{place}: field '{names[required]}': missing (alpaca format needs instruction and output)")
    instruction = _text(record[names["instruction"]], place, names["instruction"])
    output = _text(record[names["output"]], place, names["output"])
    extra = record.get(names["input"])
    prompt = instruction if not extra else f"{instruction}\n\n{_text(extra, place, names['input'])}"
    if not prompt.strip():
        raise DataError(f"{place}: field '{names['instruction']}': empty")
    if not output.strip():
        raise DataError(f"{place}: field '{names['output']}': empty")
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    system = record.get(names["system"])
    if isinstance(system, str) and system.strip():
        messages.insert(0, {"role": "system", "content": system})
    return messages


def check_roles(messages: list[dict[str, str]], place: str, key: str = "conversations") -> None:
    """Optional system first, then user/assistant alternating from user, ending with an assistant turn."""
    start = 1 if messages and messages[0]["role"] == "system" else 0
    body = messages[start:]
    if not body:
        raise DataError(f"{place}: field '{key}': no user or assistant turn")
    for i, message in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise DataError(
                f"{place}: field '{key}[{i + start}]': roles out of order: expected {expected}, got {message['role']}"
            )
    if body[-1]["role"] != "assistant":
        raise DataError(f"{place}: field '{key}': the last turn must be the assistant's")
