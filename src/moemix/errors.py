"""The errors moemix raises for bad user input.

Every error a user can cause is a :class:`MoemixError`. Its message names the file, line, field and the rule
broken, on one line, so that the command line can print it as it is and exit with status 2.
"""

from __future__ import annotations


class MoemixError(Exception):
    """Bad input from the user: a config, a data file, a model or a value that breaks a rule."""


class ConfigError(MoemixError):
    """A config file or override breaks the schema (unknown key, wrong type, value out of range)."""


class DataError(MoemixError):
    """A data file cannot be read or holds no usable example."""


class MixingError(MoemixError):
    """Mixture weights or mixing parameters break a rule (negative weights, eta < 0, ...)."""


class RoutingError(MoemixError):
    """The model's routing cannot be read (no MoE layer, unknown router layout)."""
