"""What loading a dataset found: counts, token-length statistics and problems, and the text reports of them.

A problem is fatal (the record breaks a rule of its format or file type, or its answer is nothing but special
tokens) or a warning: truncation at ``max_length`` removed every assistant token (the example is dropped), or
an answer holds the tokenizer's special tokens as text (the example is kept). Strict loading stops at fatal
problems; ``skip_invalid`` skips and counts them. Warnings never stop a run; only a split left without any
example is an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from moemix.errors import DataError

TRUNCATED_AWAY = "truncated away"
"""An example whose assistant tokens all lie beyond ``max_length``: dropped, a warning."""
SPECIAL_IN_TARGET = "special token in target"
"""An answer that holds the tokenizer's special tokens as text: kept, a warning."""
EMPTY_TARGET = "empty target"
"""An answer of nothing but special tokens and whitespace: an invalid record."""
WARNING_KINDS = (TRUNCATED_AWAY, SPECIAL_IN_TARGET)
"""The kinds of problem that never stop a run."""
MAX_LISTED = 20
"""Problems kept per split and kind for the report (all are counted)."""
SMALL_DEV = 20
"""A dev split with fewer examples than this measures dev loss and gate loads on too little: a note says so."""
NOTE_TAGS = {
    "empty split": "a split has no usable example: a run stops there",
    "small dev": f"fewer than {SMALL_DEV} dev examples: dev loss and gate loads rest on few examples",
    "dev lost": "the dev split kept less than half of its records (invalid, or truncated away)",
    "special tokens": "answers hold the tokenizer's special tokens as text (strip_suffix, remove_regex take them out)",
    "clean-up idle": "a clean-up rule changed no record (is the field named as in the file?)",
}
"""The tags of :meth:`DatasetReport.notes` and what each means, for the run's summary table."""


@dataclass
class Problem:
    """One record that could not be used."""

    place: str
    """``file:line`` or ``file[index]``."""
    message: str
    """The whole one-line message, starting with the place."""
    kind: str
    """A short name of the rule broken (``not valid JSON``, ``missing field``, ``role order``, ...)."""

    @property
    def fatal(self) -> bool:
        return self.kind not in WARNING_KINDS


@dataclass
class SplitReport:
    """One split of one dataset: what was read, what was kept, and the token lengths of what was kept."""

    records: int = 0
    """Records read (usable or not)."""
    examples: int = 0
    """Examples kept, tokenised."""
    problem_counts: dict[str, int] = field(default_factory=dict)
    """Problems by kind (every problem, not only the listed ones)."""
    problems: list[Problem] = field(default_factory=list)
    """The first :data:`MAX_LISTED` problems."""
    tokens: int = 0
    """Tokens of the kept examples after truncation."""
    label_tokens: int = 0
    """Of those, the assistant tokens that are learnt."""
    truncated: int = 0
    """Kept examples that truncation shortened."""
    length: dict[str, float] = field(default_factory=dict)
    """Token lengths before truncation: min, mean, p50, p95, max."""
    prompt_cut: int = 0
    """Kept examples whose prompt ``truncation: left|right`` shortened so that the answer fits."""
    cleaned: dict[str, int] = field(default_factory=dict)
    """Records each clean-up rule changed, by ``option.field`` (``strip_suffix.completion``)."""
    keep: int | None = MAX_LISTED
    """Problems kept per kind in :attr:`problems`; None keeps every one (``validate --all-problems``)."""

    def add_problem(self, problem: Problem) -> None:
        """Count a problem, and keep it while fewer than :attr:`keep` of its kind are kept."""
        seen = self.problem_counts.get(problem.kind, 0)
        self.problem_counts[problem.kind] = seen + 1
        if self.keep is None or seen < self.keep:
            self.problems.append(problem)

    @property
    def invalid(self) -> int:
        """Records skipped because they break a rule (fatal problems)."""
        return sum(n for kind, n in self.problem_counts.items() if kind not in WARNING_KINDS)

    @property
    def special_in_target(self) -> int:
        """Kept examples whose answer holds the tokenizer's special tokens as text."""
        return self.problem_counts.get(SPECIAL_IN_TARGET, 0)

    @property
    def lists_all(self) -> bool:
        """Whether :attr:`problems` holds every problem counted."""
        return len(self.problems) == sum(self.problem_counts.values())

    @property
    def truncated_away(self) -> int:
        """Examples dropped because truncation removed all their assistant tokens."""
        return self.problem_counts.get(TRUNCATED_AWAY, 0)

    def set_lengths(self, full_lengths: list[int] | np.ndarray) -> None:
        """Fill :attr:`length` from the untruncated lengths of the kept examples."""
        lengths = np.asarray(full_lengths, dtype=np.int64)
        if lengths.size:
            self.length = {
                "min": int(lengths.min()),
                "mean": float(lengths.mean()),
                "p50": float(np.percentile(lengths, 50)),
                "p95": float(np.percentile(lengths, 95)),
                "max": int(lengths.max()),
            }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitReport:
        data = dict(data)
        data["problems"] = [Problem(**p) for p in data.get("problems", [])]
        return cls(**data)


@dataclass
class DatasetReport:
    """Both splits of one dataset."""

    name: str
    sources: list[str]
    """The files (or ids) of the training split."""
    dev_sources: list[str]
    """The files of the dev split, or ``held out from train (N)``."""
    train: SplitReport = field(default_factory=SplitReport)
    dev: SplitReport = field(default_factory=SplitReport)
    from_cache: bool = False
    """True when the tokenised splits were read from the cache, not tokenised again."""
    hold_out_error: str | None = None
    """Why no dev split could be held out, when the training split's invalid records left too few examples: the
    dev split is left empty so that those records are reported first (never cached: a split is empty)."""

    @property
    def fatal_problems(self) -> int:
        return self.train.invalid + self.dev.invalid

    def relocate(self, sources: list[str], dev_sources: list[str]) -> None:
        """Name the files as they are named now in every problem's place and message.

        A report read from the cache (or kept from an earlier read) was made from files of the same content,
        in the same order (the keys hash content), perhaps at another path: a message must point at the file
        the user gave.
        """
        moves = [(old, new) for old, new in zip(self.sources, sources) if old != new]
        if len(self.dev_sources) == len(dev_sources):
            moves += [(old, new) for old, new in zip(self.dev_sources, dev_sources) if old != new]
        for split in (self.train, self.dev):
            for problem in split.problems:
                for old, new in moves:
                    if problem.place.startswith(old) and problem.place[len(old) : len(old) + 1] in (":", "["):
                        problem.place = new + problem.place[len(old) :]
                        problem.message = (
                            new + problem.message[len(old) :] if problem.message.startswith(old) else problem.message
                        )
                        break
        self.sources, self.dev_sources = list(sources), list(dev_sources)

    def first_fatal(self) -> Problem | None:
        """The first fatal problem listed, train split first."""
        return next((p for s in (self.train, self.dev) for p in s.problems if p.fatal), None)

    def notes(self) -> list[tuple[str, str]]:
        """What a person should look at before trusting a run on this dataset: ``(tag, sentence)`` pairs, the
        tag one of :data:`NOTE_TAGS`."""
        notes = []
        dev = self.dev
        empty = [which for which, s in (("train", self.train), ("dev", dev)) if not s.examples]
        if empty:
            notes.append(("empty split", f"no usable example in {' and '.join(empty)}: a run stops here"))
        elif dev.examples < SMALL_DEV:
            fix = "truncation: left keeps long examples" if dev.truncated_away else "a larger dev split measures better"
            notes.append(
                (
                    "small dev",
                    (
                        f"dev split of {dev.examples} example(s), fewer than {SMALL_DEV}: "
                        f"its dev loss and gate loads rest on few examples ({fix})"
                    ),
                )
            )
        if not empty and dev.examples < dev.records / 2:
            lean = ": what is left leans towards short examples" if dev.truncated_away > dev.invalid else ""
            notes.append(
                (
                    "dev lost",
                    (
                        f"dev split kept {dev.examples} of {dev.records} records ({dev.invalid} invalid, "
                        f"{dev.truncated_away} truncated away){lean}"
                    ),
                )
            )
        special = self.train.special_in_target + dev.special_in_target
        if special:
            notes.append(("special tokens", f"{special} answer(s) hold the tokenizer's special tokens as text"))
        for label in sorted(set(self.train.cleaned) | set(dev.cleaned)):
            if not self.train.cleaned.get(label, 0) + dev.cleaned.get(label, 0):
                notes.append(
                    ("clean-up idle", f"clean-up {label} changed no record (is the field named as in the file?)")
                )
        return notes

    @property
    def notable(self) -> bool:
        """Whether the run's summary should show this dataset: anything skipped, dropped or noted."""
        return bool(self.train.problem_counts or self.dev.problem_counts or self.notes())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sources": self.sources,
            "dev_sources": self.dev_sources,
            "train": self.train.to_dict(),
            "dev": self.dev.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetReport:
        return cls(
            data["name"],
            list(data["sources"]),
            list(data["dev_sources"]),
            SplitReport.from_dict(data["train"]),
            SplitReport.from_dict(data["dev"]),
        )


def problem_summary(counts: dict[str, int]) -> str:
    """``3 not valid JSON, 1 role order`` (most frequent first), or ``none``."""
    if not counts:
        return "none"
    return ", ".join(f"{n} {kind}" for kind, n in Counter(counts).most_common())


def check_reports(reports: list[DatasetReport], strict: set[str]) -> None:
    """Raise if a strict dataset has invalid records, or any dataset a split without examples.

    Args:
        reports: one per dataset.
        strict: the names of the strict datasets.

    Raises:
        DataError: naming the datasets, the count and the first problem's place and rule; or naming the datasets
            left without a usable example in a split.
    """
    failing = [r for r in reports if r.fatal_problems and r.name in strict]
    if failing:
        first = failing[0].first_fatal()
        raise DataError(
            f"{sum(r.fatal_problems for r in failing)} invalid record(s) in strict dataset(s) "
            f"{', '.join(r.name for r in failing)}; first: {first.message}; fix them or set skip_invalid: true"
        )
    empty = _empty(reports)
    if empty:
        raise DataError(f"dataset(s) {', '.join(empty)} left without a usable example in a split; a run stops there")


def _empty(reports: list[DatasetReport]) -> list[str]:
    return [r.name for r in reports if not (r.train.examples and r.dev.examples)]


def _table(rows: list[tuple[str, ...]], align: str) -> list[str]:
    """Aligned columns, ``align`` one ``l`` (left) or ``r`` (right) per column; a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_report(reports: list[DatasetReport], max_length: int, strict: set[str], listed: int | None = 10) -> str:
    """The text ``moemix data validate`` prints: a table of counts and lengths, then clean-up, notes and problems.

    Args:
        reports: one per dataset, in config order.
        max_length: the truncation length, for the header.
        strict: the names of the datasets whose invalid records stop training (decides the verdict line).
        listed: problems printed per split, invalid records first; None prints every one the reports hold.
    """
    rows = [
        (
            "dataset",
            "split",
            "records",
            "kept",
            "invalid",
            "trunc. away",
            "prompt cut",
            "truncated",
            "tokens",
            "learnt",
            "len mean",
            "p50",
            "p95",
            "max",
        )
    ]
    for r in reports:
        for split_name, s in (("train", r.train), ("dev", r.dev)):
            length = s.length or {}
            rows.append(
                (
                    r.name,
                    split_name,
                    f"{s.records:,}",
                    f"{s.examples:,}",
                    f"{s.invalid:,}",
                    f"{s.truncated_away:,}",
                    f"{s.prompt_cut:,}",
                    f"{s.truncated:,}",
                    f"{s.tokens:,}",
                    f"{s.label_tokens / max(s.tokens, 1):.0%}",
                    f"{length.get('mean', 0):.0f}",
                    f"{length.get('p50', 0):.0f}",
                    f"{length.get('p95', 0):.0f}",
                    f"{length.get('max', 0):,}",
                )
            )
    lines = _table(rows, align="ll" + "r" * 12)
    lines.insert(0, f"max_length {max_length}; token lengths before truncation; 'learnt' = assistant tokens / tokens")
    for r in reports:
        lines.append("")
        cached = " (tokenised splits read from the cache)" if r.from_cache else ""
        lines.append(f"{r.name}: train: {', '.join(r.sources)}; dev: {', '.join(r.dev_sources)}{cached}")
        for label in sorted(set(r.train.cleaned) | set(r.dev.cleaned)):
            changed = r.train.cleaned.get(label, 0) + r.dev.cleaned.get(label, 0)
            lines.append(f"  clean-up {label}: changed {changed:,} of {r.train.records + r.dev.records:,} records read")
        for _, note in r.notes():
            lines.append(f"  note: {note}")
        for split_name, s in (("train", r.train), ("dev", r.dev)):
            if not s.problem_counts:
                continue
            lines.append(f"  {split_name} problems: {problem_summary(s.problem_counts)}")
            shown = sorted(s.problems, key=lambda p: not p.fatal)[:listed]  # stable: invalid records first
            lines += [f"    {p.message}" for p in shown]
            more = sum(s.problem_counts.values()) - len(shown)
            if more > 0:
                lines.append(f"    ... and {more} more (moemix data validate --all-problems lists every one)")
    failing = sum(r.fatal_problems for r in reports if r.name in strict)
    skipped = sum(r.fatal_problems for r in reports if r.name not in strict)
    lines.append("")
    empty = _empty(reports)
    if failing:
        lines.append(f"FAILED: {failing} invalid record(s) in strict datasets; fix them, or set skip_invalid: true")
    if empty:
        lines.append(f"FAILED: no usable example in a split of {', '.join(empty)}")
    if not (failing or empty):
        skip = f"{skipped} invalid record(s) will be skipped and counted (skip_invalid: true)"
        lines.append(f"OK: {skip if skipped else 'no invalid record'}")
    return "\n".join(lines)


def summary_table(reports: list[DatasetReport]) -> str:
    """The one table a run prints about its data: a row per dataset (kept, skipped, dropped, cut, noted), then
    what each note's tag means.

    Args:
        reports: one per dataset, in config order.
    """
    rows = [("dataset", "train", "dev", "invalid", "trunc. away", "prompt cut", "notes")]
    tags: list[str] = []
    for r in reports:
        splits = (r.train, r.dev)
        mine = [tag for tag, _ in r.notes()]
        tags += [tag for tag in mine if tag not in tags]
        rows.append(
            (
                r.name,
                f"{r.train.examples:,}",
                f"{r.dev.examples:,}",
                f"{sum(s.invalid for s in splits):,}",
                f"{sum(s.truncated_away for s in splits):,}",
                f"{sum(s.prompt_cut for s in splits):,}",
                ", ".join(mine),
            )
        )
    lines = _table(rows, align="lrrrrrl")
    lines += [f"{tag}: {NOTE_TAGS[tag]}" for tag in tags]
    return "\n".join(lines)
