"""The concatenation of the datasets' training splits, and the collator that pads a batch of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from moemix.data.load import TokenizedSplit
from moemix.data.render import IGNORE_INDEX


class MixtureDataset(torch.utils.data.Dataset):
    """Map-style dataset over several tokenised splits; index ``offsets[d] + i`` is example i of dataset d."""

    def __init__(self, splits: Sequence[TokenizedSplit]):
        self.splits = list(splits)
        self.sizes = [len(s) for s in self.splits]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """``(dataset, example)`` of a global index."""
        d = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return d, int(index - self.offsets[d])

    def __getitem__(self, index: int) -> dict[str, object]:
        d, i = self.locate(index)
        split = self.splits[d]
        return {"input_ids": split.input_ids[i], "labels": split.labels[i], "dataset_id": d}


@dataclass
class MixtureCollator:
    """Right-pads a batch to its longest example (never to a fixed length).

    Returns ``input_ids``, ``attention_mask``, ``labels`` (``-100`` on padding), ``dataset_ids`` (one per
    example) and ``token_dataset_ids`` (per token, ``-1`` on padding), which the trainer takes out before the
    model's forward.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, object]]) -> dict[str, torch.Tensor]:
        length = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = len(features)
        input_ids = torch.full((batch, length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((batch, length), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            input_ids[row, :n] = torch.as_tensor(np.asarray(f["input_ids"]), dtype=torch.long)
            labels[row, :n] = torch.as_tensor(np.asarray(f["labels"]), dtype=torch.long)
            attention_mask[row, :n] = 1
        out = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if "dataset_id" in features[0]:
            out["dataset_ids"] = torch.tensor([int(f["dataset_id"]) for f in features], dtype=torch.long)
            # Per token, so that routing counts stay attributable if examples of several datasets share a row.
            per_token = out["dataset_ids"][:, None].expand(batch, length)
            out["token_dataset_ids"] = per_token.masked_fill(attention_mask == 0, -1)
        return out


def fixed_batches(split: TokenizedSplit, batch_size: int, max_batches: int | None, collator: MixtureCollator):
    """The first ``max_batches`` batches of a split, in order: the same examples at every probe."""
    n = len(split) if max_batches is None else min(len(split), max_batches * batch_size)
    for start in range(0, n, batch_size):
        rows = range(start, min(start + batch_size, n))
        yield collator([{"input_ids": split.input_ids[i], "labels": split.labels[i]} for i in rows])
