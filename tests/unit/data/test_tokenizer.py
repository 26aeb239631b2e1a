"""The on-the-fly byte-level BPE tokenizer: round trips, special tokens, chat template, assistant mask, cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from moemix.data.builtin import DOMAINS, builtin_records
from moemix.data.tokenizer import (
    CHAT_TEMPLATE,
    ENDOFTEXT,
    IM_END,
    IM_START,
    PAD,
    SPECIAL_TOKENS,
    _publish,
    default_cache_dir,
    tokenizer_cache_key,
    train_bpe_tokenizer,
)
from moemix.errors import ConfigError, DataError

_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def _messages(record: dict) -> list[dict[str, str]]:
    return [{"role": _ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]]


def _corpus(n: int = 150, seed: int = 0) -> list[str]:
    records = [r for d in DOMAINS for r in builtin_records(d, "train", n=n, seed=seed)]
    return [t["value"] for r in records for t in r["conversations"]]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tokenizers")


@pytest.fixture(scope="module")
def tok(cache):
    return train_bpe_tokenizer(_corpus(), vocab_size=1024, cache_dir=cache)


@pytest.fixture(scope="module")
def conversations() -> list[list[dict[str, str]]]:
    # Multi-turn ones first: they exercise the prefix property and the mask hardest.
    records = [r for d in DOMAINS for r in builtin_records(d, "dev", n=12)]
    return sorted((_messages(r) for r in records), key=len, reverse=True)


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world!",
        "line one\nline two\n\n    indented line\r\nwindows line",
        "def f(xs):\n\treturn [x ** 2 for x in xs if x % 2 == 0]  # squares\n\n\nprint(f([1, 2, 3]))\n",
        "naïve café — 東京 🙂 ∑x² ¿qué? Ωmega",
        "  leading and trailing spaces  ",
        "",
        "literal <|not_special|> and < | im_start | >",
    ],
)
def test_decode_of_encode_is_the_text(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert tok.unk_token_id not in ids or ENDOFTEXT in text


def test_special_tokens_are_single_and_set(tok):
    ids = [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    assert ids == [0, 1, 2, 3]
    for token, token_id in zip(SPECIAL_TOKENS, ids):
        assert tok.encode(token, add_special_tokens=False) == [token_id]
        inside = tok.encode(f"abc{token}def\n{token}", add_special_tokens=False)
        assert inside.count(token_id) == 2
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (ENDOFTEXT, IM_END, PAD, ENDOFTEXT)
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.encode("hello", add_special_tokens=True) == tok.encode("hello", add_special_tokens=False)
    assert 260 < len(tok) <= 1024


def test_skip_special_tokens_drops_every_chat_marker(tok):
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    assert tok.decode(ids, skip_special_tokens=True) == "user\nhi\nassistant\nyo"


def test_chat_template_renders_chatml(tok):
    assert tok.chat_template == CHAT_TEMPLATE
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == (
        f"{IM_START}system\nBe brief.{IM_END}\n{IM_START}user\nHi{IM_END}\n"
        f"{IM_START}assistant\nHello!{IM_END}\n{IM_START}user\n2+2?{IM_END}"
    )
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == text + f"\n{IM_START}assistant\n"


def test_chat_template_rejects_an_unknown_role(tok):
    with pytest.raises(Exception, match="unknown chat role tool"):
        tok.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_prefix_renders_are_prefixes_of_the_full_render(tok, conversations):
    for messages in conversations:
        full = tok.apply_chat_template(messages, tokenize=False)
        for i, message in enumerate(messages):
            before = tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True) if i else ""
            through = tok.apply_chat_template(messages[: i + 1], tokenize=False)
            if message["role"] == "assistant":
                assert full.startswith(before)
                # The span between the two renders is exactly what the assistant mask marks.
                assert through == before + message["content"] + IM_END
            assert full.startswith(through)


def test_assistant_mask_marks_exactly_the_assistant_content(tok, conversations):
    for messages in conversations:
        out = tok.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
        ids, mask = out["input_ids"], out["assistant_masks"]
        assert len(ids) == len(mask)
        spans, current = [], []
        for token_id, marked in zip(ids, mask):
            if marked:
                current.append(token_id)
            elif current:
                spans.append(current)
                current = []
        if current:
            spans.append(current)
        expected = [m["content"] + IM_END for m in messages if m["role"] == "assistant"]
        assert [tok.decode(span) for span in spans] == expected
        # The end-of-turn token is learned: it is the last masked token of every assistant turn.
        assert all(span[-1] == tok.eos_token_id for span in spans)


def test_second_call_loads_from_the_cache_without_retraining(tok, cache):
    (entry,) = [p for p in cache.iterdir()]
    files = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in entry.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(files)
    again = train_bpe_tokenizer(iter(_corpus()), vocab_size=1024, cache_dir=cache)
    assert [p for p in cache.iterdir()] == [entry]
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in entry.iterdir()} == files
    assert again.get_vocab() == tok.get_vocab()
    assert entry.name == tokenizer_cache_key(_corpus(), 1024)


def test_different_input_gives_a_different_cache_entry(tmp_path):
    texts = ["the quick brown fox", "jumps over the lazy dog"]
    keys = {
        tokenizer_cache_key(texts, 512),
        tokenizer_cache_key(texts, 513),
        tokenizer_cache_key(texts[::-1], 512),
        tokenizer_cache_key(["the quick brown foxjumps over the lazy dog"], 512),
        tokenizer_cache_key(["the quick brown fox", "", "jumps over the lazy dog"], 512),
    }
    assert len(keys) == 5
    train_bpe_tokenizer(texts, vocab_size=300, cache_dir=tmp_path)
    train_bpe_tokenizer(texts + ["one more line"], vocab_size=300, cache_dir=tmp_path)
    assert len([p for p in tmp_path.iterdir()]) == 2


def test_auto_tokenizer_loads_the_cached_folder(tok, cache):
    (entry,) = [p for p in cache.iterdir()]
    loaded = AutoTokenizer.from_pretrained(str(entry))
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded.chat_template == CHAT_TEMPLATE
    assert (loaded.eos_token, loaded.pad_token) == (IM_END, PAD)
    text = "def add(a, b):\n    return a + b\n"
    assert loaded.encode(text) == tok.encode(text)


def test_losing_the_publish_race_keeps_the_existing_folder(tok, tmp_path):
    final = tmp_path / "key"
    _publish(tok, final)
    before = (final / "tokenizer.json").stat().st_ino
    _publish(tok, final)  # a second process finishing later
    assert (final / "tokenizer.json").stat().st_ino == before
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_default_cache_dir_follows_moemix_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MOEMIX_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    train_bpe_tokenizer(["some text to train on"], vocab_size=270)
    assert len(os.listdir(tmp_path / "c" / "tokenizers")) == 1
    monkeypatch.delenv("MOEMIX_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "moemix"


@pytest.mark.parametrize("texts", [[], [""], iter([]), ("", "")])
def test_no_text_is_a_data_error(texts, tmp_path):
    with pytest.raises(DataError, match="no text to train on"):
        train_bpe_tokenizer(texts, cache_dir=tmp_path)


def test_bad_items_and_vocab_size_are_errors(tmp_path):
    with pytest.raises(DataError, match="text 1: expected a string, got int"):
        train_bpe_tokenizer(["ok", 3], cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="vocab_size"):
        train_bpe_tokenizer(["ok"], vocab_size=100, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())
