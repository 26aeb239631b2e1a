"""Every training row names its dataset in a column, from the user's datasets to the batch.

A trainer may filter, drop, shuffle or pack its training rows (TRL's SFTTrainer drops fully masked examples and
packs several into a row): a row's position then says nothing about where it came from. moemix therefore tags
each row with the index of its dataset in the column :data:`COLUMN`, draws rows by dataset from that column,
and turns it into the ``dataset_ids`` (per row) and ``token_dataset_ids`` (per token) that the routing counts,
the token totals and the per-dataset loss read; the model never sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from moemix.data.mixture import MixtureCollator
from moemix.errors import DataError

COLUMN = "moemix_dataset"
"""Column of the training rows: the index of the row's dataset among the mixture's names."""


def tag_datasets(datasets: Mapping[str, Any]):
    """One ``datasets.Dataset`` of all the named datasets, each row tagged with its dataset's index.

    Args:
        datasets: Hugging Face ``Dataset``s by name, in the mixture's order (they must share their columns).

    Returns:
        The concatenation, with the column :data:`COLUMN`.

    Raises:
        DataError: If a dataset is not a map-style ``datasets.Dataset`` or is empty.
    """
    import datasets as hf

    parts = []
    for index, (name, dataset) in enumerate(datasets.items()):
        if not isinstance(dataset, hf.Dataset):
            raise DataError(
                f"dataset {name!r}: moemix draws rows by index from a datasets.Dataset, got {type(dataset).__name__}"
            )
        if len(dataset) == 0:
            raise DataError(f"dataset {name!r}: has no rows")
        if COLUMN in dataset.column_names:
            dataset = dataset.remove_columns(COLUMN)
        parts.append(dataset.add_column(COLUMN, [index] * len(dataset)))
    return hf.concatenate_datasets(parts)


def is_tagged(dataset) -> bool:
    """Whether a dataset's rows carry the :data:`COLUMN` column."""
    return COLUMN in (getattr(dataset, "column_names", None) or [])


def split_by_dataset(dataset) -> list[tuple[int, Any]]:
    """The rows of a tagged ``datasets.Dataset`` apart by dataset, without the column: ``[(index, rows)]``."""
    tags = np.asarray(dataset[COLUMN], dtype=np.int64)
    plain = dataset.remove_columns(COLUMN)
    return [(int(d), plain.select(np.flatnonzero(tags == d))) for d in np.unique(tags) if d >= 0]


def retag(parts: Sequence[tuple[int, Any]]):
    """The parts of :func:`split_by_dataset` (each perhaps prepared apart) tagged and concatenated again."""
    import datasets as hf

    return hf.concatenate_datasets([rows.add_column(COLUMN, [d] * len(rows)) for d, rows in parts if len(rows)])


def rows_by_dataset(train_dataset, num_datasets: int, names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Indices of the training rows of each dataset, in row order.

    Raises:
        DataError: If the rows carry no dataset column or a dataset has no row left.
    """
    if not is_tagged(train_dataset):
        raise DataError(
            f"the training rows carry no {COLUMN!r} column: build the training set with "
            "moemix.integrations.tag_datasets (or pass the named datasets to mixing_trainer)"
        )
    tags = np.asarray(train_dataset[COLUMN], dtype=np.int64)
    rows = [np.flatnonzero(tags == d) for d in range(num_datasets)]
    empty = [names[d] if names else d for d, r in enumerate(rows) if len(r) == 0]
    if empty:
        raise DataError(
            f"training dataset(s) {', '.join(map(str, empty))} have no row left after the trainer's preprocessing"
        )
    return rows


class RowsByDataset(torch.utils.data.Dataset):
    """The training rows reordered by dataset: index ``offsets[d] + i`` is row ``rows[d][i]`` (as
    :class:`moemix.data.mixture.MixtureDataset`, so that a :class:`~moemix.data.feed.MixtureFeed` draws from it)."""

    def __init__(self, dataset, rows: Sequence[np.ndarray]):
        self.dataset = dataset
        self.order = np.concatenate(list(rows)).astype(np.int64)
        self.sizes = [len(r) for r in rows]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.dataset[int(self.order[index])]


def token_dataset_ids(batch: Mapping[str, torch.Tensor], ids: Sequence[int], lengths: Sequence[int]) -> torch.Tensor:
    """The dataset of every token of a collated batch, ``-1`` on padding.

    Two layouts are read: one row per example (padded on either side; the ``attention_mask`` tells the real
    tokens, else they are the first ``length`` of the row), and all examples concatenated into one row
    (padding-free collators such as TRL's), in order.

    Args:
        batch: The collated batch (``input_ids`` ``[R, S]``).
        ids: The dataset of each example, in the order given to the collator.
        lengths: The token count of each example.

    Raises:
        DataError: If the batch has another layout.
    """
    input_ids = batch["input_ids"]
    rows, width = input_ids.shape
    out = torch.full((rows, width), -1, dtype=torch.long)
    if rows == len(ids):
        mask = batch.get("attention_mask")
        for r, (d, n) in enumerate(zip(ids, lengths)):
            if mask is not None and mask.dim() == 2:
                out[r][mask[r].to("cpu") != 0] = d
            else:
                out[r, : min(n, width)] = d
        return out
    if rows == 1 and sum(lengths) <= width:
        at = 0
        for d, n in zip(ids, lengths):
            out[0, at : at + n] = d
            at += n
        return out
    raise DataError(
        f"the collator turned {len(ids)} examples into {rows} rows of {width} tokens: moemix cannot tell which "
        "tokens come from which dataset (one row per example or one row of all of them are understood)"
    )


class WithDatasetIds:
    """Collate with the trainer's collator, then add ``dataset_ids`` and ``token_dataset_ids`` from the column.

    Args:
        collator: The trainer's collator (columns the model does not take already removed, if it removes them).
    """

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [int(f[COLUMN]) for f in features]
        lengths = [len(f["input_ids"]) for f in features]
        batch = self.collator([{k: v for k, v in f.items() if k != COLUMN} for f in features])
        batch["dataset_ids"] = torch.tensor(ids, dtype=torch.long)
        batch["token_dataset_ids"] = token_dataset_ids(batch, ids, lengths)
        return batch


class WithoutDatasetIds:
    """Collate with the trainer's collator, leaving the dataset column out (evaluation and prediction)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return self.collator([{k: v for k, v in f.items() if k != COLUMN} for f in features])


def probe_batches(
    rows: Mapping[str, Any], names: Sequence[str], batch_size: int, max_batches: int, pad_token_id: int
) -> list[list[dict[str, torch.Tensor]]]:
    """Fixed batches of each dataset's probe rows: the same examples at every probe.

    Args:
        rows: Tokenised rows by dataset name (``input_ids``, optionally ``labels``; a ``datasets.Dataset`` or a
            list of dicts), or one tagged dataset under any single key: its rows are split by their column.
        names: The mixture's names, in order.
        batch_size: Examples per batch.
        max_batches: Batches per dataset.
        pad_token_id: The padding token.

    Raises:
        DataError: If a dataset has no probe rows or the rows are not tokenised.
    """
    if len(rows) == 1 and is_tagged(next(iter(rows.values()))):
        tagged = next(iter(rows.values()))
        rows = {names[d]: part for d, part in split_by_dataset(tagged)}
    collator = MixtureCollator(pad_token_id=pad_token_id)
    out = []
    for name in names:
        data = rows.get(name)
        if data is None or len(data) == 0:
            raise DataError(f"probe rows: none for dataset {name!r}")
        n = min(len(data), batch_size * max_batches)
        features = []
        for i in range(n):
            row = data[i]
            if "input_ids" not in row:
                raise DataError(f"probe rows of {name!r}: not tokenised (no input_ids)")
            labels = row.get("labels")
            features.append({"input_ids": row["input_ids"], "labels": row["input_ids"] if labels is None else labels})
        out.append([collator(features[s : s + batch_size]) for s in range(0, n, batch_size)])
    return out
