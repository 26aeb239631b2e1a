"""Chat rendering: labels on exactly the assistant tokens, truncation, and templates that cannot be used."""

from __future__ import annotations

import numpy as np
import pytest

from moemix.data import IGNORE_INDEX, tokenize_conversation
from moemix.data.builtin import DOMAINS, builtin_records
from moemix.data.formats import to_messages
from moemix.errors import DataError
from moemix.testing import builtin_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return builtin_tokenizer(DOMAINS, 100, vocab_size=800, cache_dir=tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def conversations():
    records = [r for d in DOMAINS for r in builtin_records(d, "dev", n=10)]
    return [to_messages(r, "sharegpt", {}, f"dev[{i}]") for i, r in enumerate(records)]


def test_labels_are_exactly_the_generation_mask(tok, conversations):
    # The template's own {% generation %} mask is an independent account of which tokens are the assistant's.
    for messages in conversations:
        ids, labels = tokenize_conversation(tok, messages, max_length=10_000)
        enc = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        assert ids.tolist() == list(enc["input_ids"])
        mask = np.asarray(enc["assistant_masks"], dtype=bool)
        np.testing.assert_array_equal(labels != IGNORE_INDEX, mask)
        np.testing.assert_array_equal(labels[mask], ids[mask])
        learnt = tok.decode(ids[mask].tolist())
        for message in messages:
            if message["role"] == "assistant":
                assert message["content"] in learnt
            else:
                assert message["content"] not in learnt


def test_truncation_keeps_a_prefix(tok, conversations):
    messages = max(conversations, key=lambda m: sum(len(x["content"]) for x in m))
    full_ids, full_labels = tokenize_conversation(tok, messages, max_length=10_000)
    ids, labels = tokenize_conversation(tok, messages, max_length=40)
    assert len(ids) == 40 < len(full_ids)
    np.testing.assert_array_equal(ids, full_ids[:40])
    np.testing.assert_array_equal(labels, full_labels[:40])


def test_tokenizer_without_chat_template(tok):
    bare = tok.__class__(tokenizer_object=tok.backend_tokenizer) if hasattr(tok, "backend_tokenizer") else None
    if bare is None:
        pytest.skip("tokenizer class cannot be rebuilt without a template")
    bare.chat_template = None
    with pytest.raises(DataError, match="has no chat template"):
        tokenize_conversation(bare, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], 32)


def test_template_that_is_not_prefix_stable(tok):
    # A template that puts a conversation-wide footer after the last message breaks the prefix property.
    unstable = tok.__class__(tokenizer_object=tok.backend_tokenizer)
    unstable.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}[{{ messages | length }} turns]"
    )
    with pytest.raises(DataError, match="not prefixes of its full render"):
        tokenize_conversation(unstable, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], 32)
