"""The ``datasets:``, ``dev_datasets:`` and ``data:`` sections: what is mixed and how it is read."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from moemix.config.rules import OneOf, Range, Where, join, setting
from moemix.errors import ConfigError

FORMATS = ("auto", "sharegpt", "openai", "alpaca", "prompt_completion")
"""The record formats a dataset may declare (``moemix.data.formats`` reads each)."""
TRUNCATIONS = ("drop", "left", "right")
"""The values of ``DatasetConfig.truncation``."""
CLEAN_UP = ("strip_prefix", "strip_suffix", "remove_regex")
"""The clean-up options of a dataset entry, applied in this order."""
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
    fraction (``0.05``), chosen by a permutation seeded with ``data_seed``; disjoint from what is trained on."""
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
    strip_prefix: dict[str, str | list[str]] = setting(factory=dict)
    """Clean-up before rendering: field of the file (as the file names it, before ``columns`` and
    ``templates``) -> text removed from the start of its value, with the whitespace after it; a list removes
    each in turn. In a field holding turns (``conversations``, ``messages``, ``history``) every turn's text
    is cleaned."""
    strip_suffix: dict[str, str | list[str]] = setting(factory=dict)
    """As ``strip_prefix``, at the end: ``{completion: "<|endoftext|>"}`` removes the literal end-of-text
    marker that ends T0/P3-style completions, and the whitespace before it."""
    remove_regex: dict[str, str | list[str]] = setting(factory=dict)
    """As ``strip_prefix``, for every match of a Python regular expression anywhere in the value, e.g.
    ``{answer: "<<[^>]*>>"}`` drops GSM8K's calculator notes. Applied after the prefixes and suffixes."""
    truncation: str = setting("drop", OneOf(TRUNCATIONS))
    """What an example longer than ``max_length`` loses. ``drop``: its end (an example whose assistant
    tokens all lie beyond ``max_length`` is dropped and counted); ``left``: the oldest context: earlier
    exchanges first, then the start of the last prompt, so that the last answer fits; ``right``: the end
    of the last prompt (its start, usually the instruction, is kept), then earlier exchanges. The prompt keeps
    at least half of ``max_length``; an answer longer than the rest loses its end."""
    each_file: bool = False
    """Make one dataset of every file that ``path`` (one glob pattern or folder) names, with this entry's
    settings; ``name`` is then a pattern in which ``{stem}`` stands for the file's name without its type
    (``name: "{stem}"``, ``name: "t0_{stem}"``; quote it in YAML). Files are taken in sorted order."""

    def check(self, where: Where, prefix: str) -> None:
        """Rules across this entry's fields: known column and template names, one dev split, paths given."""
        for key, names in (("columns", self.columns), ("templates", self.templates)):
            unknown = sorted(set(names) - set(FIELDS))
            if unknown:
                raise ConfigError(
                    f"{where(join(prefix, f'{key}.{unknown[0]}'))}: not a moemix field; use {', '.join(FIELDS)}"
                )
        for name, template in self.templates.items():
            if name in self.columns:
                raise ConfigError(
                    f"{where(join(prefix, f'templates.{name}'))}: also in columns; give a field one source"
                )
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
        for option in CLEAN_UP:
            for name, values in getattr(self, option).items():
                at = where(join(prefix, f"{option}.{name}"))
                values = [values] if isinstance(values, str) else values
                if not values or not all(values):
                    raise ConfigError(f"{at}: must be a non-empty text or a list of them")
                for value in values if option == "remove_regex" else ():
                    try:
                        re.compile(value)
                    except re.error as err:
                        raise ConfigError(f"{at}: not a valid regular expression ({err})") from None
        if self.each_file and prefix.startswith("dev_datasets"):
            raise ConfigError(f"{where(join(prefix, 'each_file'))}: not in a dev set (it follows its training dataset)")
        if self.each_file:
            if not isinstance(self.path, str) or self.path.startswith(("hf:", "builtin:")):
                raise ConfigError(f"{where(join(prefix, 'path'))}: with each_file, must be one glob pattern or folder")
            if self.dev_path is not None:
                raise ConfigError(
                    f"{where(join(prefix, 'dev_path'))}: not with each_file; hold out dev_size from each file, or "
                    "add dev_datasets entries under the datasets' names"
                )
            if "{stem}" not in self.name:
                raise ConfigError(
                    f"{where(join(prefix, 'name'))}: with each_file, a pattern holding {{stem}} (the file's name "
                    f'without its type), e.g. name: "{{stem}}" or "t0_{{stem}}"; got {self.name!r}'
                )


@dataclass
class DataConfig:
    """How data is checked and cached (for every dataset)."""

    skip_invalid: bool = False
    """Skip records that break a rule (malformed line, missing field, roles out of order, ...) and count them
    per dataset, instead of stopping at the first with its file, line and field (strict, the default)."""
    max_record_chars: int = setting(1_000_000, Range(low=1))
    """The characters of text one record may hold (all its fields together); a longer record is invalid (it
    stops a strict run at its file and line, ``skip_invalid`` skips it). Tokenising takes seconds per million
    characters and everything beyond ``max_length`` tokens is cut anyway: a 50 MB record is almost surely a
    broken export, not an example. Raise it for long-context data."""
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
