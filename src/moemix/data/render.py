"""Render chat messages with the tokenizer's own chat template; labels only on assistant tokens."""

from __future__ import annotations

import numpy as np

from moemix.errors import DataError

IGNORE_INDEX = -100


def assistant_spans(tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """Render a conversation and find the character spans of the assistant turns.

    Each assistant turn i spans from the end of ``messages[:i]`` rendered with a generation prompt to the
    end of ``messages[:i+1]`` rendered: so the turn's end-of-turn token is learnt, the role header is not.
    This works with any template whose renders of a conversation's prefixes are prefixes of its render.

    Returns:
        The full rendered text and the (start, end) character spans.

    Raises:
        DataError: if the tokenizer has no chat template or its renders are not prefix-stable.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(f"tokenizer {type(tokenizer).__name__}: has no chat template; give a tokenizer that has one")
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        # transformers refuses to render an empty conversation; its render is the empty string.
        start = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True) if i else ""
        end = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (full.startswith(start) and full.startswith(end) and len(start) <= len(end)):
            raise DataError(
                f"tokenizer {type(tokenizer).__name__}: chat template renders of a conversation's prefixes are not "
                "prefixes of its full render, so assistant tokens cannot be located"
            )
        spans.append((len(start), len(end)))
    return full, spans


def tokenize_conversation(tokenizer, messages: list[dict[str, str]], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise a conversation: input ids and labels (assistant tokens only), truncated to ``max_length``.

    Returns:
        ``(input_ids, labels)`` as int32 arrays of equal length; labels are ``-100`` outside assistant turns.
    """
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int32)[:max_length]
    starts = np.asarray([a for a, _ in enc["offset_mapping"]], dtype=np.int64)[:max_length]
    inside = np.zeros(len(ids), dtype=bool)
    for a, b in spans:
        inside |= (starts >= a) & (starts < b)
    labels = np.where(inside, ids, IGNORE_INDEX).astype(np.int32)
    return ids, labels
