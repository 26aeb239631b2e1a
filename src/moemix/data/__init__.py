"""Data: formats, chat rendering with assistant-only labels, tokenised splits, the mixture sampler."""

from moemix.data.formats import read_records, to_messages
from moemix.data.load import TokenizedSplit, load_splits, split_records
from moemix.data.mixture import MixtureCollator, MixtureDataset, fixed_batches
from moemix.data.render import IGNORE_INDEX, tokenize_conversation
from moemix.data.sampler import MixtureSampler, counter_uniform

__all__ = [
    "IGNORE_INDEX",
    "MixtureCollator",
    "MixtureDataset",
    "MixtureSampler",
    "TokenizedSplit",
    "counter_uniform",
    "fixed_batches",
    "load_splits",
    "read_records",
    "split_records",
    "to_messages",
    "tokenize_conversation",
]
