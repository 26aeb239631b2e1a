"""Command-line flags: derived from the config dataclasses, parsed strictly, typos answered with the closest flag.

A subcommand whose options are settings (``moemix upcycle``: :class:`moemix.config.UpcycleConfig`; ``moemix
replay``: :class:`moemix.config.MixingConfig`) gets one flag per field, with the field's docstring as help, its
``OneOf`` rule as choices and its default; the values go through the same conversion and rules as a config
file's, so a setting is defined, defaulted and checked in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from moemix.config import Raw, check_section, choices, closest, field_docs
from moemix.config.convert import build, type_name
from moemix.errors import MoemixError

HF_TRAINING_DOCS = "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments"

COMMON_TRAINING = (
    "max_steps",
    "num_train_epochs",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "activation_checkpointing",
    "bf16",
    "use_cpu",
    "logging_steps",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "resume_from_checkpoint",
    "report_to",
    "deepspeed",
)
"""The ``TrainingArguments`` fields ``moemix train --help`` lists; every other field is accepted too."""

_MOEMIX_NOTES = {
    "resume_from_checkpoint": "true: the newest complete checkpoint in output_dir",
    "report_to": "a backend needs its extra, e.g. pip install 'moemix[tensorboard]'",
    "deepspeed": "a DeepSpeed JSON file (configs/deepspeed/); needs pip install 'moemix[deepspeed]'",
}


class UsageError(MoemixError):
    """A command line that breaks the rules of its flags (unknown flag, missing or invalid value)."""


class StrictParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one-line :class:`UsageError` s (printed by ``moemix`` with exit
    status 2) and that takes no abbreviated flags."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        """Raise instead of printing the usage and exiting."""
        raise UsageError(f"{self.prog}: {message}")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's choice check, with the closest choice named for a misspelt one (``moemix trian``)."""
        if action.choices is not None and value not in action.choices:
            near = closest(str(value), [str(choice) for choice in action.choices])
            if near is not None:
                raise argparse.ArgumentError(action, f"invalid choice: {value!r}; did you mean {near}?")
        super()._check_value(action, value)

    def flags(self) -> list[str]:
        """Every ``--flag`` this parser takes."""
        return [s for action in self._actions for s in action.option_strings if s.startswith("--")]


def unknown_flag(flag: str, known: list[str]) -> UsageError:
    """The error for a flag the command does not take, naming the closest one it does."""
    name = flag.split("=", 1)[0]
    near = closest(name, known)
    return UsageError(f"unknown flag {name}" + (f"; did you mean {near}?" if near else f" (flags: {', '.join(known)})"))


def flag_name(field: str) -> str:
    """``top_k`` -> ``--top-k``."""
    return "--" + field.replace("_", "-")


def _help(cls: type, name: str, default: Any) -> str:
    doc = field_docs(cls).get(name, "")
    text = doc.replace("``", "").replace("%", "%%")
    if default is not None and default is not dataclasses.MISSING:
        text += f" (default: {default})"
    return text


def _metavar(hint: Any) -> str:
    return type_name(hint).replace(" | null", "").replace("null | ", "").upper()


def add_setting_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    names: tuple[str, ...],
    defaults_from: str = "",
    narrowed: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Add a flag per named field of config dataclass ``cls``: type, choices, default and help from the field.

    Values are kept as text and converted by :func:`settings_from_flags`, with the config's own rules.

    Args:
        parser: The subcommand's parser.
        cls: A config dataclass (``UpcycleConfig``, ``MixingConfig``, ...).
        names: The fields to expose, in order.
        defaults_from: When not empty, the flags default to this source (e.g. "the run's config") rather than
            the field's default, which the help then names as the fallback.
        narrowed: Choices narrower than the field's own, by field (e.g. the policies a replay can run).
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else None
        text = _help(cls, name, default)
        if defaults_from:
            text = text.replace(" (default: ", f" (default: {defaults_from}, else ", 1) if default is not None else text
        options = (narrowed or {}).get(name) or choices(f)
        parser.add_argument(
            flag_name(name),
            dest=name,
            default=None,
            choices=options,
            metavar=None if options else _metavar(hints[name]),
            help=text,
        )


def settings_from_flags(cls: type, args: argparse.Namespace, names: tuple[str, ...], base: Any = None, base_where=None):
    """Build and check config dataclass ``cls`` from parsed flags over ``base`` (default: the field defaults).

    Args:
        cls: The config dataclass.
        args: The parsed flags (from :func:`add_setting_flags`).
        names: The fields that have flags.
        base: An instance whose values the flags override.
        base_where: Formats the place of a value taken from ``base`` (default: the field path).

    Returns:
        The instance, converted and checked by the config's own rules.

    Raises:
        ConfigError: Naming the flag (or the base's place) and the rule broken.
    """
    data = dataclasses.asdict(base) if base is not None else {}
    given = {name for name in names if getattr(args, name, None) is not None}
    for name in given:
        data[name] = Raw(getattr(args, name))

    def where(path: str) -> str:
        head = path.split(".")[0]
        if head in given:
            return flag_name(head)
        return base_where(path) if base_where is not None else path

    settings = build(cls, data, "", where)
    check_section(settings, where)
    return settings


class TrainingHelp(argparse.Action):
    """``-h/--help`` of ``moemix train``: the usual help plus the common ``TrainingArguments`` fields, read from
    transformers only when asked (importing it takes seconds)."""

    def __init__(
        self,
        option_strings: list[str],
        dest: str = argparse.SUPPRESS,
        default: Any = argparse.SUPPRESS,
        help: str | None = None,
    ) -> None:  # noqa: A002 (argparse's name)
        super().__init__(option_strings, dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001 (argparse's API)
        from moemix.config import training_fields
        from moemix.train.arguments import TRAINING_DEFAULTS

        specs = training_fields()
        group = parser.add_argument_group(
            "training options (Hugging Face TrainingArguments, as --NAME or --training.NAME)",
            f"The common ones; all {len(specs)} TrainingArguments fields are accepted, documented at "
            f"{HF_TRAINING_DOCS}.",
        )
        for name in COMMON_TRAINING:
            spec = specs[name]
            text = spec.help.split(". ")[0].rstrip(".").replace("%%", "%").replace("%", "%%")
            if spec.choices:
                text += f"; one of {', '.join(map(str, spec.choices))}"
            if name in _MOEMIX_NOTES:
                text += f"; {_MOEMIX_NOTES[name]}"
            if name in TRAINING_DEFAULTS:
                text += f" (moemix default: {TRAINING_DEFAULTS[name]})"
            group.add_argument(f"--{name}", metavar="NAME" if spec.choices else _metavar(spec.hint), help=text)
        parser.print_help()
        parser.exit()
