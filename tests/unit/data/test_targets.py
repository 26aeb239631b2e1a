"""Answers holding the tokenizer's special tokens as text: a warning; answers of nothing else: invalid records."""

from __future__ import annotations

import json

import pytest

from moemix.config import DatasetConfig
from moemix.data.load import load_dataset
from moemix.data.targets import check_targets, special_token_texts
from moemix.data.tokenized import Example
from moemix.data.tokenizer import SPECIAL_TOKENS
from moemix.data.validate import EMPTY_TARGET, SPECIAL_IN_TARGET, SplitReport
from moemix.errors import DataError
from moemix.testing import builtin_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return builtin_tokenizer(("nlp",), 60, vocab_size=500, cache_dir=tmp_path_factory.mktemp("tok"))


# Each test a tokenisation cache of its own: some check what was read from it and what was written.
pytestmark = pytest.mark.usefixtures("cache")


def _example(answer: str, place: str = "f:1") -> Example:
    return Example(place, [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}])


def test_the_builtin_tokenizers_special_tokens_longest_first(tok):
    texts = special_token_texts(tok)
    assert set(texts) == set(SPECIAL_TOKENS)
    assert [len(t) for t in texts] == sorted((len(t) for t in texts), reverse=True)


def test_only_special_tokens_is_invalid_text_with_them_a_warning(tok):
    examples = [
        _example("<|endoftext|>", "f:1"),
        _example("  <|endoftext|> \n<|im_end|>", "f:2"),
        _example("yes <|endoftext|>", "f:3"),
        _example("yes", "f:4"),
        _example("   ", "f:5"),  # whitespace without a special token is the format's own rule, not this one
    ]
    report = SplitReport()
    kept = check_targets(examples, special_token_texts(tok), report)
    assert [e.place for e in kept] == ["f:3", "f:4", "f:5"]
    assert report.problem_counts == {EMPTY_TARGET: 2, SPECIAL_IN_TARGET: 1}
    assert report.invalid == 2 and report.special_in_target == 1
    assert [p.fatal for p in report.problems] == [True, True, False]
    assert report.problems[2].message.startswith(
        "f:3: assistant answer: holds the tokenizer's special token(s) <|endoftext|>"
    )


def _t0_file(path, completions):
    rows = [{"prompt": f"Question {i}?", "completion": c} for i, c in enumerate(completions)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_file_with_no_answer_at_all_stops_strict_loading_and_is_counted_when_lenient(tmp_path, tok):
    path = _t0_file(tmp_path / "empty.jsonl", ["<|endoftext|>"] * 12)
    ds = DatasetConfig(name="empty", path=str(path), dev_size=2)
    with pytest.raises(DataError, match=rf"^{path}:\d+: assistant answer: only the special token\(s\) <\|endoftext\|>"):
        load_dataset(ds, tok, 64, 0)
    lenient = load_dataset(ds, tok, 64, 0, strict=False, require_examples=False)
    assert lenient.report.fatal_problems == 12 and len(lenient.train) == len(lenient.dev) == 0
    with pytest.raises(DataError, match="dataset 'empty': no usable example in train"):
        load_dataset(ds, tok, 64, 0, strict=False)


def test_stripping_the_artefact_removes_the_warning_and_the_token_from_the_labels(tmp_path, tok):
    path = _t0_file(tmp_path / "t0.jsonl", [f"answer {i} <|endoftext|>" for i in range(12)])
    end_of_text = tok.convert_tokens_to_ids("<|endoftext|>")
    raw = load_dataset(DatasetConfig(name="t0", path=str(path), dev_size=2), tok, 64, 0)
    assert raw.report.train.special_in_target == 10 and raw.report.dev.special_in_target == 2
    assert all(end_of_text in labels for labels in raw.train.labels)  # what the model would learn to emit
    clean = load_dataset(
        DatasetConfig(name="t0", path=str(path), dev_size=2, strip_suffix={"completion": "<|endoftext|>"}), tok, 64, 0
    )
    assert not clean.report.train.problem_counts and not clean.report.dev.problem_counts
    assert not any(end_of_text in ids for ids in clean.train.input_ids + clean.dev.input_ids)
