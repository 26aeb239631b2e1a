"""Read the records of instruction data files, whatever their file type, each with the place it came from.

File types: ``.jsonl``, ``.json`` (an array of objects), ``.csv``, ``.tsv`` (each optionally ``.gz``),
``.parquet``, a folder of such files, a glob pattern, a list of any of these, and Hugging Face dataset ids
(``hf:owner/name``, ``hf:owner/name:subset@split``) read through ``datasets.load_dataset``.

A record's place is ``file:line`` for line-based files (JSON Lines, CSV, TSV) and ``file[index]`` for
files of items (JSON arrays, Parquet, Hugging Face datasets), so that every message can point at it.
A record that cannot be parsed is yielded as a :class:`Row` with an error rather than raised, so that the
caller decides between stopping (strict) and skipping it; a file that cannot be read at all raises.
"""

from __future__ import annotations

import csv
import functools
import glob
import gzip
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

# The file types live in the schema: a config's each_file pattern is expanded to files when it loads.
from moemix.config import DATA_SUFFIXES, data_suffix
from moemix.errors import DataError

HF_PREFIX = "hf:"
BUILTIN_PREFIX = "builtin:"

# Real instruction data has cells far above csv's default 128 KiB limit (whole source files as answers).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class Row(NamedTuple):
    """One record of a data file, or the reason it could not be parsed."""

    place: str
    """``file:line`` or ``file[index]``."""
    record: dict[str, Any] | None
    """The parsed record (None when ``error`` is set)."""
    error: str | None = None
    """Why the record could not be parsed: the rule broken, without the place."""


def resolve_sources(path: str | Sequence[str]) -> list[str]:
    """Expand a dataset's ``path`` into the sources to read, in order.

    Args:
        path: A file, a folder (every supported file below it, sorted, hidden ones skipped), a glob pattern
            (sorted matches), an ``hf:`` or ``builtin:`` id, or a list of any of these.

    Returns:
        File paths and ids, each read by :func:`iter_rows`.

    Raises:
        DataError: for a file or folder that does not exist, a pattern with no match, a folder without a
            supported file, or a file of an unsupported type.
    """
    if not isinstance(path, str):
        return [source for item in path for source in resolve_sources(item)]
    if path.startswith((HF_PREFIX, BUILTIN_PREFIX)):
        return [path]
    if glob.has_magic(path):
        matches = sorted(p for p in glob.glob(path, recursive=True) if Path(p).is_file())
        if not matches:
            raise DataError(f"{path}: no file matches this pattern")
        return [source for match in matches for source in resolve_sources(match)]
    p = Path(path)
    if p.is_dir():
        files = sorted(
            str(f)
            for f in p.rglob("*")
            if f.is_file() and data_suffix(f) and not any(part.startswith(".") for part in f.relative_to(p).parts)
        )
        if not files:
            raise DataError(f"{path}: folder holds no data file (looked for {', '.join(DATA_SUFFIXES)})")
        return files
    if not p.is_file():
        raise DataError(f"{path}: data file not found")
    if data_suffix(p) is None:
        raise DataError(
            f"{path}: unsupported file type {p.suffix.lower()!r}; use {', '.join(DATA_SUFFIXES)} or a folder"
        )
    return [str(p)]


def iter_rows(source: str, fields: Sequence[str] | None = None) -> Iterator[Row]:
    """Yield every record of one source (a file from :func:`resolve_sources`, or an ``hf:`` id).

    Args:
        source: The file or id.
        fields: Column names of a CSV or TSV file without a header row (its first line is then data).

    Raises:
        DataError: if the file cannot be read at all: missing, not UTF-8, a JSON array that does not parse,
            a Parquet file that is not one, or no record in it.
    """
    if source.startswith(HF_PREFIX):
        rows = _hf_rows(source)
    else:
        kind = data_suffix(source)
        if kind is None:
            raise DataError(
                f"{source}: unsupported file type {Path(source).suffix.lower()!r}; use {', '.join(DATA_SUFFIXES)}"
            )
        if not Path(source).is_file():
            raise DataError(f"{source}: data file not found")
        base = kind.removesuffix(".gz")
        if base == ".parquet":
            rows = _parquet_rows(source)
        elif base == ".json":
            rows = _json_array_rows(source, _read_text(source))
        elif base == ".jsonl":
            rows = _jsonl_rows(source)
        else:
            rows = _delimited_rows(source, "\t" if base == ".tsv" else ",", fields)
    empty = True
    for row in rows:
        empty = False
        yield row
    if empty:
        raise DataError(f"{source}: empty file (no records)")


def read_records(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(place, record)`` for every record of ``path``, stopping at the first unparsable one.

    Raises:
        DataError: for a file that cannot be read, or a record that cannot be parsed (naming its place).
    """
    for source in resolve_sources(str(path)):
        for row in iter_rows(source):
            if row.error is not None:
                raise DataError(f"{row.place}: {row.error}")
            yield row.place, row.record


def _open_text(path: str) -> io.TextIOBase:
    # newline="" so that the csv module sees quoted line breaks itself; harmless for JSON Lines.
    if path.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def not_utf8(path: str) -> DataError:
    """The error for a file that does not decode as UTF-8, naming the line and column of its first bad byte.

    A text-mode reader decodes blocks ahead of the line it yields, so its error cannot tell the line; the
    file is read again as bytes, line by line (a UTF-8 sequence never spans a newline byte).
    """
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return DataError(
                    f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                    "save the file as UTF-8"
                )
    return DataError(f"{path}: not UTF-8 text; save the file as UTF-8")  # an incomplete sequence at the end


def _read_text(path: str) -> str:
    try:
        with _open_text(path) as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({err})") from None


def _lines(path: str) -> Iterator[tuple[int, str]]:
    try:
        with _open_text(path) as fh:
            yield from enumerate(fh, start=1)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None


def _jsonl_rows(path: str) -> Iterator[Row]:
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        place = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield Row(place, None, f"not valid JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(record, dict):
            yield Row(place, None, f"expected a JSON object, got {type(record).__name__}")
            continue
        yield Row(place, record)


def _json_array_rows(path: str, text: str) -> Iterator[Row]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
    if isinstance(items, dict):
        # A common wrapper: {"data": [...]} or {"train": [...]}, one list-valued key.
        lists = [k for k, v in items.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: expected a JSON array of objects, got an object (keys: {', '.join(items)})")
        items = items[lists[0]]
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON array of objects, got {type(items).__name__}")
    for i, record in enumerate(items):
        place = f"{path}[{i}]"
        if not isinstance(record, dict):
            yield Row(place, None, f"expected a JSON object, got {type(record).__name__}")
        else:
            yield Row(place, record)


def _delimited_rows(path: str, delimiter: str, fields: Sequence[str] | None) -> Iterator[Row]:
    """CSV (quoted, RFC 4180) or TSV (no quoting: a quote character is text, as in most published TSVs)."""
    what = "tab-separated" if delimiter == "\t" else "comma-separated"
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh, delimiter=delimiter, quoting=quoting, strict=True)
            names = list(fields) if fields else None
            start = 1
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as err:
                    yield Row(f"{path}:{start}", None, f"not valid {what} text ({err})")
                    start = reader.line_num + 1
                    continue
                place, start = f"{path}:{start}", reader.line_num + 1
                if not cells or cells == [""]:
                    continue
                if names is None:
                    names = [c.strip() for c in cells]
                    dupes = sorted({n for n in names if names.count(n) > 1})
                    if dupes or "" in names:
                        raise DataError(
                            f"{place}: header row: column names must be unique and non-empty, got {names}; "
                            "name the columns with 'fields' if the file has no header"
                        )
                    continue
                if len(cells) != len(names):
                    yield Row(
                        place, None, f"expected {len(names)} {what} columns ({', '.join(names)}), got {len(cells)}"
                    )
                    continue
                yield Row(place, dict(zip(names, cells)))
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def _parquet_rows(path: str) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0]})") from None
    i = 0
    for batch in pf.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            yield Row(f"{path}[{i}]", record)
            i += 1


@functools.lru_cache(maxsize=16)
def _builtin_records(domain: str, split: str) -> tuple[dict, ...]:
    from moemix.data.builtin import builtin_records

    return tuple(builtin_records(domain, split))


def builtin_rows(source: str, split: str) -> Iterator[Row]:
    """The generated records of ``builtin:<domain>`` for ``split`` (train or dev), as rows."""
    for i, record in enumerate(_builtin_records(source[len(BUILTIN_PREFIX) :], split)):
        yield Row(f"{source}/{split}[{i}]", record)


def parse_hf_id(source: str) -> tuple[str, str | None, str]:
    """Split ``hf:owner/name[:subset][@split]`` into ``(name, subset, split)``; the split defaults to train.

    Raises:
        DataError: if no dataset name is given.
    """
    spec = source[len(HF_PREFIX) :]
    spec, _, split = spec.partition("@")
    name, _, subset = spec.partition(":")
    if not name:
        raise DataError(f"{source}: no dataset name; write hf:owner/name, hf:owner/name:subset or hf:owner/name@split")
    return name, subset or None, split or "train"


def load_hf(source: str):
    """The ``datasets.Dataset`` of an ``hf:`` id, through ``datasets.load_dataset`` (local cache or hub).

    When the Hub cannot be reached, only the local cache is read (:func:`moemix.hub.offline_unless_reachable`).

    Raises:
        DataError: if ``datasets`` cannot load it (naming the id and the library's reason).
    """
    import datasets

    from moemix.hub import offline_unless_reachable

    name, subset, split = parse_hf_id(source)
    with offline_unless_reachable() as unreachable:
        try:
            ds = datasets.load_dataset(name, subset, split=split)
        except Exception as err:  # noqa: BLE001 - the library raises many types; the user needs the reason, once
            if unreachable:
                raise DataError(
                    f"{source}: not in the local Hugging Face cache, and {unreachable}; download it where the Hub "
                    "can be reached, or give a local file"
                ) from None
            raise DataError(f"{source}: datasets.load_dataset cannot load it ({str(err).splitlines()[0]})") from None
    if not isinstance(ds, datasets.Dataset):
        raise DataError(f"{source}: expected one split, got {type(ds).__name__}; add @split")
    return ds


def _hf_rows(source: str) -> Iterator[Row]:
    for i, record in enumerate(load_hf(source)):
        yield Row(f"{source}[{i}]", dict(record))
