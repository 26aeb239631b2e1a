"""moemix inside your own training script: a Trainer, TRL's SFTTrainer, a custom loop, LLaMA-Factory.

- :func:`mixing_trainer` builds your ``transformers.Trainer`` / ``trl.SFTTrainer`` (or a subclass) training on
  moemix's dynamic mixture of named datasets; :func:`mixing_trainer_class` gives the class, for frameworks that
  build the trainer themselves.
- :class:`MixtureLoop`: the same mixture for a loop you write (accelerate, plain PyTorch, Lightning).
- :class:`RoutingTelemetry`: routing statistics per MoE layer and dataset, without mixing.
- :func:`mixing_settings` checks a ``mixing:`` section; :func:`tag_datasets` tags rows with their dataset.

See docs/LIBRARY.md.
"""

from moemix.integrations.loop import MixtureLoop
from moemix.integrations.mixture import TrainerMixture
from moemix.integrations.rows import COLUMN, probe_batches, tag_datasets
from moemix.integrations.settings import mixing_settings
from moemix.integrations.telemetry import RoutingTelemetry, load_statistics
from moemix.integrations.trainer import mixing_trainer, mixing_trainer_class

__all__ = [
    "COLUMN",
    "MixtureLoop",
    "RoutingTelemetry",
    "TrainerMixture",
    "load_statistics",
    "mixing_settings",
    "mixing_trainer",
    "mixing_trainer_class",
    "probe_batches",
    "tag_datasets",
]
