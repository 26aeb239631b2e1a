"""Tests of the LLaMA-Factory integration: they run only where LLaMA-Factory is installed (`make llamafactory-test`).

moemix's own environment cannot hold LLaMA-Factory (its pins are older than moemix's); there the folder is not
collected at all.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# tests/ is on sys.path (the folder of tests/conftest.py), where this folder itself would pass for a namespace
# package named llamafactory: only an installed one (a module with a file) counts.
_installed = importlib.util.find_spec("llamafactory")
if _installed is None or _installed.origin is None:
    collect_ignore_glob = ["test_*.py"]

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """A tiny Qwen2-MoE with its tokenizer and three local datasets, built once per session."""
    from workspace import build_workspace

    return build_workspace(tmp_path_factory.mktemp("llamafactory"))
