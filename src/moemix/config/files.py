"""The data files a dataset entry names: file types, and one dataset per file (``each_file``)."""

from __future__ import annotations

import dataclasses
import glob
from pathlib import Path

from moemix.config.data import DatasetConfig
from moemix.config.rules import Where, check_section
from moemix.errors import ConfigError

DATA_SUFFIXES = (".jsonl.gz", ".json.gz", ".csv.gz", ".tsv.gz", ".jsonl", ".json", ".csv", ".tsv", ".parquet")
"""The file types a dataset's ``path`` reads, longest first so that ``.jsonl.gz`` wins over ``.gz``."""


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
            str(f)
            for f in root.rglob("*")
            if f.is_file() and data_suffix(f) and not any(part.startswith(".") for part in f.relative_to(root).parts)
        )
    else:
        raise ConfigError(f"{at}: with each_file, must be a glob pattern or a folder; {path!r} is neither")
    if not files:
        raise ConfigError(f"{at}: no data file matches {path!r} (relative paths start at the working directory)")
    return files


class ExpandedWhere:
    """Places after :func:`expand_each_file`: ``datasets.j`` is written as the entry ``datasets.i`` it came from."""

    def __init__(self, where: Where, origin: dict[int, int]):
        self.where, self.origin = where, origin

    def __call__(self, path: str) -> str:
        head, _, rest = path.partition(".")
        index, dot, tail = rest.partition(".")
        if head != "datasets" or not index.isdigit() or int(index) not in self.origin:
            return self.where(path)
        return self.where(f"datasets.{self.origin[int(index)]}{dot}{tail}")


def expand_each_file(datasets: list[DatasetConfig], where: Where) -> tuple[list[DatasetConfig], Where]:
    """Replace every ``each_file`` dataset entry by one entry per file.

    Each new entry keeps the settings of its pattern entry, with ``path`` its file, ``name`` the pattern with
    ``{stem}`` replaced and ``each_file`` false, so that the config written into a run folder reads back to
    the same datasets.

    Returns:
        The expanded entries, and ``where`` for them: a new entry's fields point at the line of the entry it
        came from.

    Raises:
        ConfigError: for a pattern entry that breaks a rule, a pattern or folder with no data file, or two
            files that give one name.
    """
    if not any(ds.each_file for ds in datasets):
        return datasets, where
    expanded: list[DatasetConfig] = []
    origin: dict[int, int] = {}
    taken: dict[str, str] = {ds.name: f"datasets.{i}" for i, ds in enumerate(datasets) if not ds.each_file}
    for i, ds in enumerate(datasets):
        if not ds.each_file:
            origin[len(expanded)] = i
            expanded.append(ds)
            continue
        check_section(ds, where, f"datasets.{i}")  # the shared settings, checked once at their own line
        for file in _each_file_paths(ds.path, where(f"datasets.{i}.path")):
            name = ds.name.replace("{stem}", Path(file).name[: -len(data_suffix(file))])
            if name in taken:
                raise ConfigError(
                    f"{where(f'datasets.{i}.name')}: {file} gives the name {name!r}, already {taken[name]}'s"
                )
            taken[name] = file
            origin[len(expanded)] = i
            expanded.append(dataclasses.replace(ds, name=name, path=file, each_file=False))
    return expanded, ExpandedWhere(where, origin)
