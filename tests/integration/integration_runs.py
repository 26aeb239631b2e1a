"""Tiny real runs through moemix.integrations: a tiny MoE, moemix's own BPE tokenizer, and datasets whose tokens
come from disjoint id ranges, so that the dataset of every token is known from the token alone."""

from __future__ import annotations

import random
from pathlib import Path

import datasets as hf

from moemix.data.tokenizer import train_bpe_tokenizer
from moemix.testing import tiny_moe

VOCAB = 320
RANGES = {"a": (10, 100), "b": (100, 200), "c": (200, 300)}
"""Each dataset's token ids: a token's id tells its dataset."""


def dataset_of(token: int) -> int:
    """The index of the dataset whose range holds ``token``, -1 for none (padding, special tokens)."""
    for d, (lo, hi) in enumerate(RANGES.values()):
        if lo <= token < hi:
            return d
    return -1


def ranged_datasets(rows: int = 30, seed: int = 0) -> dict[str, hf.Dataset]:
    """Tokenised datasets (``input_ids`` only: every token is learnt) of 5-20 tokens a row."""
    out = {}
    for i, (name, (lo, hi)) in enumerate(RANGES.items()):
        rng = random.Random(f"{seed}-{i}")
        ids = [[rng.randrange(lo, hi) for _ in range(rng.randint(5, 20))] for _ in range(rows)]
        out[name] = hf.Dataset.from_dict({"input_ids": ids})
    return out


def tokenizer(cache: Path):
    """moemix's byte-level BPE (its pad token is id 1, outside every range)."""
    return train_bpe_tokenizer(["moemix mixes datasets " * 20, "tiny runs"], vocab_size=290, cache_dir=cache)


def model(arch: str = "qwen2_moe", seed: int = 0):
    """A tiny real MoE of ``arch`` whose vocabulary holds every range."""
    return tiny_moe(arch, vocab_size=VOCAB, seed=seed)
