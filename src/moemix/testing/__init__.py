"""Helpers that moemix's tests and users' own tests share."""

from __future__ import annotations

from moemix.models.tiny import TINY_ARCHS, tiny_moe  # the builder lives in models (model.tiny uses it)
from moemix.testing.distributed import rank_parameters, run_distributed

__all__ = ["TINY_ARCHS", "rank_parameters", "run_distributed", "tiny_moe"]
