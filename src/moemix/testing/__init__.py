"""Helpers that moemix's tests and users' own tests share."""

from __future__ import annotations

from moemix.models.tiny import TINY_ARCHS, tiny_moe  # the builder lives in models (model.tiny uses it)
from moemix.testing.distributed import rank_parameters, run_distributed, torchrun
from moemix.testing.runs import (
    StopAtStep,
    builtin_texts,
    builtin_tokenizer,
    padded_batch,
    random_dev_batches,
    save_tiny_model,
    schema_policy_config,
    tiny_run_config,
)

__all__ = [
    "StopAtStep",
    "TINY_ARCHS",
    "builtin_texts",
    "builtin_tokenizer",
    "padded_batch",
    "random_dev_batches",
    "rank_parameters",
    "run_distributed",
    "save_tiny_model",
    "schema_policy_config",
    "tiny_moe",
    "tiny_run_config",
    "torchrun",
]
