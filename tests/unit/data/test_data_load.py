"""Loading datasets: dev splits, strict and skip_invalid, truncation, dev sets, batched tokenising, the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

import moemix.data.load as load_module
import moemix.data.tokenized as tokenized_module
from moemix.config import load_config
from moemix.data.builtin import builtin_records
from moemix.data.load import Example, hold_out, load_data, load_dataset, tokenize_examples, training_texts
from moemix.data.render import tokenize_conversation
from moemix.data.validate import SplitReport
from moemix.errors import DataError
from moemix.testing import builtin_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return builtin_tokenizer(("dialogue", "math"), 60, vocab_size=600, cache_dir=tmp_path_factory.mktemp("tok"))


# Each test a tokenisation cache of its own: some check what was read from it and what was written.
pytestmark = pytest.mark.usefixtures("cache")


def _alpaca_file(path, n, bad=()):
    lines = []
    for i in range(n):
        lines.append("{broken" if i in bad else json.dumps({"instruction": f"Repeat {i}", "output": f"number {i}"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(tmp_path, datasets: str, extra: str = "", max_length: int = 256) -> object:
    text = f"""
max_length: {max_length}
datasets:
{datasets}
model: {{tiny: mixtral, tokenizer: builtin}}
{extra}
"""
    return load_config(text=text)


# ------------------------------------------------------------------------------------------------ dev splits


@pytest.mark.parametrize("dev_size", [7, 0.25])
def test_hold_out_is_seeded_disjoint_and_complete(dev_size):
    items = list(range(40))
    train, dev = hold_out(items, dev_size, seed=3, name="d")
    assert len(dev) == 10 if dev_size == 0.25 else 7
    assert sorted(train + dev) == items and not set(train) & set(dev)
    assert train == sorted(train) and dev == sorted(dev)  # file order kept
    assert hold_out(items, dev_size, seed=3, name="d") == (train, dev)
    assert hold_out(items, dev_size, seed=4, name="d")[1] != dev


@pytest.mark.parametrize(("dev_size", "match"), [(40, "leaving none to train on"), (0.001, "holds out none")])
def test_hold_out_that_cannot_work(dev_size, match):
    with pytest.raises(DataError, match=f"dataset 'd': dev_size {dev_size}.*{match}"):
        hold_out(list(range(40)), dev_size, seed=0, name="d")


def test_a_dev_size_that_invalid_records_made_impossible_names_them(tmp_path, tok):
    # A file in the wrong format leaves few usable examples: the dev_size error must not hide why.
    other = '\n  - {name: b, path: "builtin:math", max_examples: 5}'
    path = _alpaca_file(tmp_path / "a.jsonl", 30, bad=set(range(1, 29)))
    config = _config(tmp_path, f'  - {{name: a, path: "{path}", dev_size: 5, skip_invalid: true}}' + other)
    with pytest.raises(DataError) as caught:
        load_data(config, tok)
    message = str(caught.value)
    assert "dev_size 5 holds out 5 of 2 usable examples" in message
    assert f"28 of 30 records invalid, first: {path}:2: not valid JSON" in message
    # Strict, the records themselves stop it; read as `data validate` reads, all of them are listed.
    strict = _config(tmp_path, f'  - {{name: a, path: "{path}", dev_size: 5}}' + other)
    with pytest.raises(DataError, match=f"^{path}:2: not valid JSON.*and 27 more invalid record"):
        load_data(strict, tok)
    a, _ = load_data(strict, tok, strict=False, require_examples=False, all_problems=True)
    assert len(a.report.train.problems) == 28 and len(a.dev) == 0 and len(a.train) == 2
    assert a.report.dev_sources == ["not held out: dev_size 5 of 2 usable examples"]
    clean = _alpaca_file(tmp_path / "b.jsonl", 30)
    config = _config(tmp_path, f'  - {{name: a, path: "{clean}", dev_size: 30}}' + other)
    with pytest.raises(DataError, match="of 30 usable examples, leaving none to train on$"):  # nothing added
        load_data(config, tok)


def test_dev_fraction_from_a_file_is_disjoint_from_train(tmp_path, tok):
    path = _alpaca_file(tmp_path / "a.jsonl", 50)
    config = _config(
        tmp_path,
        f"""
  - {{name: a, path: "{path}", dev_size: 0.2}}
  - {{name: b, path: "builtin:math", max_examples: 5}}""",
    )
    a, b = load_data(config, tok)
    assert (len(a.train), len(a.dev)) == (40, 10)
    decode = lambda split: {tok.decode(ids.tolist()) for ids in split.input_ids}  # noqa: E731
    assert not decode(a.train) & decode(a.dev)
    assert a.report.dev_sources == ["held out from train, 10 of 50 (data_seed 42)"]
    assert (a.report.train.records, a.report.dev.records) == (40, 10)
    assert len(b.train) == 5 and len(b.dev) == 64  # builtin: the generator's own dev split


def test_dev_datasets_entry_gives_the_dev_split_in_its_own_format(tmp_path, tok):
    train = _alpaca_file(tmp_path / "train.jsonl", 20)
    dev = tmp_path / "dev.tsv"
    dev.write_text("Repeat 100\tnumber 100\nRepeat 101\tnumber 101\n")
    config = _config(
        tmp_path,
        f"""
  - {{name: a, path: "{train}"}}
  - {{name: b, path: "builtin:math", max_examples: 5}}""",
        f"""
dev_datasets:
  - {{name: a, path: "{dev}", fields: [prompt, completion]}}""",
    )
    a, _ = load_data(config, tok)
    assert len(a.train) == 20 and len(a.dev) == 2
    assert "number 101" in tok.decode(a.dev.input_ids[1].tolist())


def test_no_dev_split_is_an_error(tmp_path, tok):
    path = _alpaca_file(tmp_path / "a.jsonl", 5)
    config = _config(
        tmp_path,
        f"""
  - {{name: a, path: "{path}"}}
  - {{name: b, path: "builtin:math"}}""",
    )
    with pytest.raises(DataError, match="dataset 'a': no dev split; give dev_path, dev_size"):
        load_data(config, tok)


# ---------------------------------------------------------------------------------------- strict and skipping


def test_strict_stops_at_the_first_invalid_record_naming_its_line(tmp_path, tok):
    path = _alpaca_file(tmp_path / "a.jsonl", 30, bad={4, 9})
    config = _config(
        tmp_path,
        f"""
  - {{name: a, path: "{path}", dev_size: 3}}
  - {{name: b, path: "builtin:math", max_examples: 5}}""",
    )
    with pytest.raises(
        DataError, match=rf"^{path}:5: not valid JSON .*\(and 1 more invalid record\(s\) in dataset 'a'\)"
    ):
        load_data(config, tok)
    with pytest.raises(DataError, match=rf"^{path}:5: not valid JSON"):
        list(training_texts(config))


def test_skip_invalid_skips_and_counts_per_dataset(tmp_path, tok):
    bad = tmp_path / "a.jsonl"
    bad.write_text(
        "\n".join(
            [
                json.dumps({"instruction": "q1", "output": "r1"}),
                "{oops",
                json.dumps({"instruction": "q2"}),
                json.dumps({"conversations": [{"from": "gpt", "value": "first"}]}),
                *[json.dumps({"instruction": f"q{i}", "output": f"r{i}"}) for i in range(3, 9)],
            ]
        )
        + "\n"
    )
    config = _config(
        tmp_path,
        f"""
  - {{name: a, path: "{bad}", dev_size: 2}}
  - {{name: b, path: "builtin:math", max_examples: 5}}""",
        "data: {skip_invalid: true}",
    )
    a, b = load_data(config, tok)
    assert (len(a.train), len(a.dev)) == (5, 2)
    assert a.report.train.problem_counts == {"malformed": 1, "missing field": 1, "role order": 1}
    assert [p.place for p in a.report.train.problems] == [f"{bad}:2", f"{bad}:3", f"{bad}:4"]
    assert a.report.train.invalid == 3 and b.report.train.invalid == 0
    # A dataset's own skip_invalid: false wins over data.skip_invalid.
    config.datasets[0].skip_invalid = False
    with pytest.raises(DataError, match=rf"{bad}:2: not valid JSON"):
        load_data(config, tok)


def test_truncated_away_examples_are_dropped_counted_and_named(tmp_path, tok):
    path = tmp_path / "a.jsonl"
    rows = [{"instruction": "word " * 200, "output": "ok"}] + [
        {"instruction": f"q{i}", "output": f"r{i}"} for i in range(6)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _config(
        tmp_path,
        f"""
  - {{name: a, path: "{path}", dev_path: "{path}"}}
  - {{name: b, path: "builtin:math", max_examples: 5}}""",
        max_length=64,
    )
    a, _ = load_data(config, tok)
    assert len(a.train) == 6 and a.train.truncated_away == 1 and a.report.train.truncated_away == 1
    (problem,) = a.report.train.problems
    assert problem.place == f"{path}:1" and "beyond max_length=64" in problem.message and not problem.fatal


def test_all_examples_truncated_away_is_an_error(tmp_path, tok):
    path = tmp_path / "long.jsonl"
    path.write_text("".join(json.dumps({"instruction": "word " * 200, "output": "ok"}) + "\n" for _ in range(4)))
    config = _config(
        tmp_path,
        f"""
  - {{name: a, path: "{path}", dev_size: 1}}
  - {{name: b, path: "builtin:math", max_examples: 5}}""",
        max_length=64,
    )
    with pytest.raises(
        DataError,
        match=r"dataset 'a': no usable example in train \(3 read, 0 invalid, 3 lost every "
        r"assistant token to truncation at max_length=64\)",
    ):
        load_data(config, tok)


def test_batched_tokenising_equals_one_by_one(tok):
    examples = [
        Example(
            f"x[{i}]",
            [
                {"role": m["from"].replace("human", "user").replace("gpt", "assistant"), "content": m["value"]}
                for m in r["conversations"]
            ],
        )
        for i, r in enumerate(builtin_records("dialogue", "dev", n=30))
    ]
    split = tokenize_examples(examples, tok, 48, SplitReport())
    expected = [tokenize_conversation(tok, e.messages, 48) for e in examples]
    kept = [(ids, labels) for ids, labels in expected if (labels != -100).any()]
    assert len(split) == len(kept)
    for ids, labels, (want_ids, want_labels) in zip(split.input_ids, split.labels, kept):
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(labels, want_labels)


# ------------------------------------------------------------------------------------------------------ cache


def _one(path, **overrides):
    from moemix.config import DatasetConfig

    return DatasetConfig(name="a", path=str(path), dev_size=3, **overrides)


def test_second_load_reads_the_cache_without_tokenising(tmp_path, tok, monkeypatch):
    calls = []
    real = tokenized_module.assistant_spans
    monkeypatch.setattr(tokenized_module, "assistant_spans", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = _alpaca_file(tmp_path / "a.jsonl", 20)

    def tokenised(max_length=64, seed=1, **overrides) -> bool:
        before = len(calls)
        load_dataset(_one(path, **overrides), tok, max_length, seed=seed)
        return len(calls) > before

    first = load_dataset(_one(path), tok, 64, seed=1)
    assert calls and not first.report.from_cache
    calls.clear()
    second = load_dataset(_one(path), tok, 64, seed=1)
    assert not calls and second.report.from_cache
    for a, b in ((first.train, second.train), (first.dev, second.dev)):
        assert a.name == b.name and len(a) == len(b)
        for x, y in zip(a.input_ids + a.labels, b.input_ids + b.labels):
            np.testing.assert_array_equal(x, y)
            assert y.dtype == np.int32 and y.flags.writeable
    assert second.report.train.to_dict() == first.report.train.to_dict()

    # Each part of the key misses once, then hits: max_length, the dev rule's seed, the read settings, the
    # clean-up and the truncation.
    for change in (
        {"max_length": 65},
        {"seed": 2},
        {"templates": {"output": "{output}!"}},
        {"strip_suffix": {"output": "!"}},
        {"truncation": "left"},
    ):
        assert tokenised(**change) and not tokenised(**change), change
    # The files' content and the chat template.
    path.write_text(path.read_text().replace("number 3", "number three"))
    assert tokenised() and not tokenised()
    monkeypatch.setattr(tok, "chat_template", tok.chat_template + " ")
    assert tokenised() and not tokenised()


def test_cache_off_and_a_lenient_entry_still_fails_strict(tmp_path, tok, monkeypatch):
    path = _alpaca_file(tmp_path / "a.jsonl", 20, bad={2})
    lenient = load_dataset(_one(path), tok, 64, seed=1, strict=False)
    assert lenient.report.train.invalid == 1
    with pytest.raises(DataError, match=rf"{path}:3: not valid JSON"):
        load_dataset(_one(path), tok, 64, seed=1, strict=True)  # the entry exists, but strict still stops
    monkeypatch.setattr(load_module, "save_entry", lambda *a, **k: pytest.fail("wrote the cache"))
    monkeypatch.setattr(load_module, "load_entry", lambda *a, **k: pytest.fail("read the cache"))
    assert load_dataset(_one(path), tok, 64, seed=1, strict=False, cache=False).report.from_cache is False
