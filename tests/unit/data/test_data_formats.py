"""Record formats: each published shape becomes the same chat messages; each broken rule names place and field."""

from __future__ import annotations

import pytest

from moemix.data.formats import InvalidRecord, detect_format, template_fields, to_messages, unescape_newlines

U, A, S = "user", "assistant", "system"


def _msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


def test_sharegpt_system_turn_and_record_level_system():
    turns = [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello"},
    ]
    assert to_messages({"conversations": turns}, "auto", {}, "f:1") == _msgs((S, "Be brief."), (U, "Hi"), (A, "Hello"))
    record = {"system": "Be kind.", "conversations": turns[1:]}
    assert to_messages(record, "sharegpt", {}, "f:1") == _msgs((S, "Be kind."), (U, "Hi"), (A, "Hello"))
    # role/content keys inside a conversations list, and a renamed column.
    other = {"dialog": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "R"}]}
    assert to_messages(other, "auto", {"conversations": "dialog"}, "f:1") == _msgs((U, "Q"), (A, "R"))


def test_openai_messages_with_developer_role_and_text_parts():
    record = {
        "messages": [
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "Bonjour"},
        ]
    }
    assert detect_format(record, {}) == "openai"
    assert to_messages(record, "auto", {}, "f:1") == _msgs((S, "Answer in French."), (U, "Hello there"), (A, "Bonjour"))


def test_alpaca_with_input_history_and_system():
    record = {
        "instruction": "And times 4?",
        "input": "",
        "output": "8",
        "system": "You do arithmetic.",
        "history": [["What is 1+1?", "2"]],
    }
    assert to_messages(record, "auto", {}, "f:1") == _msgs(
        (S, "You do arithmetic."), (U, "What is 1+1?"), (A, "2"), (U, "And times 4?"), (A, "8")
    )
    with_input = {"instruction": "Translate", "input": "chat", "output": "cat"}
    assert to_messages(with_input, "alpaca", {}, "f:1")[0]["content"] == "Translate\n\nchat"


def test_prompt_completion_plain_and_conversational():
    assert to_messages({"prompt": "2+2=", "completion": "4"}, "auto", {}, "f:1") == _msgs((U, "2+2="), (A, "4"))
    record = {
        "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        "completion": [{"role": "assistant", "content": "R"}],
    }
    assert to_messages(record, "prompt_completion", {}, "f:1") == _msgs((S, "S"), (U, "Q"), (A, "R"))


def test_gsm8k_column_map_and_flan_cot_templates():
    gsm = {"question": "6*7?", "answer": "6*7=<<6*7=42>>42\n#### 42"}
    assert to_messages(gsm, "alpaca", {"instruction": "question", "output": "answer"}, "g:1") == _msgs(
        (U, "6*7?"), (A, "6*7=<<6*7=42>>42\n#### 42")
    )
    row = unescape_newlines({"question": "Pick one:\\nOptions:\\n- (A) x", "answer": "(A)", "rationale": "Because."})
    templates = {"output": "{rationale} So the answer is {answer}."}
    messages = to_messages(row, "auto", {"instruction": "question"}, "cot.tsv:3", templates)
    assert messages == _msgs((U, "Pick one:\nOptions:\n- (A) x"), (A, "Because. So the answer is (A)."))


def test_template_fields():
    assert template_fields("{a} and {b}, {{literal}}") == ["a", "b"]
    for bad in ("{}", "{0}", "{unclosed"):
        with pytest.raises(ValueError):
            template_fields(bad)


@pytest.mark.parametrize(
    ("record", "fmt", "columns", "templates", "match", "kind"),
    [
        ({"question": "a"}, "auto", {}, {}, "cannot tell the format", "unknown format"),
        ({"instruction": "a"}, "alpaca", {}, {}, "field 'output': missing", "missing field"),
        (
            {"question": "a"},
            "alpaca",
            {"instruction": "question", "output": "answer"},
            {},
            "field 'answer': missing",
            "missing field",
        ),
        ({"instruction": "a", "output": "  "}, "alpaca", {}, {}, "field 'output': empty", "empty field"),
        (
            {"instruction": "a", "output": 3},
            "alpaca",
            {},
            {},
            "field 'output': expected a string, got int",
            "wrong type",
        ),
        (
            {"instruction": "a", "output": "b", "history": [["q"]]},
            "alpaca",
            {},
            {},
            r"field 'history\[0\]': expected a \[user, assistant\] pair",
            "wrong type",
        ),
        (
            {"q": "a"},
            "alpaca",
            {"instruction": "q"},
            {"output": "{rationale}"},
            "field 'rationale': missing \\(read by templates.output\\)",
            "missing field",
        ),
        (
            {"conversations": [{"from": "gpt", "value": "x"}]},
            "auto",
            {},
            {},
            r"'conversations\[0\]': roles out of order: expected user, got assistant",
            "role order",
        ),
        (
            {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
            "auto",
            {},
            {},
            r"'conversations\[1\]': roles out of order",
            "role order",
        ),
        (
            {"conversations": [{"from": "human", "value": "x"}]},
            "sharegpt",
            {},
            {},
            "last turn must be the assistant",
            "role order",
        ),
        (
            {"conversations": [{"from": "robot", "value": "x"}]},
            "sharegpt",
            {},
            {},
            "unknown speaker 'robot'",
            "unknown role",
        ),
        ({"conversations": []}, "sharegpt", {}, {}, "expected a non-empty list of turns", "wrong type"),
        (
            {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": " "}]},
            "sharegpt",
            {},
            {},
            "every assistant turn is empty",
            "empty field",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}]},
            "openai",
            {},
            {},
            r"'messages\[1\].role': unsupported role 'tool'",
            "unknown role",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "openai",
            {},
            {},
            r"'messages\[0\].content\[0\]': only text parts",
            "wrong type",
        ),
        (
            {"messages": [{"role": "assistant", "content": "r"}]},
            "openai",
            {},
            {},
            r"'messages\[0\]': roles out of order",
            "role order",
        ),
        (
            {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "user", "content": "r"}]},
            "prompt_completion",
            {},
            {},
            "every completion message must be the assistant's",
            "role order",
        ),
    ],
)
def test_bad_records_name_place_field_and_kind(record, fmt, columns, templates, match, kind):
    with pytest.raises(InvalidRecord, match=match) as info:
        to_messages(record, fmt, columns, "data/f.jsonl:7", templates)
    assert str(info.value).startswith("data/f.jsonl:7: ")
    assert info.value.kind == kind
