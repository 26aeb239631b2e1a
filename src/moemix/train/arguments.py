"""Hugging Face ``TrainingArguments`` from the config's ``training`` section, built before anything loads."""

from __future__ import annotations

from transformers import TrainingArguments

from moemix.config import Config
from moemix.errors import ConfigError
from moemix.train.launch import launch_defaults

# What moemix sets unless the config says otherwise: batches carry dataset ids (keep the columns), and
# nothing is reported to an online service by default (runs must work offline).
TRAINING_DEFAULTS = {"remove_unused_columns": False, "report_to": "none", "save_strategy": "no"}


def training_arguments(config: Config) -> TrainingArguments:
    """Hugging Face ``TrainingArguments`` from the config's ``training`` section, with moemix's defaults.

    Args:
        config: The run's config.

    Returns:
        The arguments the Trainer gets, with the launch's device defaults (see :func:`launch_defaults`).

    Raises:
        ConfigError: If a ``training`` value is refused by ``TrainingArguments`` or breaks moemix's rules.
    """
    kwargs = TRAINING_DEFAULTS | dict(config.training)
    kwargs.pop("resume_from_checkpoint", None)  # moemix resolves it (see checkpoint.resolve_resume)
    kwargs |= launch_defaults(kwargs)
    kwargs["output_dir"] = config.output_dir
    kwargs.setdefault("seed", config.seed)
    if kwargs.get("remove_unused_columns"):
        raise ConfigError("training.remove_unused_columns: must be false (batches carry dataset ids)")
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"training: {str(err).splitlines()[0]}") from None
