"""The tokenisation cache: tokenised splits saved as Arrow (``datasets``), under a key of everything they depend on.

The key covers the bytes of every data file (not their names or times), the tokenizer's full definition, its
chat template, ``max_length``, the settings that turn records into messages, the dev split's rule, and
:data:`CACHE_VERSION`. A second start on the same data and tokenizer reads the splits back from memory-mapped
Arrow files instead of tokenising again. Entries appear by an atomic rename, so a reader never sees half of one
and concurrent writers (one per rank) do not clash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from moemix.data.tokenizer import default_cache_dir

# Change whenever what is cached, or how records become tokens, changes: old entries are then never read.
CACHE_VERSION = "moemix-tokenised-splits-v2"  # v2: answers of only special tokens set aside
_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def source_fingerprint(source: str, split: str = "train") -> str:
    """What a source's content hashes to: file bytes; a Hugging Face dataset's own content fingerprint;
    the generated records of a ``builtin:`` domain's ``split``."""
    from moemix.data.readers import BUILTIN_PREFIX, HF_PREFIX, builtin_rows

    if source.startswith(HF_PREFIX):
        from moemix.data.readers import load_hf

        return f"hf:{load_hf(source)._fingerprint}"
    if source.startswith(BUILTIN_PREFIX):
        digest = hashlib.sha256()
        for row in builtin_rows(source, split):
            digest.update(json.dumps(row.record, sort_keys=True).encode())
        return digest.hexdigest()
    return file_digest(source)


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of a tokenizer's definition: the fast tokenizer's JSON (vocabulary, merges, normaliser,
    special tokens), else its vocabulary; its class, pad token and chat template."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    template = getattr(tokenizer, "chat_template", None)
    digest.update(json.dumps(template, sort_keys=True).encode())
    digest.update(str(tokenizer.pad_token).encode())
    return digest.hexdigest()


def cache_key(parts: dict[str, Any]) -> str:
    """sha256 of the JSON of ``parts`` (sorted keys) and :data:`CACHE_VERSION`."""
    text = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of cached splits: ``cache_dir``, else ``default_cache_dir() / "datasets"``."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir() / "datasets"


def _split_table(input_ids: list[np.ndarray], labels: list[np.ndarray]):
    """An Arrow table with list<int32> columns input_ids and labels, built from flat buffers (no Python loop)."""
    import pyarrow as pa

    lengths = np.fromiter((len(x) for x in input_ids), dtype=np.int32, count=len(input_ids))
    offsets = np.zeros(len(input_ids) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat_ids = np.concatenate(input_ids).astype(np.int32) if input_ids else np.zeros(0, np.int32)
    flat_labels = np.concatenate(labels).astype(np.int32) if labels else np.zeros(0, np.int32)
    return pa.table(
        {
            "input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat_ids)),
            "labels": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat_labels)),
        }
    )


def _split_arrays(dataset) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Lists of per-example arrays from a saved split, as views of two flat buffers (no per-row conversion)."""
    table = dataset.data.table
    out = []
    for column in ("input_ids", "labels"):
        array = table.column(column).combine_chunks()
        offsets = array.offsets.to_numpy()
        # A copy: the memory map is read-only, and torch warns on (and must not write into) read-only arrays.
        values = np.array(array.values.to_numpy(zero_copy_only=False), dtype=np.int32)
        out.append(np.split(values, offsets[1:-1] - offsets[0]) if len(offsets) > 1 else [])
    return out[0], out[1]


def save_entry(root: Path, key: str, splits: dict[str, tuple[list[np.ndarray], list[np.ndarray]]], meta: dict) -> Path:
    """Save tokenised splits (name -> (input_ids, labels)) and a JSON ``meta`` as cache entry ``key``.

    Returns:
        The entry's folder.
    """
    import datasets

    final = root / key
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.tmp-"))
    bars = not datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # a bar per split saved in a fraction of a second is noise
    try:
        for name, (input_ids, labels) in splits.items():
            table = datasets.table.InMemoryTable(_split_table(input_ids, labels))
            datasets.Dataset(table).save_to_disk(str(tmp / name))
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; the entry should read like any other folder
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise
        # Another process (rank) saved the same key first: same inputs, same content; keep theirs.
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bars:
            datasets.enable_progress_bars()
    return final


def load_entry(root: Path, key: str, names: tuple[str, ...]) -> tuple[dict[str, tuple[list, list]], dict] | None:
    """The splits and meta of cache entry ``key``, or None if there is no (readable) entry."""
    import datasets

    folder = root / key
    if not (folder / "meta.json").is_file():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        splits = {name: _split_arrays(datasets.load_from_disk(str(folder / name))) for name in names}
    except (OSError, ValueError, KeyError):
        shutil.rmtree(folder, ignore_errors=True)  # a damaged entry is a miss, and is removed to be rebuilt
        return None
    return splits, meta
