"""Answers that hold the tokenizer's special tokens as text.

A literal ``<|endoftext|>`` at the end of a completion is text to the data file but a special token to the
tokenizer: the model would learn to emit it before its own end of turn. Such an answer is kept with a warning;
an answer made of nothing but special tokens and whitespace is invalid (there is nothing to learn, and its low
loss would draw a loss-driven mixture towards it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from moemix.data.validate import EMPTY_TARGET, SPECIAL_IN_TARGET, Problem, SplitReport

if TYPE_CHECKING:
    from moemix.data.tokenized import Example


def special_token_texts(tokenizer) -> tuple[str, ...]:
    """The texts of the tokenizer's special tokens (named ones and added tokens marked special), longest first."""
    texts = set(getattr(tokenizer, "all_special_tokens", None) or [])
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            texts.add(str(token.content))
    return tuple(sorted((t for t in texts if t.strip()), key=lambda t: (-len(t), t)))


def check_targets(examples: list[Example], specials: tuple[str, ...], report: SplitReport) -> list[Example]:
    """Keep the examples whose answers are not only special tokens; count the others and the warnings.

    Args:
        examples: read examples (``place`` and chat ``messages``).
        specials: from :func:`special_token_texts`.
        report: receives an ``empty target`` problem per dropped example (invalid, so strict loading stops)
            and a ``special token in target`` warning per kept example whose answer holds one.

    Returns:
        The examples that keep something to learn, in order.
    """
    if not specials:
        return examples
    pattern = re.compile("|".join(map(re.escape, specials)))
    kept = []
    for example in examples:
        answers = [m["content"] for m in example.messages if m["role"] == "assistant"]
        found = sorted({token for text in answers for token in pattern.findall(text)})
        if not found:
            kept.append(example)
        elif not any(pattern.sub("", text).strip() for text in answers):
            report.add_problem(
                Problem(
                    example.place,
                    f"{example.place}: assistant answer: only the special token(s) {', '.join(found)} and whitespace, "
                    "nothing to learn (an empty target)",
                    EMPTY_TARGET,
                )
            )
        else:
            report.add_problem(
                Problem(
                    example.place,
                    f"{example.place}: assistant answer: holds the tokenizer's special token(s) {', '.join(found)} "
                    "as text; strip_suffix or remove_regex takes them out",
                    SPECIAL_IN_TARGET,
                )
            )
            kept.append(example)
    return kept
