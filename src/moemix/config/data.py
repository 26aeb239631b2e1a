"""The ``datasets:``, ``dev_datasets:`` and ``data:`` sections: what is mixed and how it is read."""

from __future__ import annotations

import string
from dataclasses import dataclass

from moemix.config.rules import OneOf, Range, Where, join, setting
from moemix.errors import ConfigError

FORMATS = ("auto", "sharegpt", "openai", "alpaca", "prompt_completion")
"""The record formats a dataset may declare (``moemix.data.formats`` reads each)."""
FIELDS = ("conversations", "messages", "instruction", "input", "output", "system", "history", "prompt", "completion")
"""The names a column map or a template may define."""


def template_fields(template: str) -> list[str]:
    """The field names a template reads (``{name}`` placeholders; ``{{`` and ``}}`` are literal braces).

    Raises:
        ValueError: if the template is not a valid ``str.format`` string or has a positional placeholder.
    """
    names = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is None:
            continue
        if not name or name.isdigit():
            raise ValueError("placeholders must name a field, like {question}")
        names.append(name)
    return names


@dataclass
class DatasetConfig:
    """One instruction dataset of the mixture."""

    name: str
    """Name used in logs, weights and metrics; unique within a config."""
    path: str | list[str]
    """Training data (paths relative to the working directory): a .jsonl, .json (array), .csv, .tsv (each
    optionally .gz) or .parquet file, a folder of such files, a glob pattern, a list of any of these;
    ``hf:owner/name[:subset][@split]`` for a Hugging Face dataset through ``datasets.load_dataset`` (split
    default train); or ``builtin:<domain>`` for the generated demo domains (dialogue, nlp, math, code)."""
    dev_path: str | list[str] | None = None
    """Dev split, in the same format and read the same way as ``path``. Default: ``dev_size`` held out from the
    training data; for ``builtin:`` data without ``dev_size``, the generator's own dev split."""
    dev_size: int | float = 0
    """When ``dev_path`` is not given: the dev split held out from the training data, a count (``200``) or a
    fraction (``0.05``), chosen by a permutation seeded with ``seed``; disjoint from what is trained on."""
    format: str = setting("auto", OneOf(FORMATS))
    """``sharegpt`` (conversations of {from, value}, roles human/gpt/system), ``openai`` (messages of
    {role, content}), ``alpaca`` (instruction, input, output, optional system and history of [user, assistant]
    pairs), ``prompt_completion`` (prompt, completion) or ``auto`` (told apart by the fields present)."""
    columns: dict[str, str] = setting(factory=dict)
    """Map from moemix's field names (conversations, messages, instruction, input, output, system, history,
    prompt, completion) to the file's own, e.g. ``{instruction: question, output: answer}`` for GSM8K."""
    templates: dict[str, str] = setting(factory=dict)
    """Build a moemix field from the file's fields with a ``str.format`` template, e.g.
    ``{output: "{rationale} So the answer is {answer}."}``; ``{{`` and ``}}`` are literal braces."""
    fields: list[str] | None = None
    """Column names of CSV/TSV files without a header row, in order (their first line is then data)."""
    literal_newlines: bool = False
    """The files write line breaks inside a field as the two characters backslash and n (FLAN's TSVs): turn
    each into a newline."""
    skip_invalid: bool | None = None
    """Skip (and count) records that break a rule instead of stopping; default: ``data.skip_invalid``."""
    max_examples: int | None = setting(None, Range(low=1))
    """Train on at most this many examples: the first usable ones, after the dev split is held out."""

    def check(self, where: Where, prefix: str) -> None:
        """Rules across this entry's fields: known column and template names, one dev split, paths given."""
        for key, names in (("columns", self.columns), ("templates", self.templates)):
            unknown = sorted(set(names) - set(FIELDS))
            if unknown:
                raise ConfigError(f"{where(join(prefix, f'{key}.{unknown[0]}'))}: not a moemix field; use {', '.join(FIELDS)}")
        for name, template in self.templates.items():
            if name in self.columns:
                raise ConfigError(f"{where(join(prefix, f'templates.{name}'))}: also in columns; give a field one source")
            try:
                template_fields(template)
            except ValueError as err:
                raise ConfigError(f"{where(join(prefix, f'templates.{name}'))}: not a valid template ({err})") from None
        if self.fields is not None and (not self.fields or len(set(self.fields)) != len(self.fields)):
            raise ConfigError(f"{where(join(prefix, 'fields'))}: must be a non-empty list of distinct column names")
        paths = [self.path] if isinstance(self.path, str) else self.path
        if not paths or not all(paths):
            raise ConfigError(f"{where(join(prefix, 'path'))}: must name at least one file, folder, pattern or id")
        size, place = self.dev_size, where(join(prefix, "dev_size"))
        if isinstance(size, float) and not 0.0 < size < 1.0:
            raise ConfigError(f"{place}: a fraction must be in (0, 1), got {size}; a count is an integer")
        if size < 0:
            raise ConfigError(f"{place}: must be >= 0, got {size}")
        if self.dev_path is not None and size:
            raise ConfigError(f"{place}: give dev_path or dev_size, not both")


@dataclass
class DataConfig:
    """How data is checked and cached (for every dataset)."""

    skip_invalid: bool = False
    """Skip records that break a rule (malformed line, missing field, roles out of order, ...) and count them
    per dataset, instead of stopping at the first with its file, line and field (strict, the default)."""
    cache: bool = True
    """Keep tokenised splits on disk (Arrow) and reuse them while the files, tokenizer, template and
    ``max_length`` stay the same."""
    cache_dir: str | None = None
    """Folder of the tokenisation cache; default ``$MOEMIX_CACHE/datasets`` (``~/.cache/moemix/datasets``)."""
    packing: bool = False
    """Pack each training micro-batch's drawn examples into as few rows of at most ``max_length`` tokens as
    fit, each example attending only to itself (``position_ids`` restart per example): the same draws, the
    same mixture, less padding. For models whose attention reads those restarts as boundaries (Llama,
    Mixtral, Qwen-MoE, OLMoE and most current decoders); dev and probe batches stay unpacked."""
