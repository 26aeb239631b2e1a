"""YAML read with the YAML 1.2 core schema's scalars, as Hugging Face users and JSON expect.

PyYAML implements YAML 1.1, where ``2e-5`` is a string (a float needs a dot), ``no``, ``off``, ``yes`` and
``on`` are booleans and ``0123`` is octal. This loader keeps PyYAML's parser and replaces only the implicit
scalar types with the 1.2 core schema's: ``true``/``false`` are the only booleans, ``1e3`` and ``2e-5`` are
floats, ``0123`` is 123, ``2024-01-01`` is text, ``null``/``~``/empty is None. Whether ``no`` means False is
then decided by the field it is given to (see :mod:`moemix.config.convert`), not by the YAML reader.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the YAML 1.2 core schema's booleans, integers and floats."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_int(loader: Loader, node: yaml.ScalarNode) -> int:
    # PyYAML's own constructor reads a leading 0 as octal (YAML 1.1); the 1.2 core schema reads it as decimal.
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text, 0)
    return int(text)


Loader.add_constructor(_INT, _construct_int)


def parse_value(text: str) -> Any:
    """A value typed on the command line, read as a YAML 1.2 flow value (``[a, b]``, ``{a: 1}``, ``2e-5``).

    Text that is not valid YAML stays the string it is.
    """
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (Loader is a SafeLoader)
    except yaml.YAMLError:
        return text
