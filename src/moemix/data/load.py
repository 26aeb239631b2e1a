"""Load each configured dataset: read, check, split into train and dev, tokenise (or read from the cache).

The order of work for one dataset: resolve its sources (files, folders, globs, ``hf:`` and ``builtin:`` ids);
read every record and turn it into chat messages, collecting the records that break a rule; stop there if the
dataset is strict and any did; hold out the dev split if it is not given; tokenise with the chat template
(assistant-only labels), dropping examples whose assistant tokens truncation removed; cache the result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from moemix.config import Config, DatasetConfig
from moemix.data.cache import cache_key, cache_root, load_entry, save_entry, source_fingerprint, tokenizer_fingerprint
from moemix.data.formats import InvalidRecord, to_messages, unescape_newlines
from moemix.data.readers import BUILTIN_PREFIX, Row, builtin_rows, iter_rows, resolve_sources
from moemix.data.render import IGNORE_INDEX, assistant_spans
from moemix.data.validate import TRUNCATED_AWAY, DatasetReport, Problem, SplitReport
from moemix.errors import DataError

logger = logging.getLogger(__name__)

_BATCH = 256  # conversations tokenised per call: lets a fast tokenizer use its threads
SPLITS = ("train", "dev")


@dataclass
class TokenizedSplit:
    """The tokenised examples of one split of one dataset."""

    name: str
    input_ids: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    truncated_away: int = 0
    """Examples dropped because truncation removed all their assistant tokens."""

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_tokens(self) -> int:
        return int(sum(len(x) for x in self.input_ids))


@dataclass
class Example:
    """One usable record: where it came from and its chat messages."""

    place: str
    messages: list[dict[str, str]]


@dataclass
class LoadedDataset:
    """One dataset, ready to train on."""

    train: TokenizedSplit
    dev: TokenizedSplit
    report: DatasetReport


@dataclass
class _Read:
    """The messages of both splits of one dataset, before tokenising."""

    examples: dict[str, list[Example]]
    report: DatasetReport


# ------------------------------------------------------------------------------------------------ reading


def _rows(source: str, split: str, ds: DatasetConfig) -> Iterator[Row]:
    if source.startswith(BUILTIN_PREFIX):
        return builtin_rows(source, split)
    return iter_rows(source, ds.fields)


def read_examples(ds: DatasetConfig, sources: list[str], split: str, report: SplitReport) -> list[Example]:
    """The usable examples of some sources, in order; the others are counted in ``report``.

    Args:
        ds: the dataset's (or dev set's) config: format, columns, templates, fields, literal_newlines.
        sources: from :func:`~moemix.data.readers.resolve_sources`.
        split: ``train`` or ``dev`` (which split a ``builtin:`` source generates).
        report: receives the record count and the problems.

    Raises:
        DataError: for a file that cannot be read at all (missing, empty, unparsable as a whole).
    """
    examples = []
    for source in sources:
        for row in _rows(source, split, ds):
            report.records += 1
            if row.error is not None:
                report.add_problem(Problem(row.place, f"{row.place}: {row.error}", "malformed"))
                continue
            record = unescape_newlines(row.record) if ds.literal_newlines else row.record
            try:
                messages = to_messages(record, ds.format, ds.columns, row.place, ds.templates)
            except InvalidRecord as err:
                report.add_problem(Problem(row.place, str(err), err.kind))
                continue
            examples.append(Example(row.place, messages))
    return examples


def hold_out(examples: list, dev_size: int | float, seed: int, name: str) -> tuple[list, list]:
    """Split examples into (train, dev): a seeded random ``dev_size`` of them (a count, or a fraction in (0, 1))
    is the dev split, the rest the training split, both in file order and disjoint.

    Raises:
        DataError: if the dev split would be empty or leave no training example.
    """
    n = len(examples)
    k = int(dev_size) if isinstance(dev_size, int) else int(round(dev_size * n))
    if k < 1:
        raise DataError(f"dataset '{name}': dev_size {dev_size} of {n} usable examples holds out none; raise it")
    if k >= n:
        raise DataError(f"dataset '{name}': dev_size {dev_size} holds out {k} of {n} usable examples, leaving none to train on")
    held = np.zeros(n, dtype=bool)
    held[np.random.default_rng([seed, n]).permutation(n)[:k]] = True
    return [e for e, h in zip(examples, held) if not h], [e for e, h in zip(examples, held) if h]


def _dev_rule(ds: DatasetConfig, dev: DatasetConfig | None) -> str:
    if dev is not None:
        return "dev_datasets"
    if ds.dev_path is not None:
        return "dev_path"
    if ds.dev_size:
        return "dev_size"
    if isinstance(ds.path, str) and ds.path.startswith(BUILTIN_PREFIX):
        return "builtin"
    raise DataError(
        f"dataset '{ds.name}': no dev split; give dev_path, dev_size (a count or a fraction) or a dev_datasets entry "
        "(the mixing probe reads dev batches)"
    )


def _dev_source(ds: DatasetConfig, dev: DatasetConfig | None) -> tuple[DatasetConfig, list[str]] | None:
    """The config and sources the dev split is read from, or None when it is held out from the training data."""
    rule = _dev_rule(ds, dev)
    if rule == "dev_datasets":
        return dev, resolve_sources(dev.path)
    if rule == "dev_path":
        return ds, resolve_sources(ds.dev_path)
    if rule == "builtin":
        return ds, resolve_sources(ds.path)
    return None


def is_strict(ds: DatasetConfig, config: Config | None = None) -> bool:
    """Whether an invalid record of this dataset stops the run: its own skip_invalid, else the config's."""
    if ds.skip_invalid is not None:
        return not ds.skip_invalid
    return not (config is not None and config.data.skip_invalid)


def _raise_first(report: DatasetReport) -> None:
    first = report.first_fatal()
    if first is None:
        return
    more = report.fatal_problems - 1
    tail = f" (and {more} more invalid record(s) in dataset '{report.name}')" if more else ""
    raise DataError(
        f"{first.message}{tail}; `moemix data validate` lists them, skip_invalid: true skips them"
    )


def _read(ds: DatasetConfig, dev: DatasetConfig | None, seed: int) -> _Read:
    train_sources = resolve_sources(ds.path)
    dev_from = _dev_source(ds, dev)
    report = DatasetReport(ds.name, train_sources, dev_from[1] if dev_from else [])
    train = read_examples(ds, train_sources, "train", report.train)
    if dev_from is not None:
        dev_examples = read_examples(dev_from[0], dev_from[1], "dev", report.dev)
    else:
        usable = len(train)
        train, dev_examples = hold_out(train, ds.dev_size, seed, ds.name)
        report.dev_sources = [f"held out from train, {len(dev_examples)} of {usable} (seed {seed})"]
        report.dev.records = len(dev_examples)
        report.train.records -= len(dev_examples)
    if ds.max_examples is not None:
        train = train[: ds.max_examples]
    return _Read({"train": train, "dev": dev_examples}, report)


# --------------------------------------------------------------------------------------------- tokenising


def tokenize_examples(
    examples: list[Example], tokenizer, max_length: int, report: SplitReport, desc: str = "tokenize"
) -> TokenizedSplit:
    """Tokenise examples with the tokenizer's chat template; labels only on assistant tokens.

    Conversations are rendered one by one (the chat template is Python) and tokenised in batches. The result
    equals :func:`moemix.data.render.tokenize_conversation` example by example. An example whose assistant
    tokens all lie beyond ``max_length`` is dropped and counted as a ``truncated away`` problem.

    Returns:
        The split (its name is set by the caller).
    """
    out = TokenizedSplit("")
    full_lengths = []
    for start in tqdm(range(0, len(examples), _BATCH), desc=desc, leave=False, disable=None):
        chunk = examples[start : start + _BATCH]
        rendered = [assistant_spans(tokenizer, e.messages) for e in chunk]
        enc = tokenizer([text for text, _ in rendered], add_special_tokens=False, return_offsets_mapping=True)
        for example, (_, spans), ids, offsets in zip(chunk, rendered, enc["input_ids"], enc["offset_mapping"]):
            ids = np.asarray(ids, dtype=np.int32)
            starts = np.fromiter((a for a, _ in offsets), dtype=np.int64, count=len(offsets))
            inside = np.zeros(len(ids), dtype=bool)
            for a, b in spans:
                inside |= (starts >= a) & (starts < b)
            labels = np.where(inside, ids, IGNORE_INDEX).astype(np.int32)
            if not inside[:max_length].any():
                report.add_problem(Problem(
                    example.place,
                    f"{example.place}: every assistant token lies beyond max_length={max_length} "
                    f"(the example has {len(ids)} tokens); dropped",
                    TRUNCATED_AWAY,
                ))
                continue
            full_lengths.append(len(ids))
            report.truncated += len(ids) > max_length
            if len(ids) > max_length:  # copies, so the untruncated arrays are freed
                ids, labels = ids[:max_length].copy(), labels[:max_length].copy()
            out.input_ids.append(ids)
            out.labels.append(labels)
    _fill_counts(out, report)
    report.set_lengths(full_lengths)
    return out


def _fill_counts(split: TokenizedSplit, report: SplitReport) -> None:
    split.truncated_away = report.truncated_away
    report.examples = len(split)
    report.tokens = split.num_tokens
    report.label_tokens = int(sum(int((x != IGNORE_INDEX).sum()) for x in split.labels))


def _check_not_empty(split: TokenizedSplit, report: SplitReport, name: str, which: str, max_length: int) -> None:
    if len(split):
        return
    raise DataError(
        f"dataset '{name}': no usable example in {which} ({report.records} read, {report.invalid} invalid, "
        f"{report.truncated_away} lost every assistant token to truncation at max_length={max_length})"
    )


# ------------------------------------------------------------------------------------------------ caching


def _read_settings(ds: DatasetConfig) -> dict:
    return {
        "format": ds.format,
        "columns": ds.columns,
        "templates": ds.templates,
        "fields": ds.fields,
        "literal_newlines": ds.literal_newlines,
    }


def _read_key(ds: DatasetConfig, dev: DatasetConfig | None, seed: int) -> dict:
    """Everything the examples of both splits depend on, except the tokenizer and max_length."""
    rule = _dev_rule(ds, dev)
    dev_from = _dev_source(ds, dev)
    parts = {
        "train": [source_fingerprint(s, "train") for s in resolve_sources(ds.path)],
        "read": _read_settings(ds),
        "max_examples": ds.max_examples,
        "dev_rule": rule,
    }
    if dev_from is None:
        parts["held_out"] = {"dev_size": ds.dev_size, "seed": seed, "type": type(ds.dev_size).__name__}
    else:
        parts["dev"] = [source_fingerprint(s, "dev") for s in dev_from[1]]
        parts["dev_read"] = _read_settings(dev_from[0])
    return parts


# Examples read for the builtin tokenizer's training texts, kept until load_data tokenises them, so a start
# reads each file once. Keyed by the read key (content fingerprints), so a changed file is read again.
_READ_MEMO: dict[str, _Read] = {}


def _read_memo(ds: DatasetConfig, dev: DatasetConfig | None, seed: int, key: str, keep: bool) -> _Read:
    read = _READ_MEMO.pop(key, None)
    if read is None:
        read = _read(ds, dev, seed)
    if keep:
        _READ_MEMO[key] = read
    read.report.name = ds.name
    return read


def dev_configs(config: Config) -> dict[str, DatasetConfig]:
    """The ``dev_datasets`` entries by the name of the training dataset they are the dev split of."""
    return {dev.name: dev for dev in config.dev_datasets}


def training_texts(config: Config, strict: bool | None = None) -> Iterator[str]:
    """Every message text of every training split, in order: what a ``builtin`` tokenizer is trained on.

    Args:
        config: the run's config.
        strict: override every dataset's strictness, as in :func:`load_data`.

    Raises:
        DataError: as :func:`load_data` does for data that cannot be read or, when strict, invalid records.
    """
    devs = dev_configs(config)
    for ds in config.datasets:
        dev = devs.get(ds.name)
        key = cache_key(_read_key(ds, dev, config.seed))
        read = _read_memo(ds, dev, config.seed, key, keep=True)
        if (is_strict(ds, config) if strict is None else strict):
            _raise_first(read.report)
        for example in read.examples["train"]:
            for message in example.messages:
                yield message["content"]


def load_dataset(
    ds: DatasetConfig,
    tokenizer,
    max_length: int,
    seed: int,
    *,
    dev: DatasetConfig | None = None,
    strict: bool = True,
    cache: bool = True,
    cache_dir: str | None = None,
    tokenizer_key: str | None = None,
) -> LoadedDataset:
    """Read, check, split and tokenise one dataset, or read its tokenised splits from the cache.

    Args:
        ds: the dataset's config.
        tokenizer: a fast Hugging Face tokenizer with a chat template.
        max_length: tokens kept per example.
        seed: seed of a held-out dev split.
        dev: the ``dev_datasets`` entry for this dataset, if any.
        strict: stop at the first invalid record (else skip and count invalid records).
        cache: read and write the tokenisation cache.
        cache_dir: the cache folder (default ``$MOEMIX_CACHE/datasets``).
        tokenizer_key: :func:`~moemix.data.cache.tokenizer_fingerprint` of ``tokenizer``, if already computed.

    Returns:
        The train and dev splits and the report of what was found.

    Raises:
        DataError: for unreadable data, an invalid record when strict (naming its place and field), or a split
            left without any usable example.
    """
    read_key = _read_key(ds, dev, seed)
    tokenizer_key = tokenizer_key or tokenizer_fingerprint(tokenizer)
    key = cache_key({**read_key, "tokenizer": tokenizer_key, "max_length": max_length})
    root = cache_root(cache_dir)
    if cache:
        hit = load_entry(root, key, SPLITS)
        if hit is not None:
            splits, meta = hit
            report = DatasetReport.from_dict(meta["report"])
            report.name, report.from_cache = ds.name, True
            if strict:
                _raise_first(report)
            _READ_MEMO.pop(cache_key(read_key), None)
            out = {}
            for which in SPLITS:
                out[which] = TokenizedSplit(f"{ds.name}/{which}", *splits[which])
                out[which].truncated_away = getattr(report, which).truncated_away
            return LoadedDataset(out["train"], out["dev"], report)

    read = _read_memo(ds, dev, seed, cache_key(read_key), keep=False)
    report = read.report
    if strict:
        _raise_first(report)
    out = {}
    for which in SPLITS:
        split_report = getattr(report, which)
        split = tokenize_examples(read.examples[which], tokenizer, max_length, split_report, f"tokenize {ds.name}/{which}")
        split.name = f"{ds.name}/{which}"
        _check_not_empty(split, split_report, ds.name, which, max_length)
        out[which] = split
    if cache:
        splits = {which: (out[which].input_ids, out[which].labels) for which in SPLITS}
        save_entry(root, key, splits, {"report": report.to_dict()})
    return LoadedDataset(out["train"], out["dev"], report)


def load_data(config: Config, tokenizer, *, strict: bool | None = None, warn: bool = True) -> list[LoadedDataset]:
    """Load every dataset of a config, in order, and log what was skipped.

    Args:
        config: the run's config (datasets, dev_datasets, data, max_length, seed).
        tokenizer: as for :func:`load_dataset`.
        strict: override every dataset's strictness (``moemix data validate`` passes False to see everything).
        warn: log a warning per split that skipped or dropped examples.

    Raises:
        DataError: as :func:`load_dataset`.
    """
    devs = dev_configs(config)
    loaded = []
    tokenizer_key = tokenizer_fingerprint(tokenizer)  # once: a large vocabulary's JSON takes a while to hash
    for ds in config.datasets:
        item = load_dataset(
            ds,
            tokenizer,
            config.max_length,
            config.seed,
            dev=devs.get(ds.name),
            strict=is_strict(ds, config) if strict is None else strict,
            cache=config.data.cache,
            cache_dir=config.data.cache_dir,
            tokenizer_key=tokenizer_key,
        )
        for which in SPLITS:
            s = getattr(item.report, which)
            if warn and s.problem_counts:
                logger.warning(
                    "dataset '%s' %s: skipped %d invalid record(s), dropped %d truncated away, kept %d (first: %s)",
                    ds.name, which, s.invalid, s.truncated_away, s.examples, s.problems[0].message,
                )
        loaded.append(item)
    return loaded

