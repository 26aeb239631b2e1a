"""Fit a conversation into ``max_length`` by cutting its prompt, not its answer (``truncation: left|right``).

The default, ``drop``, cuts an example at ``max_length`` whatever lies there: a long prompt takes the answer
with it and the example is dropped. ``left`` and ``right`` shorten the prompt instead (everything before the
last assistant turn) until the last answer fits:

- ``left`` cuts the oldest context: whole earlier exchanges first, then the start of the last user message;
- ``right`` cuts the end of the last user message (its start, usually the instruction, stays), then earlier
  exchanges.

The prompt keeps at least half of ``max_length``, so a very long answer does not leave it a few tokens: what
still does not fit then is cut from the end, as with ``drop``. The system message and the chat template's own
tokens are never cut. The cut is made on message text and the conversation rendered again, so the result is
always a well-formed render of the template.
"""

from __future__ import annotations

_MAX_PASSES = 16  # each pass measures, then cuts what is still over; one or two passes are the rule


def _length(tokenizer, messages: list[dict[str, str]], generation_prompt: bool = False) -> int:
    if not messages:
        return 0
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _cut_text(tokenizer, text: str, tokens: int, side: str) -> str | None:
    """``text`` less about ``tokens`` tokens at its start (``left``) or end (``right``), keeping at least one;
    None when it has one token or none."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) <= 1:
        return None
    tokens = min(tokens, len(offsets) - 1)
    if side == "left":
        return text[offsets[tokens][0] :]
    return text[: offsets[len(offsets) - tokens][0]]


def fit_prompt(tokenizer, messages: list[dict[str, str]], max_length: int, side: str) -> list[dict[str, str]] | None:
    """Shorten the prompt of a conversation longer than ``max_length`` tokens so that its last answer fits.

    Args:
        tokenizer: a tokenizer with a chat template.
        messages: an optional system message, then user and assistant turns ending with the assistant.
        max_length: the tokens an example may have.
        side: ``left`` (cut the oldest context) or ``right`` (cut the end of the last user message).

    Returns:
        The shortened messages, or None when the conversation fits or its prompt cannot give anything up.
    """
    total = _length(tokenizer, messages)
    if total <= max_length:
        return None
    prompt_length = _length(tokenizer, messages[:-1], generation_prompt=True)
    budget = max(max_length - (total - prompt_length), min(prompt_length, max_length // 2))
    out = list(messages)
    first = 1 if out[0]["role"] == "system" else 0
    for _ in range(_MAX_PASSES):
        over = _length(tokenizer, out[:-1], generation_prompt=True) - budget
        if over <= 0:
            break
        last_user = len(out) - 2
        earlier = last_user - first  # messages of the exchanges before the last one
        if side == "left" and earlier >= 2:
            del out[first : first + 2]
            continue
        cut = _cut_text(tokenizer, out[last_user]["content"], over, side)
        if cut is not None:
            out[last_user] = {**out[last_user], "content": cut}
        elif earlier >= 2:
            del out[first : first + 2]
        else:
            break
    return out if out != messages else None
