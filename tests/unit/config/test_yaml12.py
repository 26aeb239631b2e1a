"""Config YAML reads scalars by the YAML 1.2 core schema, not PyYAML's YAML 1.1 guesses."""

from __future__ import annotations

import math

import pytest

from moemix.config.yaml12 import parse_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2e-5", 2e-5),
        ("1e3", 1000.0),
        ("-.5", -0.5),
        ("1.", 1.0),
        ("0123", 123),  # decimal, not YAML 1.1's octal
        ("0x1f", 31),
        ("+1", 1),
        ("true", True),
        ("False", False),
        ("no", "no"),
        ("off", "off"),
        ("yes", "yes"),
        ("on", "on"),
        ("1_000", "1_000"),
        ("2024-01-01", "2024-01-01"),
        ("null", None),
        ("~", None),
        ("[a, 1e-3]", ["a", 1e-3]),
        ("{a: no}", {"a": "no"}),
        ("{unclosed", "{unclosed"),  # not YAML: the text as typed
    ],
)
def test_scalars(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_special_floats():
    assert math.isinf(parse_value(".inf")) and math.isnan(parse_value(".nan"))
