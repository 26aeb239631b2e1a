"""Pull the program out of a model's answer: the first fenced code block, or the whole answer."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_code(answer: str) -> str:
    """The code in an answer.

    A fenced block (```` ```python ... ``` ````, language tag optional) wins; an unclosed fence runs to the end
    of the answer (generation may stop mid-block); an answer without any fence is taken as code.
    """
    match = _FENCE.search(answer)
    return match.group(1) if match else answer
