"""Hugging Face ``TrainingArguments`` from a loaded config: built and checked before any data or model loads."""

from __future__ import annotations

from transformers import TrainingArguments

from moemix.config import Config, where_set
from moemix.errors import ConfigError
from moemix.extras import check_training_extras
from moemix.train.launch import launch_defaults

# What moemix sets unless the config says otherwise: batches carry dataset ids (keep the columns), and
# nothing is reported to an online service by default (runs must work offline).
TRAINING_DEFAULTS = {"remove_unused_columns": False, "report_to": "none", "save_strategy": "no"}


def training_arguments(config: Config) -> TrainingArguments:
    """The run's ``TrainingArguments``: the config's ``training`` section over moemix's defaults.

    Checks first that the packages the settings need are installed (report_to backends, DeepSpeed, peft), so
    that a missing one stops the run before anything loads.

    Args:
        config: A loaded config (its values already converted to ``TrainingArguments``' field types).

    Returns:
        The arguments, with ``output_dir`` and ``seed`` from the config and the launch's device defaults
        (see :func:`moemix.train.launch.launch_defaults`).

    Raises:
        ConfigError: For a missing optional package or a combination ``TrainingArguments`` rejects, naming the
            field and where it was set.
    """
    check_training_extras(config.training, config.model.lora is not None, lambda path: where_set(config, path))
    kwargs = TRAINING_DEFAULTS | dict(config.training)
    kwargs.pop("resume_from_checkpoint", None)  # moemix resolves it (see checkpoint.resolve_resume)
    kwargs |= launch_defaults(kwargs)
    kwargs["output_dir"] = config.output_dir
    kwargs.setdefault("seed", config.seed)
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError, ImportError) as err:
        message = " ".join(str(err).split()) or type(err).__name__  # one line: the CLI prints it as it is
        # Name the field the message is about, with where it was set, when the message names one of ours.
        named = [key for key in config.training if key in message]
        place = where_set(config, f"training.{max(named, key=len)}") if named else where_set(config, "training")
        raise ConfigError(f"{place}: {message}") from None
