"""Each LLaMA-Factory example carries its dataset's identity, from loading to the batch.

LLaMA-Factory loads the datasets named in ``dataset:``, aligns them, merges them, splits off a validation part and
tokenises the merged dataset, dropping invalid examples and (with ``packing``) packing several examples into one
row. Row positions therefore say nothing about where an example came from. moemix tags every aligned example with
the index of its dataset (column ``_moemix_dataset``), tokenises each dataset's examples apart (so that a packed
row never mixes datasets) and gives every tokenised row the ``moemix_dataset`` column that
:mod:`moemix.integrations` draws rows by and turns into the ``dataset_ids`` the routing counts need.

Nothing here imports LLaMA-Factory: :mod:`moemix.integrations.llamafactory` installs these functions into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from moemix.errors import DataError
from moemix.integrations.rows import COLUMN

TAG = "_moemix_dataset"
"""Column of the aligned (not yet tokenised) examples: the index of the example's training dataset, -1 if none."""


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
        columns = {key: examples[key] for key in examples if key != TAG}
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
