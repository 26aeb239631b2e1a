"""What loading a dataset found: counts, token-length statistics and problems, and the text report of them.

A problem is fatal (the record breaks a rule of its format or file type) or a warning (the record is valid but
truncation at ``max_length`` removed every assistant token, so it cannot be trained on). Strict loading stops
at fatal problems; ``skip_invalid`` skips and counts them. Warnings never stop a run: such examples are dropped
and counted, and only a split left without any example is an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from moemix.errors import DataError

TRUNCATED_AWAY = "truncated away"
"""The kind of the one non-fatal problem."""
MAX_LISTED = 20
"""Problems kept per split for the report (all are counted)."""


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
        return self.kind != TRUNCATED_AWAY


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

    def add_problem(self, problem: Problem) -> None:
        """Count a problem, and keep it if fewer than :data:`MAX_LISTED` are kept."""
        self.problem_counts[problem.kind] = self.problem_counts.get(problem.kind, 0) + 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)

    @property
    def invalid(self) -> int:
        """Records skipped because they break a rule (fatal problems)."""
        return sum(n for kind, n in self.problem_counts.items() if kind != TRUNCATED_AWAY)

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

    @property
    def fatal_problems(self) -> int:
        return self.train.invalid + self.dev.invalid

    def first_fatal(self) -> Problem | None:
        """The first fatal problem listed, train split first."""
        return next((p for s in (self.train, self.dev) for p in s.problems if p.fatal), None)

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
    """Raise if a strict dataset has invalid records.

    Args:
        reports: one per dataset.
        strict: the names of the strict datasets.

    Raises:
        DataError: naming the datasets, the count and the first problem's place and rule.
    """
    failing = [r for r in reports if r.fatal_problems and r.name in strict]
    if failing:
        first = failing[0].first_fatal()
        raise DataError(
            f"{sum(r.fatal_problems for r in failing)} invalid record(s) in strict dataset(s) "
            f"{', '.join(r.name for r in failing)}; first: {first.message}; fix them or set skip_invalid: true"
        )


def format_report(reports: list[DatasetReport], max_length: int, strict: set[str], listed: int = 10) -> str:
    """The text ``moemix data validate`` prints: a table of counts and lengths, then the problems.

    Args:
        reports: one per dataset, in config order.
        max_length: the truncation length, for the header.
        strict: the names of the datasets whose invalid records stop training (decides the verdict line).
        listed: problems printed per split.
    """
    header = ("dataset", "split", "records", "kept", "invalid", "trunc. away", "truncated", "tokens", "learnt",
              "len mean", "p50", "p95", "max")
    rows = [header]
    for r in reports:
        for split_name, s in (("train", r.train), ("dev", r.dev)):
            length = s.length or {}
            rows.append((
                r.name, split_name, f"{s.records:,}", f"{s.examples:,}", f"{s.invalid:,}", f"{s.truncated_away:,}",
                f"{s.truncated:,}", f"{s.tokens:,}", f"{s.label_tokens / max(s.tokens, 1):.0%}",
                f"{length.get('mean', 0):.0f}", f"{length.get('p50', 0):.0f}", f"{length.get('p95', 0):.0f}",
                f"{length.get('max', 0):,}",
            ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(0, f"max_length {max_length}; token lengths are before truncation; 'learnt' = assistant tokens / tokens")
    for r in reports:
        lines.append("")
        cached = " (tokenised splits read from the cache)" if r.from_cache else ""
        lines.append(f"{r.name}: train: {', '.join(r.sources)}; dev: {', '.join(r.dev_sources)}{cached}")
        for split_name, s in (("train", r.train), ("dev", r.dev)):
            if not s.problem_counts:
                continue
            lines.append(f"  {split_name} problems: {problem_summary(s.problem_counts)}")
            for p in s.problems[:listed]:
                lines.append(f"    {p.message}")
            more = sum(s.problem_counts.values()) - min(listed, len(s.problems))
            if more > 0:
                lines.append(f"    ... and {more} more")
    failing = sum(r.fatal_problems for r in reports if r.name in strict)
    skipped = sum(r.fatal_problems for r in reports if r.name not in strict)
    lines.append("")
    if failing:
        lines.append(f"FAILED: {failing} invalid record(s) in strict datasets; fix them, or set skip_invalid: true")
    elif skipped:
        lines.append(f"OK: {skipped} invalid record(s) will be skipped and counted (skip_invalid: true)")
    else:
        lines.append("OK: no invalid record")
    return "\n".join(lines)
