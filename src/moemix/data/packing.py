"""Packing: several tokenised examples per row, each attending only to itself, every token tagged with its dataset.

A packed batch carries no ``attention_mask`` but ``position_ids`` that restart at 0 with every example, and
``use_cache=False``. Hugging Face models whose attention masks come from ``transformers.masking_utils`` (Llama,
Mixtral, Qwen-MoE, OLMoE and most current decoders) read those restarts as sequence boundaries when there is
neither a 2-D mask nor a cache, and attend block-causally, inside each example; flash-attention kernels do the
same through ``position_ids``. (With the config's default ``use_cache=True`` even a training forward builds a
cache, and the boundaries are ignored: hence the flag in the batch.)
A model that ignores ``position_ids`` boundaries would attend across examples: check a model with
``tests/unit/data/test_data_packing.py``'s comparison (packed logits equal the logits of each example alone)
before packing for it.

``token_dataset_ids`` (``-1`` on padding) keeps the routing signal attributed to the right dataset although a
row mixes datasets: the trainer counts tokens seen, the online routing signal and the per-dataset training loss
from it. Off by default; ``data.packing: true`` packs each training micro-batch (the draws stay the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from moemix.data.render import IGNORE_INDEX


def pack_rows(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Assign examples to rows of at most ``max_length`` tokens: first fit, longest examples first.

    Args:
        lengths: token count of each example (each at most ``max_length``).
        max_length: the row length.

    Returns:
        Rows as lists of example indices, each row in increasing index order; every index appears once.

    Raises:
        ValueError: if an example is longer than ``max_length``.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        if lengths[i] > max_length:
            raise ValueError(f"example {i} has {lengths[i]} tokens, more than max_length={max_length}")
        for r, room in enumerate(free):
            if lengths[i] <= room:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(max_length - lengths[i])
    return [sorted(row) for row in rows]


@dataclass
class PackingCollator:
    """Packs a list of examples (``input_ids``, ``labels``, ``dataset_id``) into as few rows as fit.

    Returns ``input_ids`` and ``labels`` ``[R, L]`` (L the longest packed row, padding labelled ``-100``),
    ``position_ids`` restarting at 0 with each example (padding forms its own segment), and
    ``token_dataset_ids`` ``[R, L]`` (``-1`` on padding), and ``use_cache=False`` (see the module docstring).
    The first label of every example is ``-100``: it would otherwise be predicted from the end of the example
    before it.
    """

    pad_token_id: int
    max_length: int

    def __call__(self, features: list[dict[str, object]]) -> dict[str, torch.Tensor | bool]:
        lengths = [len(f["input_ids"]) for f in features]
        rows = pack_rows(lengths, self.max_length)
        width = max(sum(lengths[i] for i in row) for row in rows)
        shape = (len(rows), width)
        input_ids = np.full(shape, self.pad_token_id, dtype=np.int64)
        labels = np.full(shape, IGNORE_INDEX, dtype=np.int64)
        position_ids = np.zeros(shape, dtype=np.int64)
        token_dataset_ids = np.full(shape, -1, dtype=np.int64)
        for r, row in enumerate(rows):
            at = 0
            for i in row:
                f, n = features[i], lengths[i]
                input_ids[r, at : at + n] = f["input_ids"]
                labels[r, at : at + n] = f["labels"]
                labels[r, at] = IGNORE_INDEX
                position_ids[r, at : at + n] = np.arange(n)
                token_dataset_ids[r, at : at + n] = int(f.get("dataset_id", 0))
                at += n
            position_ids[r, at:] = np.arange(width - at)
        return {
            "input_ids": torch.from_numpy(input_ids),
            "labels": torch.from_numpy(labels),
            "position_ids": torch.from_numpy(position_ids),
            "token_dataset_ids": torch.from_numpy(token_dataset_ids),
            "use_cache": False,
        }
