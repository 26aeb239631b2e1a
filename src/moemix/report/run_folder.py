"""What the report reads from a run folder: the mixture log, the final metrics and the resolved config.

A run writes ``mixture.jsonl`` (one record per update), ``metrics.json`` (when training ends) and
``run_config.yaml`` (when it starts). The report works from the log alone, so that a run still in progress,
or one trained through a user's own Trainer (no config file), can be plotted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from moemix.errors import MoemixError
from moemix.report.mixture_log import parse_json, read_mixture_log

RUN_CONFIG = "run_config.yaml"  # the name train/run.py writes the resolved config under


@dataclass
class RunFolder:
    """The parsed files of one run folder.

    Attributes:
        path: the run folder.
        records: the updates of ``mixture.jsonl``, in order (at least one).
        metrics: ``metrics.json``; empty while the run has not finished.
        config: ``run_config.yaml`` as plain data; empty when the run left none.
    """

    path: Path
    records: list[dict]
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Dataset names in the order the run mixes them."""
        return list(self.records[0]["weights"])

    @property
    def final_weights(self) -> dict[str, float]:
        """The weights after the last update."""
        return dict(self.records[-1]["weights"])

    @property
    def last_step(self) -> int:
        """The run's last optimizer step: ``global_step`` once finished, else the last update's step."""
        return int(max(self.metrics.get("global_step", 0), self.records[-1]["step"]))


def read_run(run_dir: str | Path) -> RunFolder:
    """Read a run folder.

    Raises:
        MoemixError: if the folder holds no mixture log, or the log holds no update, or a file is not valid.
    """
    run_dir = Path(run_dir)
    log = run_dir / "mixture.jsonl"
    if not log.is_file():
        raise MoemixError(f"{run_dir}: not a moemix run folder (no mixture.jsonl)")
    _, records = read_mixture_log(log)
    metrics_path = run_dir / "metrics.json"
    metrics = (
        parse_json(metrics_path.read_text(encoding="utf-8", errors="replace"), str(metrics_path))
        if metrics_path.is_file()
        else {}
    )
    if not isinstance(metrics, dict):
        raise MoemixError(f"{metrics_path}: expected a JSON object")
    config_path = run_dir / RUN_CONFIG
    config: dict = {}
    if config_path.is_file():
        try:
            config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise MoemixError(f"{config_path}: not valid YAML ({err})") from None
        if not isinstance(config, dict):
            raise MoemixError(f"{config_path}: expected a mapping of config fields")
    return RunFolder(run_dir, records, metrics, config)
