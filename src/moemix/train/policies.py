"""Build the configured mixing policy from the config and the loaded data (sizes, references, embeddings)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from moemix.config import Config
from moemix.data.load import TokenizedSplit
from moemix.errors import ConfigError
from moemix.mixing import MixingPolicy, from_state

logger = logging.getLogger(__name__)


def _weights_from(path: str, names: list[str], what: str) -> list[float]:
    """Weights by name from a JSON file ``{name: w}`` or a run folder (its final weights)."""
    source = Path(path)
    file = source / "metrics.json" if source.is_dir() else source
    if not file.is_file():
        raise ConfigError(f"mixing.{what}: {path}: no such file or run folder")
    data = json.loads(file.read_text())
    data = data.get("weights", data) if source.is_dir() else data
    missing = [n for n in names if n not in data]
    if missing:
        raise ConfigError(f"mixing.{what}: {file}: no weight for dataset(s) {', '.join(missing)}")
    return [float(data[n]) for n in names]


def reference_losses(path: str, names: list[str]) -> list[float]:
    """Reference dev losses: a JSON file ``{name: loss}`` or a finished run folder (its final dev losses)."""
    source = Path(path)
    if source.is_dir():
        file = source / "metrics.json"
        if not file.is_file():
            raise ConfigError(f"mixing.reference: {path}: not a finished run (no metrics.json)")
        metrics = json.loads(file.read_text())
        missing = [n for n in names if f"eval/{n}/loss" not in metrics]
        if missing:
            raise ConfigError(f"mixing.reference: {file}: no dev loss for dataset(s) {', '.join(missing)}")
        return [float(metrics[f"eval/{n}/loss"]) for n in names]
    if not source.is_file():
        raise ConfigError(f"mixing.reference: {path}: no such file or run folder")
    data = json.loads(source.read_text())
    missing = [n for n in names if n not in data]
    if missing:
        raise ConfigError(f"mixing.reference: {path}: no reference loss for dataset(s) {', '.join(missing)}")
    return [float(data[n]) for n in names]


def build_policy(config: Config, names: list[str], train_splits: list[TokenizedSplit], tokenizer, max_steps: int) -> MixingPolicy:
    """The policy named by ``mixing.policy``, with what it needs taken from the config and the data."""
    m = config.mixing
    weights = None if m.weights is None else [m.weights[name] for name in names]
    name = m.policy
    if name in ("dynamic", "embedding") and len(names) == 2 and m.criterion == "mean":
        # D_1 = D_2 = d_12 / 2: the update only smooths towards uniform; say so instead of training on silently.
        logger.warning("mixing.policy %s with two datasets: both are equally far from the other, so the weights "
                       "can only move towards uniform (by mixing.c)", name)
    if name == "dynamic":
        state = {"eta": m.eta, "c": m.c, "weights": weights, "distance": m.distance, "criterion": m.criterion}
    elif name == "static":
        state = {"weights": weights if weights is not None else _weights_from(m.weights_file, names, "weights_file")}
    elif name == "datasize":
        sizes = [s.num_tokens if m.datasize_by == "tokens" else len(s) for s in train_splits]
        state = {"sizes": sizes, "by": m.datasize_by}
    elif name == "random":
        state = {"seed": config.seed}
    elif name == "sequential":
        # windows that train: the stretch before the first update, then one per update before the last step.
        state = {"windows": -(-max_steps // m.interval) if max_steps > 0 else len(names)}
    elif name == "refloss":
        state = {"reference": reference_losses(m.reference, names), "eta": m.eta, "c": m.c}
    elif name == "odm":
        state = {"alpha": m.odm_alpha}
    elif name == "embedding":
        from moemix.models.embeddings import dataset_embeddings

        texts = [
            [tokenizer.decode(ids.tolist(), skip_special_tokens=True) for ids in split.input_ids[: m.embedding_examples]]
            for split in train_splits
        ]
        vectors = dataset_embeddings(texts)
        state = {"vectors": vectors.tolist(), "eta": m.eta, "c": m.c, "distance": m.distance, "criterion": m.criterion}
    else:  # uniform, cycle
        state = {}
    return from_state({"name": name} | state)
