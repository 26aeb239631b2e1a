"""Run several mixing strategies with several seeds on the same data and budget, resumably."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from moemix.config import load_config
from moemix.errors import ConfigError
from moemix.files import write_text_atomic
from moemix.mixing import POLICIES
from moemix.report.summary import markdown, run_row, write_csv


@dataclass(frozen=True)
class Strategy:
    """A policy and the config overrides that make it, e.g. ``dynamic/source=online`` or ``dynamic/eta=5``."""

    label: str
    overrides: tuple[str, ...]


def parse_strategy(spec: str) -> Strategy:
    """``policy[/field=value]...``: the fields are ``mixing.`` config fields.

    Raises:
        ConfigError: for an unknown policy or a malformed field.
    """
    policy, *fields = spec.strip().split("/")
    if policy not in POLICIES:
        raise ConfigError(f"--strategies: unknown policy {policy!r} in {spec!r}; choose from {', '.join(POLICIES)}")
    overrides = [f"--mixing.policy={policy}"]
    for item in fields:
        if "=" not in item:
            raise ConfigError(f"--strategies: {spec!r}: expected field=value after '/', got {item!r}")
        key, value = item.split("=", 1)
        overrides.append(f"--mixing.{key}={value}")
    return Strategy(label=spec.strip().replace("/", "_").replace("=", "-"), overrides=tuple(overrides))


def compare(
    config_path: str | Path,
    strategies: list[str],
    seeds: list[int],
    out: str | Path,
    overrides: list[str] | None = None,
) -> list[dict]:
    """Train every strategy with every seed; skip runs that already finished; write the summaries.

    Each run lives in ``OUT/<strategy>-seed<seed>``. ``refloss`` without ``mixing.reference`` takes its
    reference losses from the finished uniform run of the same seed, so list ``uniform`` before it.

    Returns:
        The summary rows, one per run.
    """
    from moemix.train.run import run_training

    out = Path(out)
    parsed = [parse_strategy(s) for s in strategies]
    labels = [p.label for p in parsed]
    if len(set(labels)) != len(labels):
        raise ConfigError("--strategies: a strategy is listed twice")
    rows = []
    jobs = [(s, seed) for seed in seeds for s in parsed]
    for strategy, seed in tqdm(jobs, desc="compare", unit="run", disable=None):
        run_dir = out / f"{strategy.label}-seed{seed}"
        metrics_path = run_dir / "metrics.json"
        if not metrics_path.is_file():  # finished runs are skipped: the comparison resumes
            extra = list(strategy.overrides) + [f"--seed={seed}", f"--output_dir={run_dir}", "--model.seed", str(seed)]
            if strategy.overrides[0] == "--mixing.policy=refloss" and not any(
                "mixing.reference" in o for o in strategy.overrides
            ):
                extra.append(f"--mixing.reference={out / f'uniform-seed{seed}'}")
            config = load_config(config_path, list(overrides or []) + extra)
            tqdm.write(f"[moemix compare] {strategy.label} seed {seed} -> {run_dir}")
            run_training(config)
        metrics = json.loads(metrics_path.read_text())
        rows.append(run_row(strategy.label, seed, str(run_dir), metrics))
    write_csv(out / "summary.csv", rows)
    write_text_atomic(out / "summary.md", markdown(rows))
    return rows
