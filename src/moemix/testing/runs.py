"""Tiny runs for tests: the config of a run that trains in seconds, a saved model folder, a padded batch, a
callback that interrupts a run.

Everything is real: the config is YAML that :func:`moemix.config.load_config` reads as a user's file, the model
folder holds a tiny real MoE (or dense Llama) beside a byte-level BPE tokenizer trained on moemix's built-in
data, as ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained`` load them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import PreTrainedTokenizerBase, TrainerCallback

from moemix.data.builtin import builtin_records
from moemix.data.render import IGNORE_INDEX
from moemix.data.tokenizer import train_bpe_tokenizer
from moemix.models.tiny import tiny_moe

# What a tiny run sets unless told otherwise: short examples, one dev batch, the dynamic mixture updated every
# 2 steps from one small probe batch, 4 steps without progress bars or logs.
RUN_DEFAULTS: dict[str, Any] = {"max_length": 96, "eval_batches": 1}
MIXING_DEFAULTS: dict[str, Any] = {"policy": "dynamic", "interval": 2, "probe_batches": 1, "probe_batch_size": 4}
TRAINING_DEFAULTS: dict[str, Any] = {
    "max_steps": 4,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 8,
    "disable_tqdm": True,
    "logging_strategy": "no",
}


def tiny_run_config(
    datasets: Sequence[str | Mapping[str, Any]] = ("dialogue", "math"),
    max_examples: int | None = 80,
    *,
    arch: str = "mixtral",
    vocab_size: int = 512,
    model: Mapping[str, Any] | None = None,
    mixing: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    **settings: Any,
) -> str:
    """The YAML text of a run that trains a tiny random-init MoE on built-in data in seconds.

    Every section is the defaults above with the caller's values on top; a value of ``None`` removes the key
    (the schema's own default applies).

    Args:
        datasets: Built-in domains (``"math"`` is ``{name: math, path: "builtin:math", max_examples: ...}``) or
            whole dataset entries.
        max_examples: ``max_examples`` of each built-in domain (``None``: all of them).
        arch: ``model.tiny``, the architecture (see :data:`moemix.testing.TINY_ARCHS`).
        vocab_size: ``model.vocab_size`` of the built-in tokenizer.
        model: The whole ``model`` section instead of the tiny one (a saved folder, LoRA, upcycling).
        mixing: Fields of ``mixing`` over :data:`MIXING_DEFAULTS`.
        training: Fields of ``training`` over :data:`TRAINING_DEFAULTS`.
        **settings: Top-level fields (``seed``, ``max_length``, ``log_draws``, ``data``, ...) over
            :data:`RUN_DEFAULTS`.

    Returns:
        The config as YAML text, for ``load_config(text=...)`` or a file.
    """
    entries = []
    for dataset in datasets:
        if isinstance(dataset, str):
            dataset = {"name": dataset, "path": f"builtin:{dataset}", "max_examples": max_examples}
        entries.append(_present(dataset))
    sections = {
        **_present({**RUN_DEFAULTS, **settings}),
        "datasets": entries,
        "model": dict(model) if model is not None else {"tiny": arch, "tokenizer": "builtin", "vocab_size": vocab_size},
        "mixing": _present({**MIXING_DEFAULTS, **(mixing or {})}),
        "training": _present({**TRAINING_DEFAULTS, **(training or {})}),
    }
    return yaml.safe_dump(sections, sort_keys=False, default_flow_style=None, width=1000)


def schema_policy_config(max_examples: int, max_steps: int) -> str:
    """A tiny run of dialogue, math and code that leaves ``mixing.policy`` and the eval batch size to the schema.

    For tests that choose the strategy on the command line (``--mixing.policy=...``, ``moemix compare``) or
    read what the default one does.

    Args:
        max_examples: ``max_examples`` of each domain.
        max_steps: ``training.max_steps``.

    Returns:
        The config as YAML text (:func:`tiny_run_config`, vocabulary 400).
    """
    return tiny_run_config(
        ("dialogue", "math", "code"),
        max_examples,
        vocab_size=400,
        mixing={"policy": None},
        training={"max_steps": max_steps, "per_device_eval_batch_size": None},
    )


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def builtin_texts(domains: Iterable[str], n: int) -> list[str]:
    """Every turn of the first ``n`` training records of each built-in domain: a tokenizer's training text."""
    return [turn["value"] for d in domains for r in builtin_records(d, "train", n=n) for turn in r["conversations"]]


def builtin_tokenizer(
    domains: Iterable[str], n: int, vocab_size: int, cache_dir: str | Path | None = None, extra: Sequence[str] = ()
) -> PreTrainedTokenizerBase:
    """A byte-level BPE tokenizer (moemix's own, with its chat template) trained on built-in data.

    Args:
        domains: The built-in domains whose first ``n`` training records give the text.
        n: Records per domain.
        vocab_size: The vocabulary size.
        cache_dir: The tokenizer cache (default: moemix's cache, ``$MOEMIX_CACHE/tokenizers``).
        extra: More lines of text to train on.

    Returns:
        The tokenizer (the same texts and size give the same tokenizer, from the cache or trained anew).
    """
    return train_bpe_tokenizer([*builtin_texts(domains, n), *extra], vocab_size=vocab_size, cache_dir=cache_dir)


def save_tiny_model(
    folder: str | Path,
    arch: str = "mixtral",
    domains: Sequence[str] = ("math", "code"),
    n: int = 40,
    vocab_size: int = 300,
    cache_dir: str | Path | None = None,
) -> Path:
    """Save a tiny model and its BPE tokenizer (trained on built-in data) as a Hugging Face model folder.

    Args:
        folder: The model folder to write.
        arch: A tiny MoE architecture (:func:`moemix.testing.tiny_moe`, seed 0), or ``"llama"``: a dense Llama
            of 3 layers (hidden 32, seeded with ``torch.manual_seed(0)``), the kind ``moemix upcycle`` reads.
        domains: The built-in domains whose first ``n`` records train the tokenizer.
        n: Records per domain.
        vocab_size: The tokenizer's vocabulary size.
        cache_dir: The tokenizer cache (default: moemix's cache, ``$MOEMIX_CACHE/tokenizers``).

    Returns:
        ``folder``.
    """
    folder = Path(folder)
    tokenizer = builtin_tokenizer(domains, n, vocab_size, cache_dir)
    if arch == "llama":
        from transformers import AutoModelForCausalLM, LlamaConfig

        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        )  # fmt: skip
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
    else:
        model = tiny_moe(arch, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def padded_batch(
    seed: int = 0,
    vocab_size: int = 256,
    length: int = 12,
    spans: Sequence[tuple[int, int]] = ((0, 8), (7, 12), (0, 12)),
    low: int = 3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random token ids with padding: one row per ``(start, end)`` span of real tokens.

    The default is three rows of 12 positions: right-padded (8 tokens), left-padded (5 tokens) and full.
    Padding holds id 0, the ``pad_token_id`` of :func:`moemix.testing.tiny_moe`.

    Args:
        seed: Seed of the ids (a generator of its own: the global RNG is untouched).
        vocab_size: Ids are drawn from ``[low, vocab_size)``.
        length: Positions per row.
        spans: Real tokens of each row, ``[start, end)``.
        low: The smallest id drawn (3 leaves out tiny_moe's pad, bos and eos).

    Returns:
        ``(input_ids, attention_mask)``, both ``[len(spans), length]`` of dtype long.
    """
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(low, vocab_size, (len(spans), length), generator=generator)
    attention_mask = torch.zeros(len(spans), length, dtype=torch.long)
    for row, (start, end) in enumerate(spans):
        attention_mask[row, start:end] = 1
    return input_ids.masked_fill(attention_mask == 0, 0), attention_mask


def random_dev_batches(
    seed: int,
    count: int = 2,
    rows: int = 3,
    length: int = 20,
    shortest: int = 4,
    vocab_size: int = 256,
    prompt: int = 3,
) -> list[dict[str, torch.Tensor]]:
    """Right-padded batches of random rows of different lengths, as a probe or dev set hands them to the model.

    Args:
        seed: Seed of the ids and lengths (a generator of its own: the global RNG is untouched).
        count: Batches.
        rows: Rows per batch.
        length: Positions per row.
        shortest: The shortest row's real tokens (lengths are drawn from ``[shortest, length]``).
        vocab_size: Ids are drawn from ``[3, vocab_size)``; padding holds id 0.
        prompt: The first tokens of each row, which carry no label (a prompt).

    Returns:
        Batches of ``input_ids``, ``attention_mask`` and ``labels`` (``IGNORE_INDEX`` at padding and prompt).
    """
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        input_ids = torch.randint(3, vocab_size, (rows, length), generator=generator)
        lengths = torch.randint(shortest, length + 1, (rows,), generator=generator)
        mask = (torch.arange(length)[None] < lengths[:, None]).long()
        input_ids[mask == 0] = 0
        labels = input_ids.masked_fill(mask == 0, IGNORE_INDEX)
        labels[:, :prompt] = IGNORE_INDEX
        batches.append({"input_ids": input_ids, "attention_mask": mask, "labels": labels})
    return batches


class StopAtStep(TrainerCallback):
    """Stops training at the end of optimizer step ``step``, as an interrupted run would stop (to resume it)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control
