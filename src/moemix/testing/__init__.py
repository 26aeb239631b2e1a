"""Helpers that moemix's tests and users' own tests share."""

from __future__ import annotations

from moemix.testing.distributed import rank_parameters, run_distributed
from moemix.testing.models import TINY_ARCHS, tiny_moe

__all__ = ["TINY_ARCHS", "rank_parameters", "run_distributed", "tiny_moe"]
