"""Re-run a mixing policy on a logged ``mixture.jsonl`` (no model); a run's weights over time.

Replay answers "what would eta = 5 or c = 0.1 have done with these gate loads?" in milliseconds. The loads of
a live run depend on the data the weights chose, so a replay is exact only for the run's own knobs; for other
knobs it shows the policy's reaction to the same signals, not the run that would have followed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moemix.errors import MoemixError
from moemix.mixing import MixingPolicy, Signals, apply_bounds, from_state
from moemix.mixing.noise import RoutingNoise
from moemix.report.mixture_log import read_mixture_log


def _records(log: Path) -> list[dict]:
    if log.is_dir():
        log = log / "mixture.jsonl"
    if not log.is_file():
        raise MoemixError(f"{log}: mixture log not found")
    return read_mixture_log(log)[1]


def logged_names(log: str | Path) -> list[str]:
    """The dataset names of a run's mixture log (a ``mixture.jsonl`` or its run folder), in config order."""
    return list(_records(Path(log))[0]["weights"])


def _by_name(values: dict | None, names: list[str]) -> np.ndarray | None:
    """A logged per-dataset signal as an array in ``names`` order (None, logged for a dataset not drawn: nan)."""
    if values is None:
        return None
    return np.array([np.nan if values[n] is None else values[n] for n in names], dtype=np.float64)


def replay(
    log: str | Path,
    policy: MixingPolicy | dict,
    initial: list[float] | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> list[dict]:
    """Apply a policy to each logged update's signals in turn, as the run's callback did.

    Any policy that reads logged signals replays: gate loads (``dynamic``, with their logged noise for the
    noise-aware update), dev losses (``refloss``), training losses (``odm``). Updates the run skipped (a
    dataset without a load yet) and, for a policy that reads the noise, updates that logged none leave the
    weights unchanged, as in training; the floor and ceiling bound every update.

    Args:
        log: a ``mixture.jsonl`` file or the run folder holding it.
        policy: the policy, or its state as ``{"name": "dynamic", "eta": 5.0, ...}``.
        initial: starting weights (default: the policy's own).
        bounds: ``(mixing.floor, mixing.ceiling)``.

    Returns:
        One ``{"step", "weights": {name: w}, "logged": {name: w}}`` per update.

    Raises:
        MoemixError: If the log lacks a signal the policy reads.
    """
    records = _records(Path(log))
    names = list(records[0]["weights"])
    policy = from_state(policy) if isinstance(policy, dict) else policy
    unlogged = sorted(s for s in policy.needs if not any(r.get(s) is not None for r in records))
    if unlogged:
        raise MoemixError(
            f"{log}: logs no {unlogged[0]} signal, which policy {policy.name} reads; replay another policy"
        )
    weights = np.asarray(initial, dtype=np.float64) if initial is not None else policy.initial_weights(len(names))
    out = []
    for record in records:
        noise = record.get("noise")
        if not record.get("skipped") and (noise is not None or "noise" not in policy.needs):
            signals = Signals(
                step=record["step"],
                loads=np.array([record["loads"][n] for n in names]) if "loads" in record else None,
                dev_loss=_by_name(record.get("dev_loss"), names),
                train_loss=_by_name(record.get("train_loss"), names),
                noise=None if noise is None else RoutingNoise.from_record(noise),
            )
            weights = apply_bounds(policy.update(weights, signals), *bounds)
        out.append(
            {
                "step": record["step"],
                "weights": {n: float(w) for n, w in zip(names, weights)},
                "logged": record["weights"],
            }
        )
    return out


def initial_weights(metrics: dict, names: list[str]) -> list[float]:
    """The weights a run started from (its metrics), uniform when they were not recorded."""
    initial = metrics.get("initial_weights")
    return [initial[n] for n in names] if initial else [1.0 / len(names)] * len(names)


def time_averaged_weights(records: list[dict], metrics: dict) -> np.ndarray:
    """Each weight vector counted for the steps it held (from its update to the next, or to the run's end)."""
    names = list(records[0]["weights"])
    end = max(metrics.get("global_step", records[-1]["step"]), records[-1]["step"])
    steps = [0] + [r["step"] for r in records] + [end]
    vectors = [initial_weights(metrics, names)] + [[r["weights"][n] for n in names] for r in records]
    durations = np.diff(steps)
    mean = (np.array(vectors) * durations[:, None]).sum(axis=0) / max(durations.sum(), 1)
    return mean / mean.sum()
