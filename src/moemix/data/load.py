"""Load each configured dataset: read, check, split into train and dev, tokenise (or read from the cache).

The order of work for one dataset: resolve its sources (files, folders, globs, ``hf:`` and ``builtin:`` ids);
read every record, clean it up (``strip_prefix``, ``strip_suffix``, ``remove_regex``) and turn it into chat
messages, collecting the records that break a rule; hold out the dev split if it is not given (seeded by
``data_seed``); set aside answers made only of the tokenizer's special tokens; stop there if the dataset is
strict and any record broke a rule; tokenise with the chat template (assistant-only labels), cutting long
prompts if ``truncation`` says so and dropping examples whose assistant tokens truncation removed; cache the
result. A run logs one table of what was skipped, dropped and cut (:func:`~moemix.data.validate.summary_table`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from moemix.config import Config, DataConfig, DatasetConfig
from moemix.data.cache import cache_key, cache_root, load_entry, save_entry, source_fingerprint, tokenizer_fingerprint
from moemix.data.clean import clean_record, clean_up_rules
from moemix.data.formats import InvalidRecord, to_messages, unescape_newlines
from moemix.data.readers import BUILTIN_PREFIX, Row, builtin_rows, iter_rows, resolve_sources
from moemix.data.targets import check_targets, special_token_texts
from moemix.data.tokenized import Example, TokenizedSplit, tokenize_examples
from moemix.data.validate import MAX_LISTED, DatasetReport, Problem, SplitReport, summary_table
from moemix.errors import DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev")
MAX_RECORD_CHARS = DataConfig.max_record_chars
"""The default of ``data.max_record_chars``: the characters of text one record may hold."""
TOO_LONG = "too long"
"""A record holding more text than ``data.max_record_chars``: an invalid record."""


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


def _text_size(value) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_text_size(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_text_size(v) for v in value)
    return 0


def oversized(record: dict, place: str, max_chars: int) -> Problem | None:
    """The problem of a record holding more than ``max_chars`` characters of text, naming its longest field.

    Checked on the record as read, before clean-up and rendering, so that a huge record costs one pass over
    its text rather than regular expressions, a chat template and a tokenizer run over all of it.
    """
    sizes = {str(key): _text_size(value) for key, value in record.items()}
    total = sum(sizes.values())
    if total <= max_chars:
        return None
    field = max(sizes, key=sizes.get)
    return Problem(
        place,
        f"{place}: field '{field}': {sizes[field]:,} characters ({total:,} in the record); a record may hold at "
        f"most data.max_record_chars={max_chars:,} (raise it for long-context data)",
        TOO_LONG,
    )


def read_examples(
    ds: DatasetConfig, sources: list[str], split: str, report: SplitReport, max_chars: int = MAX_RECORD_CHARS
) -> list[Example]:
    """The usable examples of some sources, in order; the others are counted in ``report``.

    Args:
        ds: the dataset's (or dev set's) config: format, columns, templates, fields, literal_newlines, clean-up.
        sources: from :func:`~moemix.data.readers.resolve_sources`.
        split: ``train`` or ``dev`` (which split a ``builtin:`` source generates).
        report: receives the record count, the problems and what each clean-up rule changed.
        max_chars: the characters of text a record may hold (``data.max_record_chars``); a longer one is invalid.

    Raises:
        DataError: for a file that cannot be read at all (missing, empty, unparsable as a whole).
    """
    examples = []
    rules = clean_up_rules(ds)
    for source in sources:
        for row in _rows(source, split, ds):
            report.records += 1
            if row.error is not None:
                report.add_problem(Problem(row.place, f"{row.place}: {row.error}", "malformed"))
                continue
            too_long = oversized(row.record, row.place, max_chars)
            if too_long is not None:
                report.add_problem(too_long)
                continue
            record = unescape_newlines(row.record) if ds.literal_newlines else row.record
            if rules:
                record = clean_record(record, rules, report.cleaned)
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
        raise DataError(
            f"dataset '{name}': dev_size {dev_size} holds out {k} of {n} usable examples, leaving none to train on"
        )
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
    raise DataError(f"{first.message}{tail}; `moemix data validate` lists them, skip_invalid: true skips them")


def _read(
    ds: DatasetConfig,
    dev: DatasetConfig | None,
    seed: int,
    keep: int | None = MAX_LISTED,
    max_chars: int = MAX_RECORD_CHARS,
) -> _Read:
    train_sources = resolve_sources(ds.path)
    dev_from = _dev_source(ds, dev)
    report = DatasetReport(ds.name, train_sources, dev_from[1] if dev_from else [])
    report.train.keep = report.dev.keep = keep
    train = read_examples(ds, train_sources, "train", report.train, max_chars)
    if dev_from is not None:
        dev_examples = read_examples(dev_from[0], dev_from[1], "dev", report.dev, max_chars)
    elif not train:  # nothing usable to hold out from: the dataset is reported empty, not the dev_size wrong
        dev_examples = []
        report.dev_sources = ["held out from train: no usable example"]
    else:
        usable = len(train)
        try:
            train, dev_examples = hold_out(train, ds.dev_size, seed, ds.name)
        except DataError as err:
            first = report.first_fatal()  # the training split's: a held-out dev split has read nothing
            if first is None:
                raise
            # A file in the wrong format leaves few usable examples: the invalid records are the cause. The dev
            # split stays empty, so that a strict dataset stops on them and `data validate` lists them all.
            report.hold_out_error = (
                f"{err} ({report.train.invalid} of {report.train.records} records invalid, first: {first.message})"
            )
            report.dev_sources = [f"not held out: dev_size {ds.dev_size} of {usable} usable examples"]
            dev_examples = []
        else:
            report.dev_sources = [f"held out from train, {len(dev_examples)} of {usable} (data_seed {seed})"]
            report.dev.records = len(dev_examples)
            report.train.records -= len(dev_examples)
    if ds.max_examples is not None:
        train = train[: ds.max_examples]
    return _Read({"train": train, "dev": dev_examples}, report)


# --------------------------------------------------------------------------------------------- tokenising


def _check_not_empty(report: DatasetReport, max_length: int) -> None:
    for which in SPLITS:
        s = getattr(report, which)
        if not s.examples:
            raise DataError(
                f"dataset '{report.name}': no usable example in {which} ({s.records} read, {s.invalid} invalid, "
                f"{s.truncated_away} lost every assistant token to truncation at max_length={max_length})"
            )


# ------------------------------------------------------------------------------------------------ caching


def _read_settings(ds: DatasetConfig) -> dict:
    settings = {
        "format": ds.format,
        "columns": ds.columns,
        "templates": ds.templates,
        "fields": ds.fields,
        "literal_newlines": ds.literal_newlines,
    }
    # Only when set, so that the entries of configs without clean-up keep their keys.
    settings.update({k: getattr(ds, k) for k in ("strip_prefix", "strip_suffix", "remove_regex") if getattr(ds, k)})
    return settings


def _read_key(ds: DatasetConfig, dev: DatasetConfig | None, seed: int, max_chars: int = MAX_RECORD_CHARS) -> dict:
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
    if max_chars != MAX_RECORD_CHARS:  # only when set, so that the entries of other configs keep their keys
        parts["max_record_chars"] = max_chars
    return parts


# Examples read for the builtin tokenizer's training texts, kept until load_data tokenises them, so a start
# reads each file once. Keyed by the read key (content fingerprints), so a changed file is read again.
_READ_MEMO: dict[str, _Read] = {}


def _read_memo(
    ds: DatasetConfig,
    dev: DatasetConfig | None,
    seed: int,
    key: str,
    keep: bool,
    listed: int | None = MAX_LISTED,
    max_chars: int = MAX_RECORD_CHARS,
) -> _Read:
    read = _READ_MEMO.pop(key, None)
    if read is None or listed is None:  # a memo lists MAX_LISTED problems of a kind, not every one
        read = _read(ds, dev, seed, listed, max_chars)
    else:  # read from files of this content, perhaps elsewhere: name the files as given now
        dev_from = _dev_source(ds, dev)
        dev_sources = dev_from[1] if dev_from else read.report.dev_sources
        read.report.relocate(resolve_sources(ds.path), dev_sources)
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
        max_chars = config.data.max_record_chars
        key = cache_key(_read_key(ds, dev, config.data_seed, max_chars))
        read = _read_memo(ds, dev, config.data_seed, key, keep=True, max_chars=max_chars)
        if is_strict(ds, config) if strict is None else strict:
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
    all_problems: bool = False,
    require_examples: bool = True,
    max_record_chars: int = MAX_RECORD_CHARS,
) -> LoadedDataset:
    """Read, check, split and tokenise one dataset, or read its tokenised splits from the cache.

    Args:
        ds: the dataset's config.
        tokenizer: a fast Hugging Face tokenizer with a chat template.
        max_length: tokens kept per example.
        seed: seed of a held-out dev split (the config's ``data_seed``).
        dev: the ``dev_datasets`` entry for this dataset, if any.
        strict: stop at the first invalid record (else skip and count invalid records).
        cache: read and write the tokenisation cache.
        cache_dir: the cache folder (default ``$MOEMIX_CACHE/datasets``).
        tokenizer_key: :func:`~moemix.data.cache.tokenizer_fingerprint` of ``tokenizer``, if already computed.
        all_problems: keep every problem in the report, not the first of each kind (reads the data again
            rather than a cached report that lists fewer, and writes no cache entry).
        require_examples: raise if a split is left without any example (``moemix data validate`` reports it
            instead).
        max_record_chars: the characters of text a record may hold; a longer record is invalid.

    Returns:
        The train and dev splits and the report of what was found.

    Raises:
        DataError: for unreadable data, an invalid record when strict (naming its place and field), or a split
            left without any usable example.
    """
    read_key = _read_key(ds, dev, seed, max_record_chars)
    tokenizer_key = tokenizer_key or tokenizer_fingerprint(tokenizer)
    tokens_key = {"tokenizer": tokenizer_key, "max_length": max_length}
    if ds.truncation != "drop":  # only when set, so that the entries of other configs keep their keys
        tokens_key["truncation"] = ds.truncation
    key = cache_key({**read_key, **tokens_key})
    root = cache_root(cache_dir)
    hit = load_entry(root, key, SPLITS) if cache else None
    if hit is not None:
        splits, meta = hit
        report = DatasetReport.from_dict(meta["report"])
        if not all_problems or (report.train.lists_all and report.dev.lists_all):
            report.name, report.from_cache = ds.name, True
            dev_from = _dev_source(ds, dev)
            report.relocate(resolve_sources(ds.path), dev_from[1] if dev_from else report.dev_sources)
            if strict:
                _raise_first(report)
            if require_examples:
                _check_not_empty(report, max_length)
            _READ_MEMO.pop(cache_key(read_key), None)
            out = {}
            for which in SPLITS:
                out[which] = TokenizedSplit(f"{ds.name}/{which}", *splits[which])
                out[which].truncated_away = getattr(report, which).truncated_away
            return LoadedDataset(out["train"], out["dev"], report)

    listed = None if all_problems else MAX_LISTED
    read = _read_memo(ds, dev, seed, cache_key(read_key), keep=False, listed=listed, max_chars=max_record_chars)
    report = read.report
    specials = special_token_texts(tokenizer)
    for which in SPLITS:
        read.examples[which] = check_targets(read.examples[which], specials, getattr(report, which))
    if strict:
        _raise_first(report)
    if require_examples and report.hold_out_error is not None:
        raise DataError(report.hold_out_error)
    out = {}
    for which in SPLITS:
        split_report = getattr(report, which)
        split = tokenize_examples(
            read.examples[which], tokenizer, max_length, split_report, f"tokenize {ds.name}/{which}", ds.truncation
        )
        split.name = f"{ds.name}/{which}"
        out[which] = split
    if require_examples:
        _check_not_empty(report, max_length)
    if cache and not all_problems and all(len(split) for split in out.values()):
        splits = {which: (out[which].input_ids, out[which].labels) for which in SPLITS}
        save_entry(root, key, splits, {"report": report.to_dict()})
    return LoadedDataset(out["train"], out["dev"], report)


def load_data(
    config: Config,
    tokenizer,
    *,
    strict: bool | None = None,
    warn: bool = True,
    all_problems: bool = False,
    require_examples: bool = True,
) -> list[LoadedDataset]:
    """Load every dataset of a config, in order, and log one table of what was skipped, dropped and cut.

    The table is a warning when a dataset skipped, dropped or noted anything (:meth:`DatasetReport.notable`),
    else an info line; each split's first problem is an info line too (``moemix --verbose`` shows them).

    Args:
        config: the run's config (datasets, dev_datasets, data, max_length, data_seed).
        tokenizer: as for :func:`load_dataset`.
        strict: override every dataset's strictness (``moemix data validate`` passes False to see everything).
        warn: log the table (``moemix data validate`` prints its own report instead).
        all_problems, require_examples: as for :func:`load_dataset`.

    Raises:
        DataError: as :func:`load_dataset`.
    """
    devs = dev_configs(config)
    loaded = []
    tokenizer_key = tokenizer_fingerprint(tokenizer)  # once: a large vocabulary's JSON takes a while to hash
    for ds in config.datasets:
        loaded.append(
            load_dataset(
                ds,
                tokenizer,
                config.max_length,
                config.data_seed,
                dev=devs.get(ds.name),
                strict=is_strict(ds, config) if strict is None else strict,
                cache=config.data.cache,
                cache_dir=config.data.cache_dir,
                tokenizer_key=tokenizer_key,
                all_problems=all_problems,
                require_examples=require_examples,
                max_record_chars=config.data.max_record_chars,
            )
        )
    if warn:
        log_summary([item.report for item in loaded])
    return loaded


def log_summary(reports: list[DatasetReport]) -> None:
    """Log the data's one summary table: a warning if any dataset is notable, else at info level."""
    notable = [r.name for r in reports if r.notable]
    if notable:
        logger.warning(
            "data: %d of %d dataset(s) skipped, dropped or noted something (moemix data validate lists the "
            "problems)\n%s",
            len(notable),
            len(reports),
            summary_table(reports),
        )
    else:
        logger.info("data: %d dataset(s), nothing skipped or dropped\n%s", len(reports), summary_table(reports))
    for r in reports:
        for which in SPLITS:
            s = getattr(r, which)
            if s.problems:
                logger.info("dataset '%s' %s: first problem: %s", r.name, which, s.problems[0].message)
