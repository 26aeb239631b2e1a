"""The rules a single setting's value must follow, declared beside the field they belong to.

A field of a config dataclass is declared with :func:`setting`, which keeps its default and its rules
together: ``eta: float = setting(10.0, Range(low=0.0))``. The loader checks every rule after converting a value
to the field's type; the command-line flags derived from the dataclasses read ``OneOf`` rules as choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moemix.errors import ConfigError

Where = Callable[[str], str]
"""Formats the place of a dotted field path for an error message: ``file:line: path`` or ``--flag``."""


@dataclass(frozen=True)
class Range:
    """A finite number within bounds: ``[low, high]``, either end open or absent."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """The rule in words, as the error message states it."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"must be in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"must be {'>' if self.low_open else '>='} {_num(self.low)}"
        return f"must be {'<' if self.high_open else '<='} {_num(self.high)}"

    def __call__(self, value: Any) -> str | None:
        # NaN fails every comparison, so `not (value >= low)` also rejects it; infinity is never a setting.
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.describe()}, got {value}"
        ok = True
        if self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        return None if ok else f"{self.describe()}, got {value}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of names (shown as the choices of a command-line flag)."""

    choices: tuple[str, ...]

    def __call__(self, value: Any) -> str | None:
        if value in self.choices:
            return None
        near = difflib.get_close_matches(str(value), self.choices, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"must be one of {', '.join(self.choices)}, got {value!r}{hint}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def setting(default: Any = dataclasses.MISSING, *rules: Callable[[Any], str | None], factory: Any = None) -> Any:
    """A dataclass field with its default and the rules its value must follow (checked when not None).

    Args:
        default: The default value (omit for a required field, or give ``factory``).
        *rules: Callables returning the rule broken (e.g. ``"must be >= 1, got 0"``) or None.
        factory: A ``default_factory`` for mutable defaults.

    Returns:
        A ``dataclasses.field``.
    """
    metadata = {"rules": rules}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_rules(f: dataclasses.Field) -> tuple[Callable[[Any], str | None], ...]:
    """The rules declared for a field with :func:`setting` (none for a plain field)."""
    return tuple(f.metadata.get("rules", ()))


def choices(f: dataclasses.Field) -> tuple[str, ...] | None:
    """The names a field accepts, when one of its rules is a :class:`OneOf`."""
    for rule in field_rules(f):
        if isinstance(rule, OneOf):
            return rule.choices
    return None


def check_section(section: Any, where: Where, prefix: str = "") -> None:
    """Check a config dataclass: each field's rules, nested sections, then the section's own ``check``.

    Args:
        section: A config dataclass instance (``Config``, ``MixingConfig``, ``UpcycleConfig``, ...).
        where: Formats a dotted field path for the error message.
        prefix: The dotted path of ``section`` inside the config (``""`` for the top).

    Raises:
        ConfigError: Naming the place, the field and the rule broken.
    """
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        path = f"{prefix}.{f.name}" if prefix else f.name
        if value is None:
            continue
        for rule in field_rules(f):
            broken = rule(value)
            if broken:
                raise ConfigError(f"{where(path)}: {broken}")
        if dataclasses.is_dataclass(value):
            check_section(value, where, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    check_section(item, where, f"{path}.{i}")
    own = getattr(section, "check", None)
    if own is not None:
        own(where, prefix)


def join(prefix: str, name: str) -> str:
    """The dotted path of field ``name`` of the section at ``prefix``."""
    return f"{prefix}.{name}" if prefix else name
