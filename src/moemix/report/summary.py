"""Summaries of a comparison: one CSV row per run, a Markdown table of means, spreads and paired differences."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

import numpy as np

from moemix.files import write_text_atomic
from moemix.report.stats import BOOTSTRAP_FROM, CONFIDENCE, POWER, PairedDifference, format_interval, paired_difference

BASELINE = "uniform"


def run_row(strategy: str, seed: int, run_dir: str, metrics: dict) -> dict[str, object]:
    """The summary.csv row of one finished run, read from its metrics."""
    names = list(metrics["weights"])
    row: dict[str, object] = {"strategy": strategy, "seed": seed}
    for name in names:
        row[f"dev_loss/{name}"] = metrics[f"eval/{name}/loss"]
    row["dev_loss/mean"] = metrics["eval/mean_loss"]
    for name in names:
        row[f"tokens/{name}"] = metrics["tokens_seen"][name]
    for name in names:
        row[f"weight/{name}"] = metrics["weights"][name]
    row["steps"] = metrics["global_step"]
    row["wall_time_s"] = metrics["wall_time_s"]
    row["run_dir"] = run_dir
    return row


def write_csv(path, rows: list[dict[str, object]]) -> None:
    """Write rows (same keys) as CSV, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def mean_sd(values: list[float], digits: int = 4) -> str:
    """``"mean ± sd"`` over seeds (sample sd); the mean alone for one value, ``""`` for none."""
    if not values:
        return ""
    mean = float(np.mean(values))
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if not math.isnan(sd) else f"{mean:.{digits}f}"


def paired_to_baseline(
    rows: list[dict[str, object]], strategy: str, key: str = "dev_loss/mean", baseline: str = BASELINE
) -> PairedDifference:
    """The per-seed difference of ``strategy``'s ``key`` to ``baseline``'s on the same seed, summarised.

    Args:
        rows: Summary rows (:func:`run_row`), any strategies and seeds.
        strategy: The strategy compared.
        key: The row's column, e.g. ``"dev_loss/math"``.
        baseline: The strategy compared against.

    Returns:
        The summary over the seeds that have both runs, in seed order.
    """
    base = {int(r["seed"]): float(r[key]) for r in rows if r["strategy"] == baseline}
    runs = {int(r["seed"]): float(r[key]) for r in rows if r["strategy"] == strategy and int(r["seed"]) in base}
    return paired_difference([runs[seed] - base[seed] for seed in sorted(runs)])


def _verdict(diff: PairedDifference) -> str:
    """``yes: lower`` / ``yes: higher`` when the t-interval excludes 0, ``no`` when it holds 0."""
    if diff.n < 2:
        return "-"
    if not diff.excludes_zero:
        return "no"
    return "yes: lower" if diff.high < 0 else "yes: higher"


def markdown(rows: list[dict[str, object]]) -> str:
    """Per strategy: mean ± sd over seeds of each dev loss; the paired difference to uniform (same seed) with
    its 95% intervals, whether they exclude 0, and the smallest difference the seeds could have detected."""
    loss_keys = [k for k in rows[0] if str(k).startswith("dev_loss/")]
    by_strategy: dict[str, dict[int, dict]] = defaultdict(dict)
    for row in rows:
        by_strategy[str(row["strategy"])][int(row["seed"])] = row
    lines = [
        "Mean ± standard deviation over seeds (n = seeds). Lower dev loss is better. "
        f"'vs {BASELINE}' is the per-seed difference to {BASELINE} on the mean dev loss (same seed: same data "
        f"order and dev examples; negative = better than {BASELINE}): its mean ± sd, its {CONFIDENCE:.0%} "
        f"t-interval and percentile bootstrap interval (from {BOOTSTRAP_FROM} seeds), whether the t-interval "
        f"excludes 0, and 'detectable': the smallest true difference these seeds would find with "
        f"{POWER:.0%} probability (two-sided paired t-test at {1 - CONFIDENCE:.0%}).",
        "",
        "| strategy | seeds | "
        + " | ".join(k.split("/", 1)[1] for k in loss_keys)
        + f" | vs {BASELINE} | {CONFIDENCE:.0%} CI (t) | {CONFIDENCE:.0%} CI (bootstrap) | excludes 0 | detectable"
        f" | vs {BASELINE}, per seed | wall time s |",
        "|---|---:|" + "---:|" * len(loss_keys) + "---:|---:|---:|---|---:|---|---:|",
    ]
    base = by_strategy.get(BASELINE, {})
    for strategy, runs in by_strategy.items():
        cells = [mean_sd([float(r[k]) for r in runs.values()]) for k in loss_keys]
        paired = {s: float(runs[s]["dev_loss/mean"]) - float(base[s]["dev_loss/mean"]) for s in runs if s in base}
        if strategy == BASELINE or not paired:
            tail = ["-"] * 6
        else:
            diff = paired_difference([paired[s] for s in sorted(paired)])
            tail = [
                mean_sd(list(paired.values())),
                format_interval(diff.low, diff.high),
                format_interval(diff.boot_low, diff.boot_high),
                _verdict(diff),
                "-" if math.isnan(diff.detectable) else f"{diff.detectable:.4f}",
                ", ".join(f"{s}: {d:+.4f}" for s, d in sorted(paired.items())),
            ]
        wall = mean_sd([float(r["wall_time_s"]) for r in runs.values()])
        lines.append(f"| {strategy} | {len(runs)} | " + " | ".join(cells + tail) + f" | {wall} |")
    token_keys = [k for k in rows[0] if str(k).startswith("tokens/")]
    lines += [
        "",
        "Tokens seen per dataset (mean over seeds):",
        "",
        "| strategy | " + " | ".join(k.split("/", 1)[1] for k in token_keys) + " |",
        "|---|" + "---:|" * len(token_keys),
    ]
    for strategy, runs in by_strategy.items():
        cells = [f"{np.mean([float(r[k]) for r in runs.values()]):,.0f}" for k in token_keys]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
