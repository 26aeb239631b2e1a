"""File types: every supported one read from a real small file, with the place of each record, and bad files."""

from __future__ import annotations

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from moemix.data.readers import iter_rows, parse_hf_id, read_records, resolve_sources
from moemix.errors import DataError

RECORDS = [
    {"instruction": "Add 2 and 3", "input": "", "output": "5"},
    {"instruction": "Say hi", "input": "politely", "output": "Hello, nice to meet you."},
]


def _rows(path, **kwargs):
    return [row for source in resolve_sources(str(path)) for row in iter_rows(source, **kwargs)]


def test_jsonl_places_are_lines_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n\n" + json.dumps(RECORDS[1]) + "\n")
    rows = _rows(path)
    assert [r.place for r in rows] == [f"{path}:1", f"{path}:3"]
    assert [r.record for r in rows] == RECORDS


def test_jsonl_gz(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in RECORDS)
    assert [r.record for r in _rows(path)] == RECORDS
    assert _rows(path)[1].place == f"{path}:2"


def test_json_array_and_single_list_wrapper(tmp_path):
    array = tmp_path / "a.json"
    array.write_text(json.dumps(RECORDS, indent=2))
    assert [(r.place, r.record) for r in _rows(array)] == [(f"{array}[0]", RECORDS[0]), (f"{array}[1]", RECORDS[1])]
    wrapped = tmp_path / "b.json"
    wrapped.write_text(json.dumps({"version": 1, "data": RECORDS}))
    assert [r.record for r in _rows(wrapped)] == RECORDS


def test_csv_with_header_and_a_quoted_line_break(tmp_path):
    path = tmp_path / "a.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "completion"])
        writer.writerow(["two\nlines", 'a "quoted", comma'])
        writer.writerow(["third", "row"])
    rows = _rows(path)
    assert rows[0].record == {"prompt": "two\nlines", "completion": 'a "quoted", comma'}
    # The second record starts on line 4: the first one spans lines 2-3.
    assert [r.place for r in rows] == [f"{path}:2", f"{path}:4"]


def test_tsv_without_header_named_by_fields_keeps_quotes_as_text(tmp_path):
    path = tmp_path / "cot.tsv"
    path.write_text('Is 5\'9" tall?\\nOptions: yes, no\tyes\tModels are "tall".\nQ2\tno\tR2\n', encoding="utf-8")
    rows = _rows(path, fields=["question", "answer", "rationale"])
    assert rows[0].record == {
        "question": "Is 5'9\" tall?\\nOptions: yes, no",
        "answer": "yes",
        "rationale": 'Models are "tall".',
    }
    assert [r.place for r in rows] == [f"{path}:1", f"{path}:2"]


def test_tsv_row_with_wrong_column_count_is_a_row_error(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\tc\nonly\ttwo\nx\ty\tz\n")
    rows = _rows(path, fields=["q", "a", "r"])
    assert rows[0].error is None and rows[2].error is None
    assert rows[1].place == f"{path}:2"
    assert "expected 3 tab-separated columns (q, a, r), got 2" in rows[1].error


def test_parquet_nested_conversations(tmp_path):
    path = tmp_path / "a.parquet"
    convs = [[{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]]
    pq.write_table(pa.table({"id": ["x"], "conversations": convs}), path)
    (row,) = _rows(path)
    assert row.place == f"{path}[0]"
    assert row.record == {"id": "x", "conversations": convs[0]}


def test_folder_glob_and_list(tmp_path):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.jsonl").write_text(json.dumps(RECORDS[1]) + "\n")
    (folder / "sub" / "a.json").write_text(json.dumps([RECORDS[0]]))
    (folder / ".hidden.jsonl").write_text("not json\n")
    (folder / "notes.txt").write_text("ignored")
    assert resolve_sources(str(folder)) == [str(folder / "b.jsonl"), str(folder / "sub" / "a.json")]
    assert resolve_sources(str(folder / "**" / "*.json")) == [str(folder / "sub" / "a.json")]
    listed = resolve_sources([str(folder / "sub" / "a.json"), str(folder / "b.jsonl")])
    assert [r.record for s in listed for r in iter_rows(s)] == RECORDS


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.jsonl", "\n\n", "empty.jsonl: empty file"),
        ("header_only.csv", "prompt,completion\n", "header_only.csv: empty file"),
        ("bad.json", '[{"a": 1},\n {"b": }]', r"bad.json:2: not valid JSON"),
        ("obj.json", '{"a": 1}', "obj.json: expected a JSON array of objects, got an object"),
        ("latin1.jsonl", b'{"a": "caf\xe9"}\n', "not UTF-8"),
        ("dup.csv", "a,a\n1,2\n", r"dup.csv:1: header row: column names must be unique"),
        ("broken.parquet", b"PAR1 nope", "not a readable Parquet file"),
    ],
)
def test_unreadable_files_raise_naming_the_file(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=match) as info:
        _rows(path)
    assert str(path) in str(info.value)


def test_missing_paths_and_types(tmp_path):
    with pytest.raises(DataError, match="gone.jsonl: data file not found"):
        resolve_sources(str(tmp_path / "gone.jsonl"))
    with pytest.raises(DataError, match=r"\*.tsv: no file matches"):
        resolve_sources(str(tmp_path / "*.tsv"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        resolve_sources(str(tmp_path / "x.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: folder holds no data file"):
        resolve_sources(str(tmp_path / "empty"))


def test_malformed_jsonl_line_is_a_row_error_and_read_records_stops_there(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + '\n{"instruction": \n[1, 2]\n')
    rows = _rows(path)
    assert [r.error is None for r in rows] == [True, False, False]
    assert rows[1].place == f"{path}:2" and rows[1].error.startswith("not valid JSON")
    assert rows[2].error == "expected a JSON object, got list"
    with pytest.raises(DataError, match=rf"{path}:2: not valid JSON"):
        list(read_records(path))


def test_hf_ids():
    assert parse_hf_id("hf:openai/gsm8k") == ("openai/gsm8k", None, "train")
    assert parse_hf_id("hf:openai/gsm8k:main@test") == ("openai/gsm8k", "main", "test")
    assert parse_hf_id("hf:tatsu-lab/alpaca@train[:100]") == ("tatsu-lab/alpaca", None, "train[:100]")
    with pytest.raises(DataError, match="no dataset name"):
        parse_hf_id("hf:@train")


def test_hf_loader_on_a_local_folder(tmp_path, monkeypatch):
    # datasets.load_dataset reads a local folder of data files without the network: the hf: path end to end.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    folder = tmp_path / "local_ds"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    rows = _rows(f"hf:{folder}")
    assert [r.record for r in rows] == RECORDS
    assert rows[1].place == f"hf:{folder}[1]"
