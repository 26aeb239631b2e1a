"""Mixture state in every checkpoint, and exact resume.

Beside each Hugging Face ``checkpoint-N`` folder moemix writes ``moemix_state.json`` (temporary file, fsync,
rename) after the Trainer has finished writing the checkpoint, so its presence marks a complete checkpoint:
``--resume_from_checkpoint true`` takes the newest complete one, never a half-written folder.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from moemix.config import Config
from moemix.data.feed import MixtureFeed
from moemix.errors import MoemixError
from moemix.files import append_jsonl, read_jsonl, write_json_atomic

STATE_FILE = "moemix_state.json"
STATE_VERSION = 1
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def fingerprint(config: Config) -> dict[str, Any]:
    """What must not change on resume: the datasets, the sampler and data seeds and the mixing config."""
    return {
        "datasets": [dataclasses.asdict(ds) for ds in config.datasets],
        "seed": config.seed,
        "data_seed": config.data_seed,  # held-out dev splits, and so the training splits, follow it
        "mixing": dataclasses.asdict(config.mixing),
    }


def changes(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between two fingerprints, e.g. ``mixing.eta: 10.0 -> 5.0``."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += changes(a, b, f"{path}.")
        elif a != b:
            out.append(f"{path}: {json.dumps(a)} -> {json.dumps(b)}")
    return out


def _checkpoints(output_dir: str | Path, complete: bool) -> list[Path]:
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = _CHECKPOINT.match(path.name)
        if match and path.is_dir() and (path / STATE_FILE).is_file() == complete:
            found.append((int(match.group(1)), path))
    return [p for _, p in sorted(found)]


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """``checkpoint-N`` folders that hold a moemix state file, oldest first."""
    return _checkpoints(output_dir, complete=True)


def incomplete_checkpoints(output_dir: str | Path) -> list[Path]:
    """``checkpoint-N`` folders without a moemix state file: a run died while writing them (oldest first)."""
    return _checkpoints(output_dir, complete=False)


def resolve_resume(value: Any, output_dir: str | Path) -> Path | None:
    """The checkpoint to resume from: ``true`` means the newest complete one in ``output_dir``.

    Raises:
        MoemixError: if there is none, or the given folder is not a complete moemix checkpoint.
    """
    if value in (None, False, "false", ""):
        return None
    if value is True or value == "true":
        found = complete_checkpoints(output_dir)
        if not found:
            raise MoemixError(f"--resume_from_checkpoint true: no complete checkpoint in {output_dir}")
        return found[-1]
    path = Path(value)
    if not (path / STATE_FILE).is_file():
        raise MoemixError(f"--resume_from_checkpoint {path}: not a complete moemix checkpoint (no {STATE_FILE})")
    return path


_STATE_KEYS = ("step", "fingerprint", "names", "sampler", "history")
"""What every moemix state file holds (the rest depends on the policy and the signals)."""


def load_state(checkpoint: Path) -> dict[str, Any]:
    """Read a checkpoint's moemix state.

    Raises:
        MoemixError: For a state file that is not JSON or lacks what a state holds (edited or damaged by hand:
            moemix writes it atomically).
    """
    path = checkpoint / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MoemixError(f"{path}: not a moemix state file (not valid JSON: {err})") from None
    missing = [key for key in _STATE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise MoemixError(f"{path}: not a moemix state file (no {', '.join(missing)})")
    return state


def check_unchanged(checkpoint: Path, state: dict[str, Any], current: dict[str, Any], allow_change: bool) -> list[str]:
    """The changes of the mixture since a checkpoint; an error when there are any and they are not allowed.

    Args:
        checkpoint: The checkpoint folder, for the message.
        state: Its state (:func:`load_state`).
        current: :func:`fingerprint` of the config resuming it.
        allow_change: The config's ``allow_mixture_change``.

    Raises:
        MoemixError: If the mixture changed and ``allow_change`` is false.
    """
    changed = changes(state["fingerprint"], current)
    if changed and not allow_change:
        raise MoemixError(
            f"{checkpoint}: the mixture changed since this checkpoint ({'; '.join(changed)}); "
            "pass --allow_mixture_change to resume anyway"
        )
    return changed


def truncate_log(path: Path, last_step: int) -> None:
    """Keep only the records up to ``last_step`` (what the checkpoint had seen); rewrite atomically."""
    if not path.is_file():
        return
    kept = [r for r in read_jsonl(path) if r["step"] <= last_step]
    tmp = path.with_name(f".{path.name}.resume")
    tmp.unlink(missing_ok=True)
    for record in kept:
        append_jsonl(tmp, record)
    if kept:
        tmp.replace(path)
    else:
        path.unlink()


def restart_log(path: Path, resumed_step: int | None) -> None:
    """A log of the run's updates as it must stand at the start: gone for a fresh run, cut back to the
    checkpoint's step for a resumed one (what followed it will be written again)."""
    if resumed_step is None:
        path.unlink(missing_ok=True)
    else:
        truncate_log(path, resumed_step)


class CheckpointCallback(TrainerCallback):
    """Writes the mixture state beside every checkpoint and, if asked, each step's draws to a log.

    Args:
        state_fn: returns the JSON state to save (policy, sampler, history, ...).
        feed: the run's feed; its recorded draws are flushed to ``draw_log`` at every step end.
        draw_log: ``RUN/draws.jsonl`` (``draws.rank{r}.jsonl`` on rank r > 0 of a multi-process run).
    """

    def __init__(self, state_fn, feed: MixtureFeed, draw_log: Path | None = None):
        self.state_fn = state_fn
        self.feed = feed
        self.draw_log = draw_log

    def on_step_end(self, args, state, control, **kwargs):
        if self.draw_log is not None and self.feed.steps:
            for record in self.feed.steps:
                append_jsonl(self.draw_log, {"step": state.global_step, "rank": self.feed.rank, **record})
            self.feed.steps.clear()
        return control

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            write_json_atomic(
                folder / STATE_FILE, {"version": STATE_VERSION, "step": state.global_step} | self.state_fn()
            )
        return control
