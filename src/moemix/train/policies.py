"""Build the configured mixing policy from the config and the loaded data (sizes, references, embeddings).

Every knob a policy shares by name with :class:`moemix.config.MixingConfig` (``eta``, ``c``, ``distance``, ...)
is taken from the config, so a knob added to both is wired with nothing else to write; what a policy needs
from the data or from files is resolved here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from moemix.config import Config, MixingConfig
from moemix.errors import ConfigError
from moemix.mixing import POLICIES, MixingPolicy, from_state

logger = logging.getLogger(__name__)

# Policy fields whose config namesake is where the value comes from (a dict by name, a file), not the value.
_RESOLVED = frozenset({"weights", "reference"})
# Policy fields named apart from their config setting.
_RENAMED = {"odm": {"alpha": "odm_alpha"}, "datasize": {"by": "datasize_by"}}


def policy_knobs(mixing: MixingConfig) -> dict:
    """The settings of ``mixing.policy`` that come straight from the config, by the policy's field names."""
    cls = POLICIES[mixing.policy]
    settings = {f.name for f in dataclasses.fields(MixingConfig)}
    renamed = _RENAMED.get(mixing.policy, {})
    knobs = {}
    for f in dataclasses.fields(cls):
        source = renamed.get(f.name, f.name)
        if f.init and source in settings and f.name not in _RESOLVED:
            knobs[f.name] = getattr(mixing, source)
    return knobs


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


def _from_files(mixing: MixingConfig, names: list[str]) -> dict:
    """What a policy reads from the config's weights and files (no data or model needed)."""
    weights = None if mixing.weights is None else [mixing.weights[name] for name in names]
    if mixing.policy == "dynamic":
        return {"weights": weights}
    if mixing.policy == "static":
        return {
            "weights": weights if weights is not None else _weights_from(mixing.weights_file, names, "weights_file")
        }
    if mixing.policy == "refloss":
        return {"reference": reference_losses(mixing.reference, names)}
    return {}


def replay_policy(mixing: MixingConfig, names: list[str]) -> MixingPolicy:
    """The policy of a ``mixing`` section for a replay on logged signals (``moemix replay``).

    Raises:
        ConfigError: For a policy that reads no logged signal (its weights follow from the data or a schedule,
            nothing to replay) or that needs the model (``embedding``).
    """
    cls = POLICIES[mixing.policy]
    if not cls.needs:
        replayable = ", ".join(name for name, c in POLICIES.items() if c.needs)
        raise ConfigError(f"--policy: {mixing.policy} reads no logged signal, nothing to replay; choose {replayable}")
    return from_state({"name": mixing.policy} | policy_knobs(mixing) | _from_files(mixing, names))


def build_policy(config: Config, names: list[str], train_splits: list, tokenizer, max_steps: int) -> MixingPolicy:
    """The policy named by ``mixing.policy``, with what it needs taken from the config and the data.

    Args:
        config: The run's config.
        names: The datasets' names, in config order.
        train_splits: The tokenised training splits (``moemix.data.load.TokenizedSplit``), for sizes and texts.
        tokenizer: Decodes training examples for the ``embedding`` policy.
        max_steps: The run's optimizer steps, for the ``sequential`` policy's windows.
    """
    m = config.mixing
    texts = None
    if m.policy == "embedding":
        texts = [
            [
                tokenizer.decode(ids.tolist(), skip_special_tokens=True)
                for ids in split.input_ids[: m.embedding_examples]
            ]
            for split in train_splits
        ]
    return mixing_policy(
        m,
        names,
        sizes=[len(s) for s in train_splits],
        token_sizes=[s.num_tokens for s in train_splits],
        seed=config.seed,
        max_steps=max_steps,
        texts=texts,
    )


def mixing_policy(
    m: MixingConfig,
    names: list[str],
    *,
    sizes: list[int],
    token_sizes: list[int],
    seed: int,
    max_steps: int,
    texts: list[list[str]] | None = None,
) -> MixingPolicy:
    """The policy of a ``mixing`` section, given what it needs from the data: the run's and the integrations'.

    Args:
        m: The mixing settings.
        names: The datasets' names, in sampler order.
        sizes: Training examples (rows) of each dataset (``datasize`` by examples).
        token_sizes: Training tokens of each dataset (``datasize`` by tokens).
        seed: The sampler's seed (the ``random`` policy's too).
        max_steps: The run's optimizer steps, for the ``sequential`` policy's windows (<= 0: unknown).
        texts: Training texts of each dataset, for the ``embedding`` policy.

    Raises:
        ConfigError: For ``embedding`` without texts.
    """
    name = m.policy
    if name in ("dynamic", "embedding") and len(names) == 2 and m.criterion == "mean":
        # D_1 = D_2 = d_12 / 2: the update only smooths towards uniform; say so instead of training on silently.
        logger.warning(
            "mixing.policy %s with two datasets: both are equally far from the other, so the weights "
            "can only move towards uniform (by mixing.c)",
            name,
        )
    state = policy_knobs(m) | _from_files(m, names)
    if name == "datasize":
        state["sizes"] = list(token_sizes if m.datasize_by == "tokens" else sizes)
    elif name == "random":
        state["seed"] = seed
    elif name == "sequential":
        # windows that train: the stretch before the first update, then one per update before the last step.
        state["windows"] = -(-max_steps // m.interval) if max_steps > 0 else len(names)
    elif name == "embedding":
        if texts is None:
            raise ConfigError("mixing.policy: embedding needs the training texts of each dataset")
        from moemix.models.embeddings import dataset_embeddings

        state["vectors"] = dataset_embeddings(texts).tolist()
    return from_state({"name": name} | state)
