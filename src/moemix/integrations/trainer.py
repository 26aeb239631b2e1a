"""One call from a user's ``transformers.Trainer`` or ``trl.SFTTrainer`` (or any subclass) to a mixing trainer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from moemix.config import DatasetConfig, MixingConfig
from moemix.data.feed import TicketDataset, collate_tickets
from moemix.errors import ConfigError
from moemix.integrations.mixture import TrainerMixture
from moemix.integrations.rows import (
    WithoutDatasetIds,
    is_tagged,
    retag,
    split_by_dataset,
    tag_datasets,
)
from moemix.integrations.settings import mixing_settings
from moemix.train.trainer import MixtureTraining


def mixing_trainer_class(
    base: type,
    names: Sequence[str],
    mixing: MixingConfig | Mapping[str, Any] | None = None,
    probe: Mapping[str, Any] | None = None,
) -> type:
    """A subclass of the Trainer class ``base`` that trains on moemix's mixture of the datasets ``names``.

    For frameworks that build the trainer themselves (LLaMA-Factory): hand them the class. It takes what ``base``
    takes; its ``train_dataset`` must carry the dataset column (:func:`tag_datasets`). Each optimizer step's
    micro-batches are drawn when the step starts, with the weights in effect for that step; evaluation and
    prediction use the trainer's datasets and collator as they are (the column left out).

    A trainer that prepares its training set itself through ``_prepare_dataset`` (TRL's SFTTrainer: tokenising,
    dropping fully masked rows, packing) prepares each dataset apart, so that a packed row never mixes datasets.

    Args:
        base: ``transformers.Trainer`` or a subclass (``trl.SFTTrainer``, LLaMA-Factory's trainers, yours).
        names: The datasets' names, in the order of the column's indices.
        mixing: The mixing settings: the keys of the YAML ``mixing:`` section (``source`` defaults to online).
        probe: Tokenised probe rows by dataset name, for ``source: probe`` and policies that read the dev loss.

    Returns:
        The subclass; an instance holds its mixing parts in ``.moemix`` (:class:`TrainerMixture`).

    Raises:
        ConfigError: For settings the config's rules refuse.
    """
    names = list(names)
    settings = mixing_settings(mixing, names)

    class MixingTrainer(MixtureTraining, base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.moemix = TrainerMixture(self, names, settings, probe)
            self.data_collator = WithoutDatasetIds(self.data_collator)

        def train(self, resume_from_checkpoint=None, *args, **kwargs):
            checkpoint = self.moemix.begin(resume_from_checkpoint)
            return super().train(checkpoint, *args, **kwargs)

        def get_train_dataloader(self):
            # Tickets only pace the loop; the feed draws the rows when each optimizer step starts.
            tickets = TicketDataset(self.moemix.tickets)
            loader = torch.utils.data.DataLoader(
                tickets,
                batch_size=self._train_batch_size,
                sampler=torch.utils.data.SequentialSampler(tickets),
                collate_fn=collate_tickets,
                drop_last=self.args.dataloader_drop_last,
            )
            return self.accelerator.prepare(loader)

        if hasattr(base, "_prepare_dataset"):

            def _prepare_dataset(self, dataset, *args, **kwargs):
                if not is_tagged(dataset):
                    return super()._prepare_dataset(dataset, *args, **kwargs)
                return retag(
                    [
                        (d, super(MixingTrainer, self)._prepare_dataset(rows, *args, **kwargs))
                        for d, rows in split_by_dataset(dataset)
                    ]
                )

    MixingTrainer.__name__ = MixingTrainer.__qualname__ = f"Mixing{base.__name__}"
    return MixingTrainer


def mixing_trainer(
    base: type,
    datasets: Mapping[str, Any],
    mixing: MixingConfig | Mapping[str, Any] | None = None,
    *,
    probe: Mapping[str, Any] | None = None,
    max_length: int | None = None,
    **trainer_kwargs: Any,
):
    """Build ``base(**trainer_kwargs)`` training on moemix's dynamic mixture of ``datasets``.

    Example::

        trainer = mixing_trainer(SFTTrainer, {"math": math, "code": code}, {"policy": "dynamic", "interval": 10},
                                 model=model, args=SFTConfig(output_dir="out", max_steps=200), processing_class=tok)
        trainer.train()  # writes out/mixture.jsonl; checkpoints carry the mixture; resume is exact

    Args:
        base: ``transformers.Trainer``, ``trl.SFTTrainer`` or a subclass.
        datasets: The training datasets by name, in order: ``datasets.Dataset``s in a form ``base`` trains on
            (tokenised for a plain Trainer; text, messages or prompt/completion for SFTTrainer), or moemix
            :class:`~moemix.config.DatasetConfig`s (read, checked and tokenised by moemix with the
            ``processing_class``'s chat template; their dev splits are the probe rows).
        mixing: The mixing settings: the keys of the YAML ``mixing:`` section (``source`` defaults to online).
        probe: Tokenised probe rows by dataset name, for ``source: probe`` and policies that read the dev loss.
        max_length: Tokens kept per example of the dataset configs (default: ``args.max_length``, else 1024).
        **trainer_kwargs: What ``base`` takes (``model``, ``args``, ``processing_class``, ``data_collator``,
            ``eval_dataset``, ``callbacks``, ...), except ``train_dataset``.

    Returns:
        The trainer. Train it as usual; ``trainer.moemix`` holds its mixing parts (:class:`TrainerMixture`).

    Raises:
        ConfigError: For settings the config's rules refuse, or a ``train_dataset`` given besides ``datasets``.
        DataError: For a dataset that cannot be drawn from (not a ``datasets.Dataset``, empty).
    """
    if "train_dataset" in trainer_kwargs:
        raise ConfigError("train_dataset: give the training data as the named datasets, not train_dataset")
    names = list(datasets)
    settings = mixing_settings(mixing, names)
    values = dict(datasets)
    if any(isinstance(value, DatasetConfig) for value in values.values()):
        from moemix.integrations.configured import tokenised_datasets

        values, dev = tokenised_datasets(
            values, trainer_kwargs.get("processing_class"), trainer_kwargs.get("args"), max_length
        )
        probe = dev if probe is None else probe
        if trainer_kwargs.get("data_collator") is None:  # moemix's rows: pad input ids and labels alike
            from moemix.data.mixture import MixtureCollator

            trainer_kwargs["data_collator"] = MixtureCollator(
                pad_token_id=trainer_kwargs["processing_class"].pad_token_id
            )
    cls = mixing_trainer_class(base, names, settings, probe)
    return cls(train_dataset=tag_datasets(values), **trainer_kwargs)
