"""Load each configured dataset: read, convert to messages, tokenise; train and dev splits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from moemix.config import DatasetConfig
from moemix.data.formats import read_records, to_messages
from moemix.data.render import IGNORE_INDEX, tokenize_conversation
from moemix.errors import DataError

BUILTIN_PREFIX = "builtin:"


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


def _records(path: str, split: str) -> list[tuple[str, dict]]:
    if path.startswith(BUILTIN_PREFIX):
        from moemix.data.builtin import builtin_records

        domain = path[len(BUILTIN_PREFIX) :]
        return [(f"{path}/{split}[{i}]", r) for i, r in enumerate(builtin_records(domain, split))]
    return list(read_records(path))


def split_records(ds: DatasetConfig, seed: int) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    """The raw (place, record) pairs of a dataset's train and dev splits.

    The dev split is ``dev_path`` if given, the generator's own for ``builtin:`` data, else ``dev_size``
    examples held out from the training file by a seeded permutation (disjoint from what is trained on).

    Raises:
        DataError: if there is no way to get a dev split, or a split is empty.
    """
    train = _records(ds.path, "train")
    if ds.dev_path is not None:
        dev = _records(ds.dev_path, "dev")
    elif ds.path.startswith(BUILTIN_PREFIX):
        dev = _records(ds.path, "dev")
    elif ds.dev_size > 0:
        if ds.dev_size >= len(train):
            raise DataError(f"dataset '{ds.name}': dev_size {ds.dev_size} leaves no training example of {len(train)}")
        order = np.random.default_rng([seed, len(train)]).permutation(len(train))
        held = set(order[: ds.dev_size].tolist())
        dev = [r for i, r in enumerate(train) if i in held]
        train = [r for i, r in enumerate(train) if i not in held]
    else:
        raise DataError(f"dataset '{ds.name}': no dev split; give dev_path or dev_size (the probe reads dev batches)")
    if ds.max_examples is not None:
        train = train[: ds.max_examples]
    for split, records in (("train", train), ("dev", dev)):
        if not records:
            raise DataError(f"dataset '{ds.name}' ({ds.path if split == 'train' else ds.dev_path}): {split} split is empty")
    return train, dev


def iter_messages(ds: DatasetConfig, records: list[tuple[str, dict]]) -> Iterator[list[dict[str, str]]]:
    """Chat messages of each record, in order; raises DataError naming the place of a bad record."""
    for place, record in records:
        yield to_messages(record, ds.format, ds.columns, place)


def tokenize_split(
    name: str, ds: DatasetConfig, records: list[tuple[str, dict]], tokenizer, max_length: int
) -> TokenizedSplit:
    """Tokenise records with the chat template, dropping those whose assistant tokens truncation removed.

    Raises:
        DataError: if no usable example remains.
    """
    out = TokenizedSplit(name)
    for messages in tqdm(iter_messages(ds, records), total=len(records), desc=f"tokenize {name}", leave=False, disable=None):
        ids, labels = tokenize_conversation(tokenizer, messages, max_length)
        if not np.any(labels != IGNORE_INDEX):
            out.truncated_away += 1
            continue
        out.input_ids.append(ids)
        out.labels.append(labels)
    if not out.input_ids:
        raise DataError(
            f"dataset '{ds.name}': no usable example in {name} ({len(records)} read, {out.truncated_away} lost every "
            f"assistant token to truncation at max_length={max_length})"
        )
    return out


def load_splits(ds: DatasetConfig, tokenizer, max_length: int, seed: int) -> tuple[TokenizedSplit, TokenizedSplit]:
    """Read and tokenise one dataset's train and dev splits."""
    train, dev = split_records(ds, seed)
    return (
        tokenize_split(f"{ds.name}/train", ds, train, tokenizer, max_length),
        tokenize_split(f"{ds.name}/dev", ds, dev, tokenizer, max_length),
    )
