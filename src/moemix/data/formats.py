"""Turn one instruction record into chat messages (``{role, content}``), checking fields and role order.

Formats (``format:`` of a dataset; ``auto`` tells them apart by their fields):

- ``sharegpt``: ``conversations: [{from, value}]`` with speakers human/gpt/system (``role``/``content`` keys
  also accepted), and an optional record-level ``system``.
- ``openai``: ``messages: [{role, content}]`` with roles system (or developer), user, assistant; content a
  string or a list of text parts.
- ``alpaca``: ``instruction``, optional ``input`` (appended to the instruction after a blank line),
  ``output``, optional ``system`` and ``history`` (earlier ``[user, assistant]`` pairs).
- ``prompt_completion``: ``prompt`` and ``completion``, each a string or a list of messages.

A column map renames the file's fields to these names (GSM8K: ``{instruction: question, output: answer}``)
and templates build a field from several (``{output: "{rationale} So the answer is {answer}."}``), so that
any flat record, such as a headerless TSV row, becomes one of the formats above.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moemix.config import FIELDS, FORMATS, template_fields  # noqa: F401 - the schema's names and rule, re-exported
from moemix.data.readers import read_records  # noqa: F401 - re-exported: the reader of the first version
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
OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class InvalidRecord(DataError):
    """One record breaks a rule of its format; the message starts with its place.

    Attributes:
        kind: a short name of the rule broken, to count problems by (``missing field``, ``role order``, ...).
    """

    def __init__(self, place: str, message: str, kind: str):
        super().__init__(f"{place}: {message}")
        self.kind = kind


def unescape_newlines(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` whose string values have each two-character ``\\n`` turned into a newline.

    Published TSV files (FLAN's chain-of-thought data) write line breaks inside a cell this way.
    """
    return {k: v.replace("\\n", "\n") if isinstance(v, str) else v for k, v in record.items()}


class _Fields:
    """A record seen through the column map and templates: ``get('output')`` and the name to blame."""

    def __init__(self, record: dict, columns: Mapping[str, str], templates: Mapping[str, str], place: str):
        self.record, self.columns, self.templates, self.place = record, columns, templates, place
        self._made: dict[str, str] = {}

    def source(self, name: str) -> str:
        """How the file calls field ``name``: its column, or ``templates.name``."""
        return f"templates.{name}" if name in self.templates else self.columns.get(name, name)

    def get(self, name: str) -> Any:
        if name in self.templates:
            if name not in self._made:
                self._made[name] = self._fill(name)
            return self._made[name]
        return self.record.get(self.columns.get(name, name))

    def _fill(self, name: str) -> str:
        values = {}
        for field in template_fields(self.templates[name]):
            value = self.record.get(field)
            if value is None:
                raise InvalidRecord(self.place, f"field '{field}': missing (read by templates.{name})", "missing field")
            values[field] = value
        return self.templates[name].format_map(values)


def detect_format(record: dict, columns: Mapping[str, str], templates: Mapping[str, str] | None = None) -> str:
    """The format a record is in, from the fields it has (after the column map and templates), or ``unknown``."""
    fields = _Fields(record, columns, templates or {}, "")

    def has(name: str) -> bool:
        return name in (templates or {}) or fields.get(name) is not None

    if has("conversations"):
        return "sharegpt"
    if has("messages"):
        return "openai"
    if has("prompt") and has("completion"):
        return "prompt_completion"
    if has("instruction") or has("output"):
        return "alpaca"
    return "unknown"


def to_messages(
    record: dict,
    fmt: str,
    columns: Mapping[str, str],
    place: str,
    templates: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """Convert one record to chat messages, checking fields and role order.

    Args:
        record: the parsed record (a JSON object, a CSV row, ...).
        fmt: one of :data:`FORMATS`.
        columns: map from moemix's field names (:data:`FIELDS`) to the file's.
        place: ``file:line`` or ``file[index]``, for error messages.
        templates: map from a moemix field name to a ``str.format`` template over the file's fields.

    Returns:
        Messages ``[{"role": system|user|assistant, "content": str}]``: an optional system message, then
        user and assistant alternating, ending with the assistant.

    Raises:
        InvalidRecord: naming the place, the field and the rule broken.
    """
    fields = _Fields(record, columns, templates or {}, place)
    if fmt == "auto":
        fmt = detect_format(record, columns, templates)
        if fmt == "unknown":
            raise InvalidRecord(
                place,
                "cannot tell the format: no 'conversations', 'messages', 'prompt'/'completion' or "
                f"'instruction'/'output' field (fields: {', '.join(map(str, record))}); set format and columns",
                "unknown format",
            )
    convert = _CONVERTERS.get(fmt)
    if convert is None:
        raise DataError(f"{place}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    messages = convert(fields)
    system = fields.get("system")
    if system is not None and not (messages and messages[0]["role"] == "system"):
        system = _text(system, fields, "system")
        if system.strip():
            messages.insert(0, {"role": "system", "content": system})
    return messages


def _text(value: Any, fields: _Fields, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidRecord(
            fields.place, f"field '{name}': expected a string, got {type(value).__name__}", "wrong type"
        )
    return value


def _required(fields: _Fields, name: str, fmt: str) -> Any:
    value = fields.get(name)
    if value is None:
        raise InvalidRecord(fields.place, f"field '{fields.source(name)}': missing ({fmt} format)", "missing field")
    return value


def _non_empty(text: str, fields: _Fields, name: str) -> str:
    if not text.strip():
        raise InvalidRecord(fields.place, f"field '{name}': empty", "empty field")
    return text


def _turns(fields: _Fields, name: str, fmt: str) -> list:
    turns = _required(fields, name, fmt)
    key = fields.source(name)
    if not isinstance(turns, list) or not turns:
        raise InvalidRecord(fields.place, f"field '{key}': expected a non-empty list of turns", "wrong type")
    return turns


def _sharegpt(fields: _Fields) -> list[dict[str, str]]:
    key = fields.source("conversations")
    messages = []
    for i, turn in enumerate(_turns(fields, "conversations", "sharegpt")):
        if not isinstance(turn, dict):
            raise InvalidRecord(fields.place, f"field '{key}[{i}]': expected an object with from/value", "wrong type")
        speaker = turn.get("from", turn.get("role"))
        if speaker is None:
            raise InvalidRecord(fields.place, f"field '{key}[{i}].from': missing", "missing field")
        role = ROLES.get(str(speaker).lower())
        if role is None:
            raise InvalidRecord(
                fields.place,
                f"field '{key}[{i}].from': unknown speaker {speaker!r}; use one of human, gpt, system",
                "unknown role",
            )
        content = _text(turn.get("value", turn.get("content")), fields, f"{key}[{i}].value")
        messages.append({"role": role, "content": content})
    check_roles(messages, fields.place, key)
    return messages


def _openai_content(content: Any, fields: _Fields, where: str) -> str:
    if isinstance(content, list):
        # Content parts: only text can be trained on here; an image part is a rule broken, not silently dropped.
        texts = []
        for j, part in enumerate(content):
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise InvalidRecord(
                    fields.place,
                    f"field '{where}[{j}]': only text parts ({{type: text, text}}) are supported",
                    "wrong type",
                )
            texts.append(part["text"])
        return "".join(texts)
    return _text(content, fields, where)


def _message_list(turns: list, fields: _Fields, key: str) -> list[dict[str, str]]:
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise InvalidRecord(fields.place, f"field '{key}[{i}]': expected an object with role/content", "wrong type")
        if turn.get("role") is None:
            raise InvalidRecord(fields.place, f"field '{key}[{i}].role': missing", "missing field")
        role = OPENAI_ROLES.get(str(turn["role"]).lower())
        if role is None:
            raise InvalidRecord(
                fields.place,
                f"field '{key}[{i}].role': unsupported role {turn['role']!r}; use system, user or assistant",
                "unknown role",
            )
        if turn.get("weight") == 0:
            raise InvalidRecord(
                fields.place, f"field '{key}[{i}].weight': weight 0 (an unlearnt turn) is not supported", "unsupported"
            )
        if turn.get("content") is None:
            raise InvalidRecord(fields.place, f"field '{key}[{i}].content': missing", "missing field")
        messages.append({"role": role, "content": _openai_content(turn["content"], fields, f"{key}[{i}].content")})
    return messages


def _openai(fields: _Fields) -> list[dict[str, str]]:
    key = fields.source("messages")
    messages = _message_list(_turns(fields, "messages", "openai"), fields, key)
    check_roles(messages, fields.place, key)
    return messages


def _alpaca(fields: _Fields) -> list[dict[str, str]]:
    names = {name: fields.source(name) for name in ("instruction", "input", "output", "history")}
    instruction = _text(_required(fields, "instruction", "alpaca"), fields, names["instruction"])
    output = _text(_required(fields, "output", "alpaca"), fields, names["output"])
    extra = fields.get("input")
    if extra is not None and _text(extra, fields, names["input"]).strip():
        prompt = f"{instruction}\n\n{extra}" if instruction.strip() else extra
    else:
        prompt = instruction
    _non_empty(prompt, fields, names["instruction"])
    _non_empty(output, fields, names["output"])
    messages = []
    history = fields.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise InvalidRecord(
                fields.place, f"field '{names['history']}': expected a list of [user, assistant] pairs", "wrong type"
            )
        for i, pair in enumerate(history):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise InvalidRecord(
                    fields.place,
                    f"field '{names['history']}[{i}]': expected a [user, assistant] pair of strings",
                    "wrong type",
                )
            messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    return messages + [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]


def _prompt_completion(fields: _Fields) -> list[dict[str, str]]:
    names = {name: fields.source(name) for name in ("prompt", "completion")}
    prompt, completion = (_required(fields, n, "prompt_completion") for n in ("prompt", "completion"))
    if isinstance(prompt, list) or isinstance(completion, list):
        # TRL's conversational form: both are lists of messages.
        for name, value in (("prompt", prompt), ("completion", completion)):
            if not isinstance(value, list) or not value:
                raise InvalidRecord(
                    fields.place, f"field '{names[name]}': expected a non-empty list of messages", "wrong type"
                )
        head = _message_list(prompt, fields, names["prompt"])
        tail = _message_list(completion, fields, names["completion"])
        if any(m["role"] != "assistant" for m in tail):
            raise InvalidRecord(
                fields.place,
                f"field '{names['completion']}': every completion message must be the assistant's",
                "role order",
            )
        messages = head + tail
        check_roles(messages, fields.place, names["prompt"])
        return messages
    prompt = _non_empty(_text(prompt, fields, names["prompt"]), fields, names["prompt"])
    completion = _non_empty(_text(completion, fields, names["completion"]), fields, names["completion"])
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]


_CONVERTERS = {"sharegpt": _sharegpt, "openai": _openai, "alpaca": _alpaca, "prompt_completion": _prompt_completion}


def check_roles(messages: list[dict[str, str]], place: str, key: str = "conversations") -> None:
    """Optional system first, then user/assistant alternating from user, ending with a non-empty assistant turn.

    Raises:
        InvalidRecord: naming the first turn out of order.
    """
    start = 1 if messages and messages[0]["role"] == "system" else 0
    body = messages[start:]
    if not body:
        raise InvalidRecord(place, f"field '{key}': no user or assistant turn", "role order")
    for i, message in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise InvalidRecord(
                place,
                f"field '{key}[{i + start}]': roles out of order: expected {expected}, got {message['role']}",
                "role order",
            )
    if body[-1]["role"] != "assistant":
        raise InvalidRecord(place, f"field '{key}': the last turn must be the assistant's", "role order")
    if not any(m["content"].strip() for m in body if m["role"] == "assistant"):
        raise InvalidRecord(place, f"field '{key}': every assistant turn is empty", "empty field")
