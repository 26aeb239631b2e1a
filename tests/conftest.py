"""Fixtures every test folder shares: moemix's on-disk cache kept inside the test session.

``MOEMIX_CACHE`` (tokenizers, tokenised splits, upcycled models) points into the session's temporary folder
from the start, so that no test reads or fills the user's ``~/.cache/moemix``, and the tests of one process
share what an earlier test already built (the cache is keyed by content: a hit is what a rebuild would give).
A test that checks what the cache holds, or that nothing was built, asks for ``cache``: a folder of its own.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest


def pytest_collection_finish(session):
    """Freeze what collection built (every imported module, every test item) out of Python's cyclic GC.

    It all lives until the session ends, yet each full collection walks it again: the Trainer runs one at the
    end of every ``train()`` (accelerate's ``free_memory``), ~0.6-1 s per training run here, and Python runs its
    own as objects pile up. Frozen, those collections see only what the tests allocate. Behaviour is unchanged:
    nothing frozen was garbage (collected just before).
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """The cache folder of this test process (one per xdist worker), set as ``MOEMIX_CACHE`` for the session."""
    folder = tmp_path_factory.mktemp("moemix-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOEMIX_CACHE", str(folder))
        yield folder


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache folder of this test's own, ``tmp_path / "cache"`` (not created), set as ``MOEMIX_CACHE``."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MOEMIX_CACHE", str(folder))
    return folder
