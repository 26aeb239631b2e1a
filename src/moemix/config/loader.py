"""Read a config: YAML 1.2 with the line of every key, command-line overrides checked against the schema.

Every error names where the value came from: ``file:line: field`` for the file, ``command-line override
--flag`` for an override, and the closest known key for a misspelt one.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from moemix.config.convert import BareFlag, Raw, build, closest, training_argument_names, type_name
from moemix.config.files import expand_each_file
from moemix.config.rules import check_section, join
from moemix.config.schema import Config, validate
from moemix.config.yaml12 import Loader
from moemix.errors import ConfigError


class Where:
    """Formats the place of a field for error messages: ``file:line: field`` or the override that set it."""

    def __init__(self, source: str, lines: dict[str, int], overridden: dict[str, str] | None = None):
        self.source, self.lines, self.overridden = source, lines, overridden or {}

    def __call__(self, path: str) -> str:
        probe = path
        while probe:  # an override of the field or of a section holding it
            if probe in self.overridden:
                flag = self.overridden[probe]
                return f"command-line override {flag}" if probe == path else f"command-line override {flag}: {path}"
            probe = probe.rpartition(".")[0]
        # A section made by an override of one of its fields (--model.lora.r 4 makes model.lora).
        flag = next((f for key, f in self.overridden.items() if key.startswith(f"{path}.")), None)
        if flag is not None:
            return f"command-line override {flag}: {path}"
        probe = path
        while probe:  # the line of the field, else of the nearest section holding it
            if probe in self.lines:
                return f"{self.source}:{self.lines[probe]}: {path}"
            probe = probe.rpartition(".")[0]
        return f"{self.source}: {path}"


def _read_yaml(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """The document and the line (1-based) of every key and list item in it, by dotted path.

    Raises:
        ConfigError: For invalid YAML or a key given twice in one mapping, with its line.
    """
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if key.value in seen and key.value != "<<":
                    raise ConfigError(f"{source}:{key.start_mark.line + 1}: {join(prefix, key.value)}: key given twice")
                seen.add(key.value)
                path = join(prefix, str(key.value))
                lines[path] = key.start_mark.line + 1
                walk(value, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                path = f"{prefix}.{i}"
                lines[path] = item.start_mark.line + 1
                walk(item, path)

    loader = Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
    finally:
        loader.dispose()
    if root is not None:
        walk(root, "")
    return data, lines


def _read_text(path: Path, source: str) -> str:
    """The file's text; a byte that is not UTF-8 is an error naming its line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as UTF-8"
        ) from None


def parse_overrides(args: list[str]) -> list[tuple[str, str, Raw]]:
    """Turn ``--a.b=v``, ``--a.b v``, ``a.b=v`` and bare ``--flag`` into (dotted key, flag as typed, raw value).

    The value stays text (:class:`moemix.config.convert.Raw`): the field it is given to decides its type.

    Raises:
        ConfigError: For an argument that is neither form.
    """
    pairs: list[tuple[str, str, Raw]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key = arg[2:]
            if "=" in key:
                key, raw = key.split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                i += 1
                raw = args[i]
            else:
                raw = BareFlag("true")
            flag = f"--{key}"
        elif "=" in arg and not arg.startswith("-"):
            key, raw = arg.split("=", 1)
            flag = key
        else:
            raise ConfigError(f"argument {arg!r}: expected --key value, --key=value or key=value")
        pairs.append((key.replace("-", "_"), flag, raw if isinstance(raw, BareFlag) else Raw(raw)))
        i += 1
    return pairs


def _optional_of(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [h for h in typing.get_args(hint) if h is not type(None)]
    return [hint]


def check_override_key(key: str, flag: str) -> str:
    """The dotted config key an override sets, checked against the schema.

    A bare ``TrainingArguments`` field (``--max_steps``) goes to ``training.``; a misspelt key is an error naming
    the closest known one; a key through a scalar setting (``--mixing.eta.x``) is an error naming the setting.

    Raises:
        ConfigError: For a key the schema does not have.
    """
    parts = key.split(".")
    top = {f.name for f in dataclasses.fields(Config)}
    if parts[0] not in top:
        if parts[0] in training_argument_names():
            return check_override_key(f"training.{key}", flag)
        known = [f"--{n}" for n in sorted(top | training_argument_names())]
        near = closest(f"--{parts[0]}", known)
        if near is not None and len(parts) > 1:
            near = ".".join([near, *parts[1:]])  # a misspelt section: the key under it as typed
        hint = f"; did you mean {near}?" if near else " (not a config field or TrainingArguments field)"
        raise ConfigError(f"unknown flag {flag}{hint}")
    hint: Any = Config
    for i, part in enumerate(parts):
        here = ".".join(parts[:i])
        options = _optional_of(hint)
        section = next((o for o in options if dataclasses.is_dataclass(o)), None)
        listed = next((o for o in options if typing.get_origin(o) is list), None)
        mapping = next((o for o in options if typing.get_origin(o) is dict or o is dict), None)
        if section is not None:
            names = {f.name: f for f in dataclasses.fields(section) if f.init}
            if part not in names:
                near = closest(part, names)
                hint_text = f"did you mean --{join(here, near)}?" if near else f"known keys here: {', '.join(names)}"
                raise ConfigError(f"command-line override {flag}: unknown key; {hint_text}")
            hint = typing.get_type_hints(section)[part]
        elif listed is not None and part.isdigit():
            hint = typing.get_args(listed)[0]
        elif here == "training":
            if part not in training_argument_names():
                near = closest(part, training_argument_names())
                hint_text = f"did you mean --training.{near}? " if near else ""
                raise ConfigError(
                    f"command-line override {flag}: unknown key; {hint_text}not a transformers.TrainingArguments field"
                )
            if i + 1 < len(parts):
                raise ConfigError(f"command-line override {flag}: training.{part} is a setting, not a section")
            return key
        elif mapping is not None:
            args = typing.get_args(mapping)
            hint = args[1] if args else Any
        elif hint is Any:
            return key
        elif listed is not None:
            raise ConfigError(
                f"command-line override {flag}: {here} is a list; name an item by its index, e.g. --{here}.0"
            )
        else:
            raise ConfigError(
                f"command-line override {flag}: {here} is a {type_name(hint)} setting, not a section; "
                f"set it with --{here} VALUE"
            )
    return key


def _set_path(data: dict, dotted: str, value: Any, flag: str) -> None:
    """Set ``data[a][b][0]...`` from ``a.b.0``, creating mappings on the way."""
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"command-line override {flag}: no list item {part} under {'.'.join(parts[:i])}")
            node = node[int(part)]
        else:
            child = node.get(part)
            if child is not None and not isinstance(child, (dict, list)):
                raise ConfigError(
                    f"command-line override {flag}: {'.'.join(parts[: i + 1])} holds a value, not a section"
                )
            if child is None:  # absent, or a section given as null: created
                child = node[part] = [] if nxt.isdigit() else {}
            node = child
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"command-line override {flag}: no list item {last}")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"command-line override {flag}: {'.'.join(parts[:-1])} holds a value, not a section")


def dump_config(config: Config) -> str:
    """The config as YAML, every field written out (overrides included); :func:`load_config` reads it back
    to an equal config. Paths stay as given (relative to the working directory of the run)."""
    header = "# The resolved config of this run (file and command-line overrides), written by moemix.\n"
    return header + yaml.safe_dump(dataclasses.asdict(config), sort_keys=False, allow_unicode=True)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, text: str | None = None) -> Config:
    """Load a config from a YAML file (or text), apply command-line overrides and validate it.

    Values are read as YAML 1.2 and converted to their fields' types (``2e-5`` is a float, ``no`` is text unless
    the field is a bool). A bare override key that is not a moemix field but a ``TrainingArguments`` field
    (``--max_steps 20``) goes to the ``training`` section.

    Raises:
        ConfigError: naming the file and line (or the override), the field and the rule of the first problem.
    """
    source = str(path) if path is not None else "<config>"
    if text is None:
        if path is None:
            raise ConfigError("no config given")
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{source}: config file not found")
        text = _read_text(p, source)
    data, lines = _read_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of config fields")

    overridden: dict[str, str] = {}
    for key, flag, value in parse_overrides(overrides or []):
        key = check_override_key(key, flag)
        _set_path(data, key, value, flag)
        overridden[key] = flag
    where = Where(source, lines, overridden)
    config = build(Config, data, "", where)
    config.datasets, where = expand_each_file(config.datasets, where)
    validate(config, where)
    config.__dict__["_where"] = where  # not a field: where each value came from, for later messages
    return config


def load_section(path: str | Path, name: str, section: type) -> Any:
    """One section of a config file (``mixing`` of a run's ``run_config.yaml``, say), typed and checked alone.

    The rest of the file is not read into the schema, so ``training:`` values need no ``TrainingArguments``
    types: ``moemix replay`` reads a run's mixing settings without importing transformers.

    Args:
        path: The YAML file.
        name: The section's key at the top level.
        section: Its dataclass (``MixingConfig``, ...); a missing section gives its defaults.

    Raises:
        ConfigError: Naming the file, line, field and rule of the first problem.
    """
    source = str(path)
    data, lines = _read_yaml(_read_text(Path(path), source), source)
    where = Where(source, lines)
    value = (data or {}).get(name) if isinstance(data, dict) else None
    built = build(section, value if value is not None else {}, name, where)
    check_section(built, where, name)
    return built


def where_set(config: Config, path: str) -> str:
    """Where a loaded config's field was set, for a message about it: ``file:line: path``, the override, or
    just ``path`` for a config built in code."""
    where = config.__dict__.get("_where")
    return where(path) if where is not None else path
