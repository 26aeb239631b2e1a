"""What a run and `data validate` say about the data: one table by default, every problem when asked."""

from __future__ import annotations

import json
import logging

import pytest

from moemix.config import load_config
from moemix.data.load import load_data
from moemix.data.validate import (
    MAX_LISTED,
    SPECIAL_IN_TARGET,
    TRUNCATED_AWAY,
    DatasetReport,
    Problem,
    SplitReport,
    format_report,
    summary_table,
)
from moemix.testing import builtin_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return builtin_tokenizer(("nlp",), 40, vocab_size=400, cache_dir=tmp_path_factory.mktemp("tok"))


def test_each_kind_keeps_its_own_first_problems_so_an_invalid_record_is_never_crowded_out():
    report = SplitReport()
    for i in range(MAX_LISTED + 5):
        report.add_problem(Problem(f"f:{i}", f"f:{i}: warn", SPECIAL_IN_TARGET))
    report.add_problem(Problem("f:99", "f:99: broken", "malformed"))
    assert report.problem_counts == {SPECIAL_IN_TARGET: MAX_LISTED + 5, "malformed": 1}
    assert len(report.problems) == MAX_LISTED + 1 and not report.lists_all
    assert DatasetReport("d", [], [], report).first_fatal().place == "f:99"
    everything = SplitReport(keep=None)
    for i in range(MAX_LISTED + 5):
        everything.add_problem(Problem(f"f:{i}", "m", TRUNCATED_AWAY))
    assert everything.lists_all and len(everything.problems) == MAX_LISTED + 5


def test_the_report_lists_invalid_records_first_and_says_how_to_see_the_rest():
    split = SplitReport(records=40, examples=25)
    for i in range(12):
        split.add_problem(Problem(f"f:{i}", f"f:{i}: truncated", TRUNCATED_AWAY))
    for i in range(3):
        split.add_problem(Problem(f"g:{i}", f"g:{i}: broken", "malformed"))
    report = DatasetReport("d", ["f"], ["held out"], split, SplitReport(records=5, examples=5))
    text = format_report([report], 64, strict=set())
    listed = [line.strip() for line in text.splitlines() if line.startswith("    ")]
    assert listed[:3] == ["g:0: broken", "g:1: broken", "g:2: broken"] and len(listed) == 11
    assert listed[-1] == "... and 5 more (moemix data validate --all-problems lists every one)"
    every = [
        line for line in format_report([report], 64, strict=set(), listed=None).splitlines() if line.startswith("    ")
    ]
    assert len(every) == 15
    assert "  note: dev split of 5 example(s), fewer than 20" in text


def test_the_summary_table_tags_notes_and_explains_each_tag_once():
    ok = DatasetReport("ok", [], [], SplitReport(records=100, examples=100), SplitReport(records=30, examples=30))
    small = DatasetReport(
        "small",
        [],
        [],
        SplitReport(records=50, examples=50, cleaned={"strip_suffix.x": 0}),
        SplitReport(records=10, examples=4, problem_counts={TRUNCATED_AWAY: 6}, prompt_cut=1),
    )
    lines = summary_table([ok, small]).splitlines()
    assert lines[0].split() == ["dataset", "train", "dev", "invalid", "trunc.", "away", "prompt", "cut", "notes"]
    assert lines[2].split() == ["ok", "100", "30", "0", "0", "0"]
    assert lines[3].split(None, 6) == ["small", "50", "4", "0", "6", "1", "small dev, dev lost, clean-up idle"]
    assert [line.split(":")[0] for line in lines[4:]] == ["small dev", "dev lost", "clean-up idle"]
    assert not ok.notable and small.notable


def _config(tmp_path, rows_a, rows_b, extra=""):
    for name, rows in (("a", rows_a), ("b", rows_b)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "c.yaml"
    path.write_text(f"""\
max_length: 40
model: {{tiny: mixtral, tokenizer: builtin}}
datasets:
  - {{name: a, path: "{tmp_path / "a.jsonl"}", dev_size: 20}}
  - {{name: b, path: "{tmp_path / "b.jsonl"}", dev_size: 20, skip_invalid: true}}
{extra}""")
    return load_config(path)


def _rows(n, long_every=0, bad_every=0):
    rows = []
    for i in range(n):
        prompt = f"Say {i}" + (" and more words" * 30 if long_every and i % long_every == 0 else "")
        rows.append({"instruction": prompt, "output": "" if bad_every and i % bad_every == 0 else f"{i}"})
    return rows


def test_a_run_logs_one_table_and_the_details_only_at_info_level(tmp_path, tok, cache, caplog):
    clean = _config(tmp_path, _rows(60), _rows(60))
    with caplog.at_level(logging.WARNING, logger="moemix"):
        load_data(clean, tok)
    assert caplog.records == []  # nothing skipped, dropped or noted: quiet
    caplog.clear()
    noisy = _config(tmp_path, _rows(60, long_every=3), _rows(60, bad_every=5))
    with caplog.at_level(logging.INFO, logger="moemix"):
        load_data(noisy, tok)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 of 2 dataset(s) skipped, dropped or noted something" in warnings[0].getMessage()
    table = warnings[0].getMessage().splitlines()
    assert table[3].split()[:6] == ["a", "27", "13", "0", "20", "0"]  # a third of a's answers lie beyond 40 tokens
    assert table[4].split()[:4] == ["b", "28", "20", "12"]  # invalid records go before the dev split is held out
    details = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("dataset 'a' train: first problem: ") for m in details)


def test_all_problems_reads_past_a_cached_report_that_lists_fewer(tmp_path, tok, cache):
    config = _config(tmp_path, _rows(60), _rows(120, bad_every=2))  # b: 60 invalid records
    config.datasets[1].dev_size = 5
    first = load_data(config, tok)[1].report
    assert first.train.invalid + first.dev.invalid == 60 and not first.train.lists_all
    cached = load_data(config, tok)[1].report
    assert cached.from_cache and not cached.train.lists_all
    every = load_data(config, tok, all_problems=True)[1].report
    assert not every.from_cache and every.train.lists_all and every.dev.lists_all
    assert len(every.train.problems) + len(every.dev.problems) == 60
