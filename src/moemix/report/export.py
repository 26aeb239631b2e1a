"""A finished run's mixture weights in the formats other trainers read: Hugging Face, LLaMA-Factory, Megatron.

What a consumer accepts is stricter than what it prints. ``datasets.interleave_datasets`` (which LLaMA-Factory
calls) hands the probabilities to numpy, which refuses any that do not sum to 1 within about 1.5e-8, and under
``all_exhausted`` refuses a probability of 0; Megatron's ``--data-args-path`` file is split on whitespace and
read as ``weight prefix`` pairs. So every format here writes six-decimal probabilities that sum to exactly
1.000000 (largest remainders get the last units), leaves out datasets of weight 0, and writes the consumer's own
dataset names or file prefixes when a name map is given.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moemix.errors import ConfigError, MoemixError
from moemix.files import write_text_atomic
from moemix.report.export_names import check_consumer_names, parse_name_map
from moemix.report.mixture_log import check_weights, parse_json, read_mixture_log
from moemix.report.replay import time_averaged_weights

EXPORT_FORMATS = ("hf", "llamafactory", "megatron", "megatron-args")
"""``--format`` choices: HF JSON, LLaMA-Factory YAML, Megatron's ``--data-path`` line, a ``--data-args-path`` file."""

DIGITS = 6
"""Decimals of every exported probability; together they sum to exactly 1."""

_EXTENSIONS = {"hf": "json", "llamafactory": "yaml", "megatron": "txt", "megatron-args": "txt"}


@dataclass(frozen=True)
class RunHistory:
    """What a finished run's folder says about its mixture.

    Attributes:
        names: The datasets, in the run's order.
        records: The ``mixture.jsonl`` records (each with ``step`` and ``weights``).
        metrics: ``metrics.json``.
    """

    names: list[str]
    records: list[dict]
    metrics: dict


def read_run(run_dir: str | Path) -> RunHistory:
    """Read and check ``RUN/mixture.jsonl`` and ``RUN/metrics.json`` of a finished run.

    Raises:
        MoemixError: Naming the file (and line) that is missing or malformed.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MoemixError(f"{run_dir}: run folder not found")
    log, metrics_path = run_dir / "mixture.jsonl", run_dir / "metrics.json"
    if not log.is_file():
        raise MoemixError(f"{log}: not found; export-weights needs a moemix run folder")
    if not metrics_path.is_file():
        raise MoemixError(f"{metrics_path}: not found; the run has not finished (export-weights reads finished runs)")
    names, records = read_mixture_log(log)
    metrics = parse_json(metrics_path.read_text(encoding="utf-8", errors="replace"), str(metrics_path))
    if not isinstance(metrics, dict) or not isinstance(metrics.get("global_step", 0), int):
        raise MoemixError(f"{metrics_path}: expected a JSON object with an integer 'global_step'")
    initial = metrics.get("initial_weights")
    if initial is not None:
        if not isinstance(initial, dict) or list(initial) != names:
            raise MoemixError(f"{metrics_path}: 'initial_weights' must name the datasets of mixture.jsonl: {names}")
        check_weights(initial.values(), f"{metrics_path} initial_weights")
    return RunHistory(names, records, metrics)


def _initial(history: RunHistory) -> list[float]:
    initial = history.metrics.get("initial_weights")
    return [initial[n] for n in history.names] if initial else [1.0 / len(history.names)] * len(history.names)


def run_weights(run_dir: str | Path, average: bool = False) -> dict[str, float]:
    """A finished run's final weights, or their average over training steps (each counted for as long as it held)."""
    return _weights(read_run(run_dir), average)


def _weights(history: RunHistory, average: bool) -> dict[str, float]:
    if not average:
        return {n: float(history.records[-1]["weights"][n]) for n in history.names}
    return dict(zip(history.names, map(float, time_averaged_weights(history.records, history.metrics))))


def weight_windows(history: RunHistory) -> list[dict]:
    """The weights in force over each update window: ``{"start_step", "end_step", "weights"}`` in step order.

    The first window holds the initial weights until the first update; each update's weights hold until the next
    update or the run's last step. Windows of no steps are left out.
    """
    end = max(history.metrics.get("global_step", 0), history.records[-1]["step"])
    steps = [0] + [r["step"] for r in history.records] + [end]
    vectors = [dict(zip(history.names, _initial(history)))] + [r["weights"] for r in history.records]
    return [
        {"start_step": start, "end_step": stop, "weights": dict(weights)}
        for start, stop, weights in zip(steps[:-1], steps[1:], vectors)
        if stop > start
    ]


def exact_probabilities(values: list[float], digits: int = DIGITS) -> list[str]:
    """Decimal strings of ``values / sum(values)`` with ``digits`` decimals that sum to exactly 1.

    Each value gets its floor in units of ``10**-digits``; the units left over go to the largest remainders
    (ties: the earlier dataset). A positive value never rounds to 0: it takes a unit from the largest.

    Raises:
        MoemixError: For negative, non-finite or all-zero values.
    """
    array = np.asarray(values, dtype=np.float64)
    check_weights(array.tolist(), "export")
    scale = 10**digits
    if np.count_nonzero(array) > scale:
        raise MoemixError(
            f"export: {np.count_nonzero(array)} datasets cannot all be given {digits}-decimal probabilities"
        )
    exact = array / array.sum() * scale
    units = np.floor(exact).astype(np.int64)
    order = sorted(range(len(array)), key=lambda i: (-(exact[i] - units[i]), i))
    for i in order[: scale - int(units.sum())]:
        units[i] += 1
    for i in np.flatnonzero((units == 0) & (array > 0)):
        units[int(np.argmax(units))] -= 1
        units[i] = 1
    return [f"{u // scale}.{u % scale:0{digits}d}" for u in units.tolist()]


def format_weights(weights: dict[str, float], fmt: str, names: dict[str, str] | None = None) -> str:
    """Static mixture settings for another tool, as the text of its file.

    Args:
        weights: ``{dataset: weight}`` (normalised here); datasets of weight 0 are left out.
        fmt: One of :data:`EXPORT_FORMATS`. ``hf``: JSON for ``datasets.interleave_datasets(...,
            probabilities=...)``; ``llamafactory``: YAML ``dataset``/``mix_strategy``/``interleave_probs``;
            ``megatron``: the ``--data-path`` flag with weights and prefixes; ``megatron-args``: the same weights
            and prefixes alone, one pair a line, for ``--data-args-path``.
        names: moemix dataset name -> the consumer's dataset name or Megatron prefix (see :func:`parse_name_map`).

    Raises:
        MoemixError: For an unknown format or a name map the format cannot use.
    """
    check_format(fmt)
    kept = [n for n in weights if weights[n] > 0]
    consumer = [(names or {}).get(n, n) for n in kept]
    check_consumer_names(fmt, kept, consumer, names or {})
    probs = exact_probabilities([weights[n] for n in kept])
    return _render(fmt, consumer, probs)


def _render(fmt: str, consumer: list[str], probs: list[str]) -> str:
    if fmt == "hf":
        return (
            json.dumps(
                {
                    "datasets": consumer,
                    "probabilities": [float(p) for p in probs],
                    "stopping_strategy": "all_exhausted",
                },
                indent=2,
            )
            + "\n"
        )
    if fmt == "llamafactory":
        import yaml

        # Quoted strings (safe_dump quotes what would read as a number): LLaMA-Factory splits them on commas.
        fields = {"dataset": ",".join(consumer), "mix_strategy": "interleave_over", "interleave_probs": ",".join(probs)}
        return yaml.safe_dump(fields, sort_keys=False, default_style=None, width=1 << 16)
    if fmt == "megatron":
        return "--data-path " + " ".join(f"{p} {n}" for n, p in zip(consumer, probs)) + "\n"
    # megatron-args: Megatron reads the file with split(); weight-prefix pairs only, no flag.
    return "".join(f"{p} {n}\n" for n, p in zip(consumer, probs))


def _stage_fields(fmt: str, text: str) -> dict:
    """A stage of a schedule: the same fields a static export holds, as JSON values."""
    if fmt == "hf":
        parsed = json.loads(text)
        return {"datasets": parsed["datasets"], "probabilities": parsed["probabilities"]}
    if fmt == "llamafactory":
        import yaml

        return yaml.safe_load(text)
    return {"data_path": " ".join(text.split()[1:] if fmt == "megatron" else text.split())}


def format_schedule(history: RunHistory, fmt: str, names: dict[str, str] | None = None) -> str:
    """The weights of each update window as stages, JSON: for training in stages with a tool that mixes statically.

    Adjacent windows whose exported weights are equal are merged into one stage.
    """
    total = max(history.metrics.get("global_step", 0), history.records[-1]["step"], 1)
    stages: list[dict] = []
    for window in weight_windows(history):
        fields = _stage_fields(fmt, format_weights(window["weights"], fmt, names))
        if stages and {k: stages[-1][k] for k in fields} == fields:
            stages[-1]["end_step"] = window["end_step"]
            stages[-1]["end_fraction"] = round(window["end_step"] / total, 6)
            continue
        stages.append(
            {
                "start_step": window["start_step"],
                "end_step": window["end_step"],
                "start_fraction": round(window["start_step"] / total, 6),
                "end_fraction": round(window["end_step"] / total, 6),
                **fields,
            }
        )
    return json.dumps({"format": fmt, "total_steps": total, "stages": stages}, indent=2) + "\n"


def check_format(fmt: str) -> None:
    """Raise a one-line error naming ``--format``, the choices and the closest one, for an unknown format."""
    if fmt not in EXPORT_FORMATS:
        close = difflib.get_close_matches(fmt, EXPORT_FORMATS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"--format: unknown format {fmt!r}{hint}; choose one of {', '.join(EXPORT_FORMATS)}")


def write_export(
    run_dir: str | Path,
    fmt: str,
    average: bool = False,
    out: str | Path | None = None,
    names: str | dict[str, str] | None = None,
    schedule: bool = False,
) -> Path:
    """Write a finished run's weights in a tool's format; returns the path written.

    Every check runs before the one atomic write, so bad input leaves no file behind.

    Args:
        run_dir: The run folder (``mixture.jsonl`` and ``metrics.json``).
        fmt: One of :data:`EXPORT_FORMATS`.
        average: Time-averaged weights instead of the final ones.
        out: The file to write (default ``RUN/weights.<fmt>.<ext>``, or ``RUN/weights.<fmt>.schedule.json``).
        names: A name map: ``{"chat": "my_sharegpt"}``, ``"chat=my_sharegpt,code=..."`` or a YAML/JSON file.
        schedule: Write the weights of every update window (stages) instead of one static mixture.

    Raises:
        MoemixError: For an unknown format, a run folder that is not a finished run, a bad name map or ``--out``.
    """
    check_format(fmt)
    if schedule and average:
        raise ConfigError("--schedule: writes every window's weights; it cannot be combined with --average")
    history = read_run(run_dir)
    mapping = parse_name_map(names, history.names) if names is not None else {}
    if schedule:
        text = format_schedule(history, fmt, mapping)
        default = Path(run_dir) / f"weights.{fmt}.schedule.json"
    else:
        text = format_weights(_weights(history, average), fmt, mapping)
        default = Path(run_dir) / f"weights.{fmt}.{_EXTENSIONS[fmt]}"
    path = Path(out) if out is not None else default
    if path.is_dir():
        raise ConfigError(f"--out: {path} is a folder; give a file path")
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise ConfigError(f"--out: {path}: a parent of it is a file, not a folder")
    try:
        write_text_atomic(path, text)
    except OSError as err:
        raise ConfigError(f"--out: {path}: cannot write ({err.strerror})") from None
    return path


def export_weights(weights: dict[str, float], fmt: str) -> str:
    """Static mixture settings for another tool (:func:`format_weights` without a name map; kept for callers)."""
    return format_weights(weights, fmt)
