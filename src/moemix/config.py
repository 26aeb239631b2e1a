"""The one config schema: annotated dataclasses, one docstring per field, loaded from YAML with overrides.

Training options are Hugging Face's own ``TrainingArguments`` (the ``training:`` section), so ``--max_steps``,
``--bf16``, ``--report_to``, ``--deepspeed`` mean what Trainer users expect. Everything else is moemix's own
and listed here. Unknown keys are errors that name the file, line and key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from moemix.errors import ConfigError


@dataclass
class DatasetConfig:
    """One instruction dataset of the mixture."""

    name: str
    """Name used in logs, weights and metrics; unique within a config."""
    path: str
    """Training data: a .jsonl or .json file (relative to the working directory), or ``builtin:<domain>``
    for the generated demo domains (dialogue, nlp, math, code)."""
    dev_path: str | None = None
    """Dev split file, in the same format. For ``builtin:`` data the generator's own dev split is used."""
    dev_size: int = 0
    """When ``dev_path`` is not given: examples held out from the training file as the dev split (seeded)."""
    format: str = "auto"
    """``sharegpt`` (conversations of {from, value}), ``alpaca`` (instruction, input, output) or ``auto``."""
    columns: dict[str, str] = field(default_factory=dict)
    """Map from moemix's field names (conversations, instruction, input, output, system) to the file's own,
    e.g. ``{instruction: question, output: answer}`` for GSM8K."""
    max_examples: int | None = None
    """Read at most this many training examples (the first ones)."""


@dataclass
class ModelConfig:
    """The MoE model to fine-tune and its tokenizer."""

    name_or_path: str | None = None
    """A local Hugging Face model folder (or hub id already in the local cache)."""
    tiny: str | None = None
    """Instead of ``name_or_path``: build a small random-init model of this architecture
    (mixtral, qwen2_moe, qwen3_moe, olmoe) from a config."""
    tiny_config: dict[str, Any] = field(default_factory=dict)
    """Overrides of the tiny model's config (hidden_size, num_hidden_layers, num_local_experts, ...)."""
    tokenizer: str | None = None
    """Tokenizer folder; default: ``name_or_path``. ``builtin`` trains a byte-level BPE on the training data
    (cached)."""
    vocab_size: int = 2048
    """Vocabulary size of the ``builtin`` tokenizer."""
    seed: int = 0
    """Seed of the random initialisation of a ``tiny`` model."""


@dataclass
class MixingConfig:
    """How the sampling weights of the datasets are chosen and updated."""

    policy: str = "dynamic"
    """``dynamic`` (the paper's update from gate loads), ``uniform`` or ``static``."""
    eta: float = 10.0
    """Step size of the dynamic update (>= 0)."""
    c: float = 0.05
    """Smoothing towards uniform in the dynamic update, in [0, 1]."""
    interval: int = 100
    """Optimizer steps between two updates (the paper's m)."""
    probe_batches: int = 5
    """Batches of each dataset's dev split run to collect its gate loads at an update."""
    probe_batch_size: int | None = None
    """Examples per probe batch; default: ``training.per_device_eval_batch_size``."""
    weights: dict[str, float] | None = None
    """Weights by dataset name: the fixed weights of ``static``, the starting weights of ``dynamic``."""
    layer: str | int = "last"
    """MoE layer whose router is read: ``last`` (the paper) or an index among the MoE layers."""


@dataclass
class Config:
    """A moemix run."""

    datasets: list[DatasetConfig]
    """The datasets to mix (at least two)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model and tokenizer."""
    mixing: MixingConfig = field(default_factory=MixingConfig)
    """The mixing policy."""
    output_dir: str = "runs/moemix"
    """Run folder: checkpoints, mixture.jsonl, metrics.json."""
    max_length: int = 1024
    """Examples are truncated to this many tokens (batches are padded to their longest example only)."""
    seed: int = 42
    """Seed of the sampler and of held-out dev splits."""
    eval_batches: int | None = None
    """Dev batches per dataset for the final dev loss; default: the whole dev split."""
    training: dict[str, Any] = field(default_factory=dict)
    """Hugging Face ``TrainingArguments`` fields (max_steps, learning_rate, per_device_train_batch_size, ...)."""


# ---------------------------------------------------------------------------------------------- loading


def _key_lines(text: str) -> dict[str, int]:
    """Line number (1-based) of every key and list item in a YAML document, by dotted path."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = f"{prefix}.{key.value}" if prefix else str(key.value)
                lines[path] = key.start_mark.line + 1
                walk(value, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                path = f"{prefix}.{i}"
                lines[path] = item.start_mark.line + 1
                walk(item, path)

    root = yaml.compose(text)
    if root is not None:
        walk(root, "")
    return lines


class _Where:
    """Formats the place of a field for error messages: ``file:line: field``."""

    def __init__(self, source: str, lines: dict[str, int], overridden: set[str] | None = None):
        self.source, self.lines, self.overridden = source, lines, overridden or set()

    def __call__(self, path: str) -> str:
        probe = path
        while probe:
            if probe in self.overridden:
                return f"command-line override {probe}: {path}" if probe != path else f"command-line override: {path}"
            if probe in self.lines:
                return f"{self.source}:{self.lines[probe]}: {path}"
            probe = probe.rpartition(".")[0]
        return f"{self.source}: {path}"


def _check_type(value: Any, hint: Any, path: str, where: _Where) -> Any:
    """Check ``value`` against a (simple) type hint, building nested dataclasses. Returns the value."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(value, option, path, where)
            except ConfigError as err:
                errors.append(err)
        raise errors[-1] if len(errors) == 1 else ConfigError(
            f"{where(path)}: expected {_type_name(hint)}, got {type(value).__name__} {value!r}"
        )
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where(path)}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)
        return [_check_type(v, item, f"{path}.{i}", where) for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where(path)}: expected a mapping, got {type(value).__name__}")
        args = typing.get_args(hint)
        if args and args[1] is not Any:
            return {str(k): _check_type(v, args[1], f"{path}.{k}", where) for k, v in value.items()}
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{where(path)}: expected {_type_name(hint)}, got {type(value).__name__} {value!r}")
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _build(cls: type, data: Any, path: str, where: _Where) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and missing required fields."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where(path or cls.__name__)}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            full = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where(full)}: unknown key; known keys here: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        full = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _check_type(data[name], hints[name], full, where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where(path or name)}: missing required field '{full}'")
    return cls(**kwargs)


def _set_path(data: dict, dotted: str, value: Any) -> None:
    """Set ``data[a][b][0]...`` from ``a.b.0``, creating mappings on the way."""
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {dotted}: no list item {part} under {'.'.join(parts[:i])}")
            node = node[int(part)]
        else:
            node = node.setdefault(part, [] if nxt.isdigit() else {})
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"override {dotted}: no list item {last}")
        node[int(last)] = value
    else:
        node[last] = value


def parse_overrides(args: list[str]) -> list[tuple[str, Any]]:
    """Turn ``--a.b=v``, ``--a.b v``, ``a.b=v`` and bare ``--flag`` into (dotted key, YAML-parsed value) pairs.

    Values are parsed as YAML, so ``5`` is an int, ``true`` a bool and ``[a, b]`` a list.
    """
    pairs: list[tuple[str, Any]] = []
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
                raw = "true"
        elif "=" in arg:
            key, raw = arg.split("=", 1)
        else:
            raise ConfigError(f"override {arg!r}: expected key=value or --key value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        pairs.append((key.replace("-", "_") if key.startswith("-") else key, value))
        i += 1
    return pairs


def training_argument_names() -> set[str]:
    """The field names of Hugging Face ``TrainingArguments``."""
    from transformers import TrainingArguments

    return {f.name for f in dataclasses.fields(TrainingArguments)}


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, text: str | None = None) -> Config:
    """Load a config from a YAML file (or text), apply command-line overrides and validate it.

    A bare override key that is not a moemix field but a ``TrainingArguments`` field (``--max_steps 20``)
    goes to the ``training`` section.

    Raises:
        ConfigError: naming the file, line and field of the first problem.
    """
    source = str(path) if path is not None else "<config>"
    if text is None:
        if path is None:
            raise ConfigError("no config given")
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{source}: config file not found")
        text = p.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
        lines = _key_lines(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of config fields")

    top = {f.name for f in dataclasses.fields(Config)}
    overridden: set[str] = set()
    for key, value in parse_overrides(overrides or []):
        head = key.split(".")[0]
        if head not in top and head in training_argument_names():
            key = f"training.{key}"
        _set_path(data, key, value)
        overridden.add(key)
    where = _Where(source, lines, overridden)
    config = _build(Config, data, "", where)
    validate(config, where)
    return config


def validate(config: Config, where: _Where | None = None) -> None:
    """Check cross-field rules: unique names, known policy, ranges, weights naming real datasets."""
    where = where or _Where("<config>", {})
    from moemix.mixing import POLICIES

    if len(config.datasets) < 2:
        raise ConfigError(f"{where('datasets')}: at least two datasets are needed to mix, got {len(config.datasets)}")
    seen: set[str] = set()
    for i, ds in enumerate(config.datasets):
        if ds.name in seen:
            raise ConfigError(f"{where(f'datasets.{i}.name')}: duplicate dataset name {ds.name!r}")
        seen.add(ds.name)
        if ds.format not in ("auto", "sharegpt", "alpaca"):
            raise ConfigError(f"{where(f'datasets.{i}.format')}: must be auto, sharegpt or alpaca, got {ds.format!r}")
        if ds.dev_size < 0:
            raise ConfigError(f"{where(f'datasets.{i}.dev_size')}: must be >= 0, got {ds.dev_size}")
    m = config.mixing
    if m.policy not in POLICIES:
        raise ConfigError(f"{where('mixing.policy')}: unknown policy {m.policy!r}; choose one of {', '.join(POLICIES)}")
    if m.eta < 0:
        raise ConfigError(f"{where('mixing.eta')}: must be >= 0, got {m.eta}")
    if not 0.0 <= m.c <= 1.0:
        raise ConfigError(f"{where('mixing.c')}: must be in [0, 1], got {m.c}")
    for name in ("interval", "probe_batches"):
        if getattr(m, name) < 1:
            raise ConfigError(f"{where(f'mixing.{name}')}: must be >= 1, got {getattr(m, name)}")
    if m.weights is not None:
        unknown = set(m.weights) - seen
        if unknown:
            raise ConfigError(f"{where('mixing.weights')}: names no dataset: {', '.join(sorted(unknown))}")
        missing = seen - set(m.weights)
        if missing:
            raise ConfigError(f"{where('mixing.weights')}: no weight for dataset(s): {', '.join(sorted(missing))}")
        values = list(m.weights.values())
        if any(v < 0 for v in values):
            raise ConfigError(f"{where('mixing.weights')}: weights must be non-negative")
        if abs(sum(values) - 1.0) > 1e-6:
            raise ConfigError(f"{where('mixing.weights')}: weights must sum to 1, they sum to {sum(values):.6g}")
    elif m.policy == "static":
        raise ConfigError(f"{where('mixing.policy')}: policy static needs mixing.weights")
    if isinstance(m.layer, str) and m.layer != "last":
        raise ConfigError(f"{where('mixing.layer')}: must be 'last' or a MoE layer index, got {m.layer!r}")
    model = config.model
    if (model.name_or_path is None) == (model.tiny is None):
        raise ConfigError(f"{where('model')}: give exactly one of model.name_or_path and model.tiny")
    if model.tiny is not None and model.tokenizer is None:
        raise ConfigError(f"{where('model.tokenizer')}: a tiny model needs a tokenizer (a folder or 'builtin')")
    unknown = set(config.training) - training_argument_names()
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{where(f'training.{key}')}: unknown key; not a transformers.TrainingArguments field")
    if config.max_length < 8:
        raise ConfigError(f"{where('max_length')}: must be >= 8, got {config.max_length}")
