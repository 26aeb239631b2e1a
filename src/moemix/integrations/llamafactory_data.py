"""Each LLaMA-Factory example carries its dataset's identity, from loading to the batch.

LLaMA-Factory loads the datasets named in ``dataset:``, aligns them, merges them, splits off a validation part and
tokenises the merged dataset, dropping invalid examples and (with ``packing``) packing several examples into one
row. Row positions therefore say nothing about where an example came from. moemix tags every aligned example with
the index of its dataset (column ``_moemix_dataset``), tokenises each dataset's examples apart (so that a packed
row never mixes datasets) and gives every tokenised row a ``moemix_dataset`` column. The training feed then draws
rows by dataset and the collator turns the column into the ``dataset_ids`` the routing counts need.

Nothing here imports LLaMA-Factory: :mod:`moemix.integrations.llamafactory` installs these functions into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from moemix.errors import DataError

TAG = "_moemix_dataset"
"""Column of the aligned (not yet tokenised) examples: the index of the example's training dataset, -1 if none."""
COLUMN = "moemix_dataset"
"""Column of the tokenised rows: the index of the row's training dataset (-1 for an evaluation-only dataset)."""


def tag_datasets(datasets: dict[str, Any], train_names: Sequence[str]) -> dict[str, Any]:
    """Add the :data:`TAG` column to each aligned dataset: its index in ``train_names``, -1 if not there.

    Args:
        datasets: LLaMA-Factory's aligned datasets by name (``datasets.Dataset``).
        train_names: The training datasets, in the order of the config's ``dataset:`` list.

    Raises:
        DataError: If a dataset is streamed (an ``IterableDataset`` has no rows to draw by index).
    """
    names = list(train_names)
    tagged = {}
    for name, dataset in datasets.items():
        if not hasattr(dataset, "add_column"):
            raise DataError(f"dataset {name!r}: moemix draws rows by index; turn off streaming")
        index = names.index(name) if name in names else -1
        tagged[name] = dataset.add_column(TAG, [index] * len(dataset))
    return tagged


def preprocess_by_dataset(preprocess: Callable[[dict[str, list]], dict[str, list]]):
    """Wrap a LLaMA-Factory ``preprocess_dataset`` so that each output row names its dataset.

    The batch's examples are processed one dataset at a time (in order of first appearance, each keeping its
    order), so a processor that drops examples or packs several into a row never mixes or misattributes them.
    """

    def by_dataset(examples: dict[str, list]) -> dict[str, list]:
        if TAG not in examples:
            return preprocess(examples)
        tags = list(examples[TAG])
        columns = {key: examples[key] for key in examples.keys() if key != TAG}
        out: dict[str, list] = {}
        for d in dict.fromkeys(tags):
            rows = [i for i, t in enumerate(tags) if t == d]
            part = preprocess({key: [values[i] for i in rows] for key, values in columns.items()})
            count = len(next(iter(part.values()))) if part else 0
            for key, values in part.items():
                out.setdefault(key, []).extend(values)
            out.setdefault(COLUMN, []).extend([d] * count)
        return out

    return by_dataset


def rows_by_dataset(train_dataset, num_datasets: int) -> list[np.ndarray]:
    """Indices of the tokenised training rows of each dataset, in row order.

    Raises:
        DataError: If the rows carry no dataset column (e.g. read from a ``tokenized_path`` saved without moemix)
            or a training dataset has no row left after tokenisation.
    """
    if COLUMN not in getattr(train_dataset, "column_names", []):
        raise DataError(
            f"the training rows carry no {COLUMN!r} column: tokenise them through moemix's launcher "
            "(a tokenized_path saved by plain LLaMA-Factory has none)"
        )
    tags = np.asarray(train_dataset[COLUMN], dtype=np.int64)
    rows = [np.flatnonzero(tags == d) for d in range(num_datasets)]
    empty = [d for d, r in enumerate(rows) if len(r) == 0]
    if empty:
        raise DataError(f"training dataset(s) {empty} have no example left after LLaMA-Factory's preprocessing")
    return rows


class RowsByDataset(torch.utils.data.Dataset):
    """The training rows reordered by dataset: index ``offsets[d] + i`` is row ``rows[d][i]`` (as MixtureDataset)."""

    def __init__(self, dataset, rows: Sequence[np.ndarray]):
        self.dataset = dataset
        self.order = np.concatenate(list(rows)).astype(np.int64)
        self.sizes = [len(r) for r in rows]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.dataset[int(self.order[index])]


class WithDatasetIds:
    """Collate with LLaMA-Factory's collator and add ``dataset_ids`` (one per row) from the dataset column."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [int(f.get(COLUMN, -1)) for f in features]
        batch = self.collator([{k: v for k, v in f.items() if k != COLUMN} for f in features])
        batch["dataset_ids"] = torch.tensor(ids, dtype=torch.long)
        return batch


class WithoutDatasetIds:
    """Collate with LLaMA-Factory's collator, leaving the dataset column out (evaluation and prediction)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return self.collator([{k: v for k, v in f.items() if k != COLUMN} for f in features])
