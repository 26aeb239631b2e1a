"""Per-dataset text clean-up before rendering: strip a prefix or suffix, or remove a regular expression's matches.

Published instruction data carries artefacts of how it was made: T0/P3-style completions end with a literal
``<|endoftext|>``, GSM8K answers hold ``<<48/2=24>>`` calculator notes. A dataset's ``strip_prefix``,
``strip_suffix`` and ``remove_regex`` name a field of the file (as the file names it, before ``columns`` and
``templates``) and what to take out of it. A field holding turns (ShareGPT ``conversations``, OpenAI
``messages``, Alpaca ``history``) has every turn's text cleaned. Each rule counts the records it changed, so
``moemix data validate`` shows whether it did anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moemix.config import DatasetConfig

_TURN_TEXT_KEYS = ("value", "content", "text")  # where a turn (or a content part) keeps its text


@dataclass(frozen=True)
class Rule:
    """One clean-up step on one field."""

    option: str
    """``strip_prefix``, ``strip_suffix`` or ``remove_regex``."""
    field: str
    """The field of the file it cleans."""
    apply: Callable[[str], str]
    """The step on one text."""

    @property
    def label(self) -> str:
        """``strip_suffix.completion``: how validate names the rule."""
        return f"{self.option}.{self.field}"


def _strip_prefix(prefix: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        rest = text.lstrip()
        return rest[len(prefix) :].lstrip() if rest.startswith(prefix) else text

    return apply


def _strip_suffix(suffix: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        rest = text.rstrip()
        return rest[: -len(suffix)].rstrip() if rest.endswith(suffix) else text

    return apply


def _remove(pattern: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)
    return lambda text: compiled.sub("", text)


_MAKERS = {"strip_prefix": _strip_prefix, "strip_suffix": _strip_suffix, "remove_regex": _remove}


def clean_up_rules(ds: DatasetConfig) -> list[Rule]:
    """The clean-up rules of a dataset entry: prefixes, then suffixes, then regular expressions, each in the
    order written (a list under one field is applied item by item)."""
    rules = []
    for option, make in _MAKERS.items():
        for name, values in getattr(ds, option).items():
            for value in [values] if isinstance(values, str) else values:
                rules.append(Rule(option, name, make(value)))
    return rules


def _map_texts(value: Any, apply: Callable[[str], str]) -> Any:
    """``value`` with ``apply`` run on its text: a string, or the texts inside a list of turns."""
    if isinstance(value, str):
        return apply(value)
    if isinstance(value, list):
        return [_map_texts(item, apply) for item in value]
    if isinstance(value, dict):
        return {k: _map_texts(v, apply) if k in _TURN_TEXT_KEYS else v for k, v in value.items()}
    return value


def clean_record(record: dict[str, Any], rules: list[Rule], changed: dict[str, int]) -> dict[str, Any]:
    """Apply the rules to a record's fields; a field the record lacks is left alone.

    Args:
        record: the parsed record (not modified).
        rules: from :func:`clean_up_rules`.
        changed: counts, by :attr:`Rule.label`, the records each rule changed (every label gets an entry).

    Returns:
        The cleaned record (``record`` itself when no rule applies).
    """
    out = record
    labels = set()  # a record counts once per field and option, however many listed items changed it
    for rule in rules:
        changed.setdefault(rule.label, 0)
        if rule.field not in out:
            continue
        new = _map_texts(out[rule.field], rule.apply)
        if new != out[rule.field]:
            out = dict(out) if out is record else out
            out[rule.field] = new
            labels.add(rule.label)
    for label in labels:
        changed[label] += 1
    return out
