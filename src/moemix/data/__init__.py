"""Data: formats, chat rendering with assistant-only labels, tokenised splits, the mixture sampler."""

from moemix.data.formats import to_messages
from moemix.data.load import LoadedDataset, TokenizedSplit, load_data, load_dataset, training_texts
from moemix.data.mixture import MixtureCollator, MixtureDataset, fixed_batches
from moemix.data.packing import PackingCollator, pack_rows
from moemix.data.readers import read_records, resolve_sources
from moemix.data.render import IGNORE_INDEX, tokenize_conversation
from moemix.data.sampler import MixtureSampler, counter_uniform
from moemix.data.validate import DatasetReport, Problem, format_report

__all__ = [
    "IGNORE_INDEX",
    "DatasetReport",
    "LoadedDataset",
    "MixtureCollator",
    "MixtureDataset",
    "MixtureSampler",
    "PackingCollator",
    "Problem",
    "TokenizedSplit",
    "counter_uniform",
    "fixed_batches",
    "format_report",
    "load_data",
    "load_dataset",
    "pack_rows",
    "read_records",
    "resolve_sources",
    "to_messages",
    "tokenize_conversation",
    "training_texts",
]
