"""Convert each value of a config to its field's declared type, building the section dataclasses.

moemix's own fields are typed by their annotations; the ``training:`` fields by ``TrainingArguments``' own
annotations and by the per-field argparse ``type`` and ``choices`` that ``transformers.HfArgumentParser`` derives
from them (its ``string_to_bool``, its enum choice functions), so a value means in a config what it means to
Hugging Face's own command line. A value typed on the command line arrives as :class:`Raw` text: a string
field keeps it as typed (``--datasets.0.name 007``), other fields read it as YAML 1.2.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import types
import typing
from argparse import ArgumentTypeError
from typing import Any

import yaml

from moemix.config.rules import Where, join
from moemix.config.yaml12 import parse_value
from moemix.errors import ConfigError

NULLS = ("null", "Null", "NULL", "~")
"""Command-line text that means None."""

# How moemix reads a TrainingArguments field where the annotation is narrower than what moemix accepts:
# `resume_from_checkpoint: true` resumes from the newest complete checkpoint (see train/checkpoint.py).
_TRAINING_HINTS: dict[str, Any] = {"resume_from_checkpoint": bool | str | None}


class Raw(str):
    """A value as typed on the command line, converted by the field's type rather than by YAML's guesses."""


class BareFlag(Raw):
    """A flag typed without a value (``--bf16``): true for a true/false setting, an error for any other, so that
    ``--output_dir`` with its value forgotten does not write a run into a folder named ``true``."""


def _bare_flag_error(hint: Any, path: str, where: Where) -> ConfigError:
    return ConfigError(
        f"{where(path)}: needs a value ({type_name(hint)}); only a true/false setting may be given without one"
    )


class _Mismatch(Exception):
    """A value is not of (and cannot become) the type asked for."""


def closest(name: str, known: typing.Iterable[str]) -> str | None:
    """The known name nearest to a misspelt one (difflib ratio >= 0.6), or None."""
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def type_name(hint: Any) -> str:
    """A type hint as the error messages name it: ``float``, ``int | None``, ``list[str]``."""
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " | ".join(type_name(h) for h in typing.get_args(hint))
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _got(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def _options(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _is_text(hint: Any) -> bool:
    """Whether a field holds plain text (``str`` or ``str | None``): command-line text is then kept as typed."""
    return all(option in (str, type(None)) for option in _options(hint)) and str in _options(hint)


def to_bool(value: Any) -> bool:
    """A boolean from a config value: ``true``/``false`` and the words Hugging Face's ``string_to_bool``
    accepts (yes/no, t/f, y/n, 1/0) or YAML 1.1 reads as booleans (on/off).

    Raises:
        ValueError: For any other value.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        from transformers.hf_argparser import string_to_bool

        try:
            return string_to_bool(value)
        except ArgumentTypeError:
            word = yaml.safe_load(value) if value.strip() else None  # YAML 1.1's booleans: on, off, ...
            if isinstance(word, bool):
                return word
    raise ValueError(value)


def _scalar(value: Any, hint: Any) -> Any:
    """``value`` as the scalar type ``hint``, converting only what means the same (``1e3`` for an int is 1000)."""
    if hint is Any or hint is object:
        return value
    if hint is bool:
        try:
            return to_bool(value)
        except ValueError:
            raise _Mismatch("bool (true/false, yes/no, on/off, 1/0)") from None
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            number = parse_value(value)  # "20" and "1e3" (an integral float) are integers
            if isinstance(number, int) and not isinstance(number, bool):
                return number
            if isinstance(number, float) and number.is_integer():
                return int(number)
        raise _Mismatch("int")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _Mismatch("float (a number such as 0.1 or 2e-5)")
    if hint is str:
        if isinstance(value, str):
            return str(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # `name: 2024` in a file means the text 2024
        raise _Mismatch("str")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise _Mismatch(f"one of {', '.join(str(m.value) for m in hint)}") from None
    if typing.get_origin(hint) is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise _Mismatch(type_name(hint))
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise _Mismatch(type_name(hint))


def _exact(value: Any, hint: Any) -> bool:
    """Whether ``value`` already is of type ``hint`` (no conversion needed), for choosing a union's member."""
    origin = typing.get_origin(hint) or hint
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    if hint in (int, float):
        return type(value) is hint
    if hint is Any:
        return False
    return isinstance(origin, type) and isinstance(value, origin)


def convert(value: Any, hint: Any, path: str, where: Where) -> Any:
    """``value`` converted to the type ``hint`` (building dataclasses from mappings).

    Raises:
        ConfigError: Naming the place, the field, the type expected and the value given.
    """
    if isinstance(value, BareFlag) and hint is not Any and bool not in _options(hint):
        raise _bare_flag_error(hint, path, where)
    if isinstance(value, Raw):
        if _is_text(hint):
            value = None if value in NULLS else str(value)
        else:
            value = parse_value(value)
    if value is None:
        if type(None) in _options(hint) or hint is Any:
            return None
        raise ConfigError(f"{where(path)}: expected {type_name(hint)}, got null")
    options = [o for o in _options(hint) if o is not type(None)]
    if len(options) > 1:
        exact = [o for o in options if _exact(value, o)]
        if exact:  # the value has this member's shape: a problem inside it is the one to report
            return convert(value, exact[0], path, where)
        for option in options:
            try:
                return convert(value, option, path, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where(path)}: expected {type_name(hint)}, got {_got(value)}")
    (hint,) = options
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path, where)
    origin = typing.get_origin(hint)
    if origin is list or hint is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where(path)}: expected a list ({type_name(hint)}), got {_got(value)}")
        (item,) = typing.get_args(hint) or (Any,)
        return [convert(v, item, f"{path}.{i}", where) for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where(path)}: expected a mapping ({type_name(hint)}), got {_got(value)}")
        _, item = typing.get_args(hint) or (str, Any)
        return {str(k): convert(v, item, f"{path}.{k}", where) for k, v in value.items()}
    try:
        return _scalar(value, hint)
    except _Mismatch as err:
        raise ConfigError(f"{where(path)}: expected {err}, got {_got(value)}") from None


def build(cls: type, data: Any, path: str, where: Where) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys (naming the closest known one).

    Raises:
        ConfigError: For a value that is not a mapping, an unknown key or a missing required field.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where(path or cls.__name__)}: expected a mapping, got {_got(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            near = closest(str(key), fields)
            hint = f"did you mean '{near}'? " if near else ""
            raise ConfigError(f"{where(join(path, str(key)))}: unknown key; {hint}known keys here: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            value = data[name]
            full = join(path, name)
            kwargs[name] = (
                convert_training(value, full, where) if full == "training" else convert(value, hints[name], full, where)
            )
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where(path or name)}: missing required field '{join(path, name)}'")
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class TrainingField:
    """How one ``TrainingArguments`` field reads a value: its annotation and HfArgumentParser's action."""

    hint: Any
    type: Any
    choices: tuple | None
    nargs: Any
    help: str


@functools.cache
def training_fields() -> dict[str, TrainingField]:
    """Every ``TrainingArguments`` field, typed as Hugging Face's own argument parser reads it."""
    from transformers import HfArgumentParser, TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    parser = HfArgumentParser(TrainingArguments)
    actions = {a.dest: a for a in parser._actions if a.dest in hints}  # noqa: SLF001 (the per-field types)
    out = {}
    for f in dataclasses.fields(TrainingArguments):
        if not f.init:
            continue
        action = actions.get(f.name)
        out[f.name] = TrainingField(
            hint=_TRAINING_HINTS.get(f.name, hints[f.name]),
            type=getattr(action, "type", None),
            choices=tuple(action.choices) if action is not None and action.choices else None,
            nargs=getattr(action, "nargs", None),
            help=str(f.metadata.get("help", "")),
        )
    return out


def training_argument_names() -> set[str]:
    """The field names of Hugging Face ``TrainingArguments``."""
    return set(training_fields())


def _training_value(value: Any, spec: TrainingField, path: str, where: Where) -> Any:
    options = _options(spec.hint)
    if isinstance(value, BareFlag) and bool not in options:
        raise _bare_flag_error(spec.hint, path, where)
    if isinstance(value, Raw):
        collection = any(typing.get_origin(o) in (list, dict) or o in (list, dict) for o in options)
        if value in NULLS:
            value = None
        elif str in options and not (collection and value.lstrip()[:1] in ("[", "{")):
            value = str(value)  # text fields (and enum | str fields) keep the text as typed
        else:
            value = parse_value(value)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{where(path)}: expected {type_name(spec.hint)}, got null")
    if isinstance(value, str):
        try:
            if bool in options and str not in options:
                value = to_bool(value)
            elif spec.type not in (None, str) and str not in options:
                value = spec.type(value)  # HfArgumentParser's own reading of the field
        except (ValueError, TypeError, ArgumentTypeError):
            expected = "bool (true/false, yes/no, on/off, 1/0)" if bool in options else type_name(spec.hint)
            raise ConfigError(f"{where(path)}: expected {expected}, got str {value!r}") from None
        if spec.nargs in ("+", "*") and str not in options:
            value = [value]
    elif not (float in options and type(value) is int):  # an int stays one where a float is asked (as before)
        value = convert(value, spec.hint, path, where)
    if spec.choices and not isinstance(value, (list, dict)) and value not in spec.choices:
        raise ConfigError(f"{where(path)}: must be one of {', '.join(str(c) for c in spec.choices)}, got {value!r}")
    return value


def convert_training(data: Any, path: str, where: Where) -> dict[str, Any]:
    """The ``training:`` section, each value converted to its ``TrainingArguments`` field's type.

    Raises:
        ConfigError: For a key that is no ``TrainingArguments`` field (naming the closest) or a value its field
            cannot take.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where(path)}: expected a mapping of TrainingArguments fields, got {_got(data)}")
    if not data:
        return {}
    specs = training_fields()
    out = {}
    for key, value in data.items():
        full = join(path, str(key))
        if key not in specs:
            near = closest(str(key), specs)
            hint = f"did you mean '{near}'? " if near else ""
            raise ConfigError(f"{where(full)}: unknown key; {hint}not a transformers.TrainingArguments field")
        out[key] = _training_value(value, specs[key], full, where)
    return out
