"""A built-in, deterministic instruction data set in four domains, for the offline demo and the tests.

The four domains are small stand-ins for the four data types of "Dynamic Data Mixing Maximizes Instruction
Tuning for MoE": everyday dialogue (ShareGPT), NLP tasks (OpenOrca), math word problems (MetaMathQA) and Python
code (evol-codealpaca). Each record is in ShareGPT form::

    {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}

Every answer is correct for its question by construction: math steps and code are computed, not written.
The domains use clearly different words and layouts so that a router has something to tell apart.

Train and dev are disjoint whatever ``n`` and ``seed``: a conversation belongs to dev when a hash of its text
falls in one bucket of eight, and each split keeps only the conversations of its own buckets.

This module holds the generation loop and the split rule; each domain's templates and word lists live in
their own module (``dialogue``, ``nlp``, ``math_problems``, ``code_tasks``), the pieces they share in ``shared``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from pathlib import Path

from moemix.data.builtin.code_tasks import CodeTask, code_conversation, code_task
from moemix.data.builtin.dialogue import dialogue_conversation
from moemix.data.builtin.math_problems import MathProblem, math_conversation, math_problem
from moemix.data.builtin.nlp import nlp_conversation
from moemix.data.builtin.shared import Turns
from moemix.errors import DataError
from moemix.files import write_text_atomic

__all__ = [
    "DEFAULT_N",
    "DOMAINS",
    "SPLITS",
    "CodeTask",
    "MathProblem",
    "builtin_records",
    "code_task",
    "conversation_text",
    "math_problem",
    "write_builtin_jsonl",
]

DOMAINS: tuple[str, ...] = ("dialogue", "nlp", "math", "code")
SPLITS: tuple[str, ...] = ("train", "dev")
DEFAULT_N: dict[str, int] = {"train": 2000, "dev": 64}

# One hash bucket in _DEV_BUCKETS is dev: dev costs ~8 draws per record, train ~1.14, both cheap.
_DEV_BUCKETS = 8


def conversation_text(record: dict) -> str:
    """The text of a record that decides its split: roles and values, one turn a line.

    Args:
        record: A ShareGPT record, ``{"conversations": [{"from": ..., "value": ...}, ...]}``.

    Returns:
        The turns joined as ``role: value`` lines.
    """
    return "\n".join(f"{turn['from']}: {turn['value']}" for turn in record["conversations"])


def builtin_records(domain: str, split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    """Generate ``n`` ShareGPT records of one domain, the same ones for the same arguments.

    Args:
        domain: One of :data:`DOMAINS`.
        split: ``"train"`` or ``"dev"``; no conversation text appears in both, for any ``n`` and ``seed``.
        n: How many records; defaults to 2000 for train and 64 for dev.
        seed: Picks another sample of the same distribution.

    Returns:
        A list of ``{"conversations": [...]}`` dicts: an optional system turn, then human and gpt turns
        alternating, ending with gpt.

    Raises:
        DataError: If the domain or split is unknown, or ``n`` is not an integer >= 0.
    """
    _check_names(domain, split)
    if n is None:
        n = DEFAULT_N[split]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"builtin data: n must be an integer >= 0, got {n!r}")
    rng = _rng(domain, split, seed)
    generate = _GENERATORS[domain]
    records: list[dict] = []
    attempts = 0
    while len(records) < n:
        attempts += 1
        # A generator whose outputs all fell in one bucket would loop forever; this bound is far above need.
        assert attempts <= 100 * n + 1000, f"builtin {domain}: cannot fill the {split} split"
        record = {"conversations": generate(rng)}
        if _split_of(conversation_text(record)) == split:
            records.append(record)
    return records


def write_builtin_jsonl(
    domain: str, split: str, path: str | os.PathLike[str], n: int | None = None, seed: int = 0
) -> Path:
    """Write :func:`builtin_records` as JSON Lines, atomically (a reader never sees half a file).

    Args:
        domain: One of :data:`DOMAINS`.
        split: ``"train"`` or ``"dev"``.
        path: The file to write; its parent folders are created.
        n: How many records; defaults as in :func:`builtin_records`.
        seed: As in :func:`builtin_records`.

    Returns:
        The path written.

    Raises:
        DataError: If the domain or split is unknown, or ``n`` is not an integer >= 0.
    """
    records = builtin_records(domain, split, n=n, seed=seed)
    path = Path(path)
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    return path


def _check_names(domain: str, split: str) -> None:
    if domain not in _GENERATORS:
        raise DataError(f"builtin data: unknown domain {domain!r}; valid domains: {', '.join(DOMAINS)}")
    if split not in SPLITS:
        raise DataError(f"builtin data: unknown split {split!r}; valid splits: {', '.join(SPLITS)}")


def _rng(domain: str, split: str, seed: int) -> random.Random:
    # sha256 rather than hash(): str hashes are salted per process, and streams must not depend on it.
    digest = hashlib.sha256(f"moemix.builtin/{domain}/{split}/{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _split_of(text: str) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return "dev" if int.from_bytes(digest, "big") % _DEV_BUCKETS == 0 else "train"


_GENERATORS: dict[str, Callable[[random.Random], Turns]] = {
    "dialogue": dialogue_conversation,
    "nlp": nlp_conversation,
    "math": math_conversation,
    "code": code_conversation,
}
