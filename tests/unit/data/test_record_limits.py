"""What a dataset's messages point at: a record too long to be an example, and the file as the user named it."""

from __future__ import annotations

import json
import shutil

import pytest

from moemix.config import load_config
from moemix.data.builtin import builtin_records
from moemix.data.load import TOO_LONG, load_data, training_texts
from moemix.data.tokenizer import train_bpe_tokenizer
from moemix.errors import DataError


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    texts = [t["value"] for r in builtin_records("math", "train", n=60) for t in r["conversations"]]
    return train_bpe_tokenizer(texts, vocab_size=400, cache_dir=tmp_path_factory.mktemp("tok"))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEMIX_CACHE", str(tmp_path / "cache"))


def _rows(n: int, long_at: int | None = None, long_chars: int = 0, missing_at: int | None = None) -> str:
    rows = []
    for i in range(n):
        row = {"instruction": f"Repeat {i}", "output": f"number {i}"}
        if i == long_at:
            row["input"] = "x" * long_chars
        if i == missing_at:
            del row["output"]
        rows.append(json.dumps(row))
    return "\n".join(rows) + "\n"


def _config(path, extra: str = ""):
    return load_config(
        text=f"""
max_length: 64
datasets:
  - {{name: a, path: "{path}", dev_size: 5}}
  - {{name: b, path: "builtin:math", max_examples: 10}}
model: {{tiny: mixtral, tokenizer: builtin}}
{extra}
"""
    )


def test_a_record_longer_than_max_record_chars_stops_a_strict_run_at_its_line_and_field(tmp_path, tok):
    data = tmp_path / "a.jsonl"
    data.write_text(_rows(30, long_at=6, long_chars=5_000))
    with pytest.raises(DataError) as info:
        load_data(_config(data, "data: {max_record_chars: 4000}"), tok)
    assert str(info.value).startswith(
        f"{data}:7: field 'input': 5,000 characters (5,0"  # the record's own short fields add a few
    )
    assert "a record may hold at most data.max_record_chars=4,000" in str(info.value)


def test_with_skip_invalid_a_too_long_record_is_counted_and_the_rest_trains(tmp_path, tok):
    data = tmp_path / "a.jsonl"
    data.write_text(_rows(30, long_at=6, long_chars=5_000))
    loaded, _ = load_data(_config(data, "data: {max_record_chars: 4000, skip_invalid: true}"), tok, warn=False)
    counts = loaded.report.train.problem_counts
    assert counts == {TOO_LONG: 1}
    assert len(loaded.train) + len(loaded.dev) == 29


def test_the_limit_is_part_of_what_the_cache_keys_on(tmp_path, tok):
    data = tmp_path / "a.jsonl"
    data.write_text(_rows(30, long_at=6, long_chars=5_000))
    kept, _ = load_data(_config(data, "data: {skip_invalid: true}"), tok, warn=False)  # default: 1,000,000
    cut, _ = load_data(_config(data, "data: {max_record_chars: 4000, skip_invalid: true}"), tok, warn=False)
    assert TOO_LONG not in kept.report.train.problem_counts  # read whole (then cut at max_length)
    assert cut.report.train.problem_counts.get(TOO_LONG) == 1


def test_messages_name_the_file_given_now_not_an_earlier_copy_of_the_same_bytes(tmp_path, tok):
    # Reads are remembered and cached by content: a copy elsewhere must still be named by its own path.
    first, second = tmp_path / "first" / "a.jsonl", tmp_path / "second" / "a.jsonl"
    first.parent.mkdir()
    second.parent.mkdir()
    first.write_text(_rows(30, missing_at=4))
    shutil.copy(first, second)
    for data in (first, second):
        with pytest.raises(DataError, match=f"^{data}:5: field 'output': missing"):
            list(training_texts(_config(data)))
    # The cache keeps a skip_invalid load's report; a strict load of the copy reads it and names the copy.
    load_data(_config(first, "data: {skip_invalid: true}"), tok, warn=False)
    with pytest.raises(DataError, match=f"^{second}:5: field 'output': missing"):
        load_data(_config(second), tok)
