"""moemix dataset configs as the Hugging Face datasets a Trainer takes: read, checked and tokenised by moemix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moemix.config import DatasetConfig
from moemix.data.load import load_dataset
from moemix.errors import ConfigError

DEFAULT_MAX_LENGTH = 1024
"""Tokens kept per example when the training arguments name no ``max_length`` (the config's default)."""


def tokenised_datasets(
    values: Mapping[str, Any], tokenizer, args, max_length: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Turn the :class:`~moemix.config.DatasetConfig` values into tokenised ``datasets.Dataset``s.

    Args:
        values: Datasets by name; ``DatasetConfig`` values are read, others kept as they are.
        tokenizer: A fast tokenizer with a chat template (the trainer's ``processing_class``).
        args: The training arguments: ``max_length`` (SFTConfig) and ``data_seed`` or ``seed``.
        max_length: Tokens kept per example; default ``args.max_length``, else :data:`DEFAULT_MAX_LENGTH`.

    Returns:
        ``(train, dev)``: the training datasets by name (``input_ids``, ``labels``: assistant tokens only) and
        the dev splits of the configured ones (the probe rows).

    Raises:
        ConfigError: Without a tokenizer.
        DataError: For data moemix's checks refuse.
    """
    import datasets as hf

    if tokenizer is None:
        raise ConfigError(
            "processing_class: moemix dataset configs are tokenised with the trainer's tokenizer; give one"
        )
    max_length = max_length or getattr(args, "max_length", None) or DEFAULT_MAX_LENGTH
    seed = getattr(args, "data_seed", None) or getattr(args, "seed", 42)
    train, dev = {}, {}
    for name, value in values.items():
        if not isinstance(value, DatasetConfig):
            train[name] = value
            continue
        loaded = load_dataset(value, tokenizer, max_length, seed)
        train[name] = _as_dataset(hf, loaded.train)
        if len(loaded.dev):
            dev[name] = _as_dataset(hf, loaded.dev)
    return train, dev


def _as_dataset(hf, split):
    return hf.Dataset.from_dict(
        {"input_ids": [ids.tolist() for ids in split.input_ids], "labels": [lab.tolist() for lab in split.labels]}
    )
