"""Helpers that moemix's tests and users' own tests share."""

from __future__ import annotations

from moemix.models.tiny import TINY_ARCHS, tiny_moe  # the builder lives in models (model.tiny uses it)

__all__ = ["TINY_ARCHS", "tiny_moe"]
