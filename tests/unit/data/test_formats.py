"""Reading ShareGPT and Alpaca records (and GSM8K through a column map), and the errors for bad ones."""

from __future__ import annotations

import json

import pytest

from moemix.data import read_records, to_messages
from moemix.errors import DataError


def _write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sharegpt_jsonl(tmp_path):
    rec = {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello!"},
            {"from": "human", "value": "2+2?"},
            {"from": "gpt", "value": "4"},
        ]
    }
    path = _write(tmp_path, "a.jsonl", [json.dumps(rec)])
    ((place, record),) = list(read_records(path))
    assert place == f"{path}:1"
    msgs = to_messages(record, "auto", {}, place)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant"]
    assert msgs[-1]["content"] == "4"


def test_alpaca_json_array_with_input(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(
        json.dumps(
            [
                {"instruction": "Add", "input": "2 and 3", "output": "5"},
                {"instruction": "Say hi", "input": "", "output": "hi"},
            ]
        )
    )
    records = list(read_records(path))
    assert [p for p, _ in records] == [f"{path}[0]", f"{path}[1]"]
    first = to_messages(records[0][1], "auto", {}, records[0][0])
    assert first == [{"role": "user", "content": "Add\n\n2 and 3"}, {"role": "assistant", "content": "5"}]
    assert to_messages(records[1][1], "alpaca", {}, records[1][0])[0]["content"] == "Say hi"


def test_gsm8k_through_column_map(tmp_path):
    path = _write(tmp_path, "g.jsonl", [json.dumps({"question": "What is 6*7?", "answer": "6*7=42\n#### 42"})])
    ((place, record),) = list(read_records(path))
    msgs = to_messages(record, "alpaca", {"instruction": "question", "output": "answer"}, place)
    assert msgs == [{"role": "user", "content": "What is 6*7?"}, {"role": "assistant", "content": "6*7=42\n#### 42"}]


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = _write(
        tmp_path, "bad.jsonl", [json.dumps({"instruction": "a", "output": "b"}), "", '{"instruction": "a", "output": ']
    )
    with pytest.raises(DataError, match=rf"{path}:3: not valid JSON"):
        list(read_records(path))


@pytest.mark.parametrize(
    ("record", "fmt", "match"),
    [
        ({"instruction": "a"}, "alpaca", "field 'output': missing"),
        ({"question": "a"}, "auto", "cannot tell the format"),
        (
            {"conversations": [{"from": "gpt", "value": "x"}]},
            "auto",
            r"conversations\[0\]'.*expected user, got assistant",
        ),
        ({"conversations": [{"from": "human", "value": "x"}]}, "sharegpt", "last turn must be the assistant"),
        ({"conversations": [{"from": "robot", "value": "x"}]}, "sharegpt", "unknown speaker 'robot'"),
        (
            {"conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "x"}]},
            "sharegpt",
            "expected a string",
        ),
    ],
)
def test_bad_records(record, fmt, match):
    with pytest.raises(DataError, match=match) as info:
        to_messages(record, fmt, {}, "f.jsonl:7")
    assert str(info.value).startswith("f.jsonl:7: ")


def test_missing_file_and_bad_extension(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        list(read_records(tmp_path / "nope.jsonl"))
    other = tmp_path / "x.txt"
    other.write_text("hi")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        list(read_records(other))
