"""``--names``: map a run's dataset names to a consumer's registered dataset names or Megatron file prefixes.

A map is ``chat=my_sharegpt,code=my_code`` on the command line, or a YAML/JSON file holding the same mapping.
Every name it maps must be a dataset of the run; datasets it does not name keep moemix's name, except in the
Megatron formats, where a map must give every dataset its ``.bin``/``.idx`` prefix.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from moemix.errors import ConfigError


def parse_name_map(spec: str | dict[str, str], run_names: list[str]) -> dict[str, str]:
    """Read a name map and check it against the run's datasets.

    Args:
        spec: ``{"chat": "my_sharegpt"}``, ``"chat=my_sharegpt,code=my_code"``, or the path of a YAML/JSON file
            holding such a mapping.
        run_names: The run's dataset names.

    Returns:
        ``{moemix name: consumer name}``.

    Raises:
        ConfigError: Naming ``--names`` (and the file) and the rule broken: a malformed pair, a file that is
            missing or not a mapping of names to names, a name that is not one of the run's datasets, or two
            datasets mapped to one name.
    """
    where = "--names"
    if isinstance(spec, dict):
        mapping = spec
    elif Path(spec).is_file():
        where = f"--names {spec}"
        mapping = _read_file(Path(spec))
    elif "=" in spec:
        mapping = _parse_pairs(spec)
    else:
        raise ConfigError(f"--names: {spec!r} is neither a file nor name=consumer pairs (chat=my_sharegpt,code=...)")
    if not mapping:
        raise ConfigError(f"{where}: the name map is empty")
    for key, value in mapping.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"{where}: {key!r}: {value!r}: names must be strings (quote numbers in YAML)")
        if not value.strip() or value != value.strip():
            raise ConfigError(f"{where}: {key}: the consumer name {value!r} is empty or has surrounding spaces")
        if key not in run_names:
            close = difflib.get_close_matches(key, run_names, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{where}: {key!r} is not a dataset of the run ({', '.join(run_names)}){hint}")
    targets: dict[str, str] = {}
    for key, value in mapping.items():
        if value in targets:
            raise ConfigError(f"{where}: {targets[value]} and {key} both map to {value!r}")
        targets[value] = key
    return dict(mapping)


def _parse_pairs(spec: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in spec.split(","):
        key, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not key or not value:
            raise ConfigError(f"--names: {pair.strip()!r} is not name=consumer (e.g. chat=my_sharegpt)")
        if key in mapping:
            raise ConfigError(f"--names: {key} is mapped twice")
        mapping[key] = value
    return mapping


def _read_file(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"--names {path}: not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"--names {path}{line}: not valid YAML/JSON ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"--names {path}: expected a mapping of dataset name to consumer name, got {type(data).__name__}"
        )
    return data


def check_consumer_names(fmt: str, kept: list[str], consumer: list[str], mapping: dict[str, str]) -> None:
    """Refuse names the consumer would read wrongly.

    LLaMA-Factory splits ``dataset`` on commas; Megatron splits its blend on whitespace and reads every odd token
    as a prefix, so a Megatron map must give each exported dataset a prefix without spaces.

    Raises:
        ConfigError: Naming ``--names``, the dataset and the rule.
    """
    megatron = fmt.startswith("megatron")
    if megatron and mapping:
        missing = [n for n in kept if n not in mapping]
        if missing:
            raise ConfigError(f"--names: Megatron needs a file prefix for every dataset; missing: {', '.join(missing)}")
    for name, target in zip(kept, consumer):
        if megatron and any(c.isspace() for c in target):
            raise ConfigError(f"--names: {name}: Megatron prefix {target!r} has whitespace; Megatron splits on it")
        if fmt == "llamafactory" and "," in target:
            raise ConfigError(
                f"--names: {name}: LLaMA-Factory dataset name {target!r} has a comma; it splits on commas"
            )
        if "\n" in target or "\r" in target:
            raise ConfigError(f"--names: {name}: consumer name {target!r} spans lines")
