"""The one config schema: a moemix run, its sections, and the rules that span them.

Training options are Hugging Face's own ``TrainingArguments`` (the ``training:`` section), so ``--max_steps``,
``--bf16``, ``--report_to``, ``--deepspeed`` mean what Trainer users expect; their values are converted to
``TrainingArguments``' own field types, and :data:`TRAINING_RULES` adds the ranges Hugging Face leaves
unchecked. Everything else is moemix's own, one dataclass per section, one docstring per field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moemix.config.data import DataConfig, DatasetConfig
from moemix.config.mixing import MixingConfig
from moemix.config.model import ModelConfig
from moemix.config.rules import Range, Where, check_section, setting
from moemix.errors import ConfigError


def _must_be_false(value: Any) -> str | None:
    return None if value is False else f"must be false (batches carry dataset ids), got {value!r}"


def _steps_or_no_limit(value: Any) -> str | None:
    # The Trainer reads max_steps 0 as "no limit" and trains num_train_epochs epochs.
    if value != 0:
        return None
    return (
        "max_steps 0 trains nothing; give a positive number of optimizer steps, "
        "or -1 (the default) to train num_train_epochs epochs"
    )


TRAINING_RULES = {
    "per_device_train_batch_size": Range(low=1),
    "per_device_eval_batch_size": Range(low=1),
    "gradient_accumulation_steps": Range(low=1),
    "learning_rate": Range(low=0.0),
    "weight_decay": Range(low=0.0),
    "warmup_steps": Range(low=0.0),
    "max_grad_norm": Range(low=0.0),
    "remove_unused_columns": _must_be_false,
    "max_steps": _steps_or_no_limit,
}
"""Rules of ``training:`` fields that ``TrainingArguments`` itself does not check (a batch size of 0 would only
fail inside the dataloader, after data and model are loaded)."""


@dataclass
class Config:
    """A moemix run."""

    datasets: list[DatasetConfig]
    """The datasets to mix (at least two)."""
    dev_datasets: list[DatasetConfig] = setting(factory=list)
    """Dev splits given apart from the datasets: each entry's ``name`` is the training dataset it belongs to
    and its ``path`` (with its own format, columns, templates) the dev data; no dev_path or dev_size here."""
    data: DataConfig = setting(factory=DataConfig)
    """Checking (strict or skip_invalid) and caching of the data."""
    model: ModelConfig = setting(factory=ModelConfig)
    """The model and tokenizer."""
    mixing: MixingConfig = setting(factory=MixingConfig)
    """The mixing policy."""
    output_dir: str = "runs/moemix"
    """Run folder: checkpoints, mixture.jsonl, metrics.json."""
    max_length: int = setting(1024, Range(low=8))
    """Examples are truncated to this many tokens (batches are padded to their longest example only)."""
    seed: int = 42
    """Seed of the sampler (which examples are trained on, in which order) and of the training arguments."""
    data_seed: int = setting(42, Range(low=0))
    """Seed of the dev splits held out by ``dev_size``; apart from ``seed``, so that runs with different seeds
    (``moemix compare``) evaluate on the same examples."""
    eval_batches: int | None = setting(None, Range(low=1))
    """Dev batches per dataset for the final dev loss; default: the whole dev split."""
    max_tokens: int | None = setting(None, Range(low=1))
    """Token budget: stop at the end of the optimizer step that brings the tokens trained on (non-padding
    inputs, all ranks together) to this many. ``training.max_steps`` still caps the run and shapes the
    learning-rate schedule (``constant_with_warmup`` does not depend on it)."""
    save_model: bool = True
    """Write the trained model into ``RUN/model`` at the end; ``false`` for comparisons and studies that need
    only the metrics and the mixture (a saved 700 M-parameter model is 2.8 GB a run)."""
    log_draws: bool = False
    """Write every optimizer step's draws (dataset, example) to ``RUN/draws.jsonl`` (one file per rank)."""
    allow_mixture_change: bool = False
    """On resume, accept a changed dataset list, seed or mixing config (logged) instead of stopping."""
    training: dict[str, Any] = setting(factory=dict)
    """Hugging Face ``TrainingArguments`` fields (max_steps, learning_rate, per_device_train_batch_size, ...),
    each converted to its ``TrainingArguments`` type."""

    def check(self, where: Where, prefix: str) -> None:
        """Rules across sections: enough distinct datasets, dev sets that name them, weights per dataset."""
        if len(self.datasets) < 2:
            raise ConfigError(f"{where('datasets')}: at least two datasets are needed to mix, got {len(self.datasets)}")
        seen: list[str] = []
        for i, ds in enumerate(self.datasets):
            if ds.name in seen:
                raise ConfigError(f"{where(f'datasets.{i}.name')}: duplicate dataset name {ds.name!r}")
            seen.append(ds.name)
        dev_seen: set[str] = set()
        for i, dev in enumerate(self.dev_datasets):
            if dev.name not in seen:
                raise ConfigError(
                    f"{where(f'dev_datasets.{i}.name')}: {dev.name!r} names no training dataset; "
                    f"known: {', '.join(sorted(seen))}"
                )
            if dev.name in dev_seen:
                raise ConfigError(f"{where(f'dev_datasets.{i}.name')}: a second dev set for dataset {dev.name!r}")
            dev_seen.add(dev.name)
            own = self.datasets[seen.index(dev.name)]
            if own.dev_path is not None or own.dev_size:
                raise ConfigError(
                    f"{where(f'dev_datasets.{i}.name')}: dataset {dev.name!r} already has a dev_path or dev_size; "
                    "keep one"
                )
            for key in ("dev_path", "dev_size", "max_examples"):
                if getattr(dev, key):
                    raise ConfigError(
                        f"{where(f'dev_datasets.{i}.{key}')}: not allowed in a dev set (it is the dev split)"
                    )
            if dev.truncation != "drop":
                raise ConfigError(
                    f"{where(f'dev_datasets.{i}.truncation')}: not in a dev set (it follows its training dataset)"
                )
        self.mixing.check_datasets(seen, where, "mixing")
        for key, value in self.training.items():
            rule = TRAINING_RULES.get(key)
            broken = rule(value) if rule is not None and value is not None else None
            if broken:
                raise ConfigError(f"{where(f'training.{key}')}: {broken}")


def validate(config: Config, where: Where | None = None) -> None:
    """Check every rule of a config: each field's own, each section's, and those across sections.

    Args:
        config: A config, loaded or built in code.
        where: Formats a field's place for the message; default ``<config>: path``.

    Raises:
        ConfigError: Naming the place, field and rule of the first problem.
    """
    check_section(config, where or (lambda path: f"<config>: {path}"))
