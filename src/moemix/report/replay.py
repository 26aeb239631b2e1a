"""Re-run a mixing policy on a logged ``mixture.jsonl`` (no model); a run's weights over time.

Replay answers "what would eta = 5 or c = 0.1 have done with these gate loads?" in milliseconds. The loads of
a live run depend on the data the weights chose, so a replay is exact only for the run's own knobs; for other
knobs it shows the policy's reaction to the same signals, not the run that would have followed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moemix.errors import MoemixError
from moemix.files import read_jsonl
from moemix.mixing import Signals, from_state


def _records(log: Path) -> list[dict]:
    if log.is_dir():
        log = log / "mixture.jsonl"
    if not log.is_file():
        raise MoemixError(f"{log}: mixture log not found")
    records = read_jsonl(log)
    if not records:
        raise MoemixError(f"{log}: holds no update")
    return records


def replay(log: str | Path, policy_state: dict, initial: list[float] | None = None) -> list[dict]:
    """Apply a policy to each logged update's signals in turn.

    Args:
        log: a ``mixture.jsonl`` file or the run folder holding it.
        policy_state: the policy, as ``{"name": "dynamic", "eta": 5.0, ...}``.
        initial: starting weights (default: uniform).

    Returns:
        One ``{"step", "weights": {name: w}, "logged": {name: w}}`` per update.
    """
    records = _records(Path(log))
    names = list(records[0]["weights"])
    policy = from_state(policy_state)
    weights = np.asarray(initial, dtype=np.float64) if initial is not None else policy.initial_weights(len(names))
    out = []
    for record in records:
        loads = np.array([record["loads"][n] for n in names]) if "loads" in record else None
        dev = record.get("dev_loss")
        signals = Signals(
            step=record["step"],
            loads=loads,
            dev_loss=None if dev is None else np.array([dev[n] for n in names]),
        )
        weights = policy.update(weights, signals)
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
