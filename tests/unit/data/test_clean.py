"""Per-dataset clean-up: literal prefixes and suffixes, regular expressions, turn fields, and what each changed."""

from __future__ import annotations

import json

import pytest

from moemix.config import DatasetConfig
from moemix.data.clean import clean_record, clean_up_rules
from moemix.data.load import read_examples
from moemix.data.readers import resolve_sources
from moemix.data.validate import SplitReport


def _rules(**options):
    return clean_up_rules(DatasetConfig(name="d", path="x.jsonl", **options))


@pytest.mark.parametrize(
    ("options", "record", "expected"),
    [
        # The T0/P3 artefact, with the whitespace around it; a value without it is left alone.
        (
            {"strip_suffix": {"completion": "<|endoftext|>"}},
            {"completion": " yes <|endoftext|>\n"},
            {"completion": " yes"},
        ),
        ({"strip_suffix": {"completion": "<|endoftext|>"}}, {"completion": " yes "}, {"completion": " yes "}),
        # Removed once, not repeatedly: a second copy needs a second list item.
        ({"strip_suffix": {"c": "</s>"}}, {"c": "a</s></s>"}, {"c": "a</s>"}),
        ({"strip_suffix": {"c": ["</s>", "</s>"]}}, {"c": "a</s></s>"}, {"c": "a"}),
        ({"strip_prefix": {"prompt": "Q:"}}, {"prompt": "  Q: why?"}, {"prompt": "why?"}),
        ({"strip_prefix": {"prompt": "Q:"}}, {"prompt": "why? Q:"}, {"prompt": "why? Q:"}),
        ({"remove_regex": {"answer": r"<<[^>]*>>"}}, {"answer": "48/2 = <<48/2=24>>24"}, {"answer": "48/2 = 24"}),
        # Prefix and suffix first, then the regular expression.
        ({"strip_suffix": {"a": "END"}, "remove_regex": {"a": "x+"}}, {"a": "axxbEND"}, {"a": "ab"}),
    ],
)
def test_rules_on_text_fields(options, record, expected):
    changed: dict[str, int] = {}
    before = dict(record)
    assert clean_record(record, _rules(**options), changed) == expected
    assert record == before  # the parsed record is not modified in place
    assert set(changed.values()) == {int(expected != record)}  # each rule counts the record once


def test_turn_fields_clean_every_turn_text_and_leave_roles_alone():
    rules = _rules(remove_regex={"conversations": "a", "messages": "a", "history": "a"})
    record = {
        "conversations": [{"from": "human", "value": "banana"}, {"from": "gpt", "value": "apple"}],
        "messages": [{"role": "assistant", "content": [{"type": "text", "text": "cat"}]}],
        "history": [["aa b", "c a"]],
    }
    out = clean_record(record, rules, changed := {})
    assert out["conversations"] == [{"from": "human", "value": "bnn"}, {"from": "gpt", "value": "pple"}]
    assert out["messages"] == [{"role": "assistant", "content": [{"type": "text", "text": "ct"}]}]
    assert out["history"] == [[" b", "c "]]
    assert changed == {"remove_regex.conversations": 1, "remove_regex.messages": 1, "remove_regex.history": 1}


def test_a_missing_field_is_left_alone_and_counted_as_unchanged():
    changed: dict[str, int] = {}
    assert clean_record({"prompt": "p"}, _rules(strip_suffix={"completion": "x"}), changed) == {"prompt": "p"}
    assert changed == {"strip_suffix.completion": 0}


def test_read_examples_cleans_before_columns_and_counts_per_rule(tmp_path):
    path = tmp_path / "t0.jsonl"
    rows = [{"inputs": f"Is {i} even?", "targets": f"{'yes' if i % 2 == 0 else 'no'} <|endoftext|>"} for i in range(5)]
    rows.append({"inputs": "Is 9 even?", "targets": "no"})  # already clean
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = DatasetConfig(
        name="t0",
        path=str(path),
        columns={"prompt": "inputs", "completion": "targets"},
        strip_suffix={"targets": "<|endoftext|>"},
    )
    report = SplitReport()
    examples = read_examples(ds, resolve_sources(ds.path), "train", report)
    assert [e.messages[-1]["content"] for e in examples] == ["yes", "no", "yes", "no", "yes", "no"]
    assert report.cleaned == {"strip_suffix.targets": 5}
