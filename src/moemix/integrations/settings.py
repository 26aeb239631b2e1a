"""The ``mixing:`` settings of an integration, checked with the config's own rules and the dataset names."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from moemix.config import MixingConfig, check_section
from moemix.config.convert import build
from moemix.errors import ConfigError

INTEGRATION_DEFAULTS = {"source": "online"}
"""Where an integration's defaults differ from a config run's: the routing of the training forwards needs no dev
set, so it is the signal unless probe rows are given."""


def mixing_settings(
    settings: MixingConfig | Mapping[str, Any] | None,
    names: Sequence[str],
    where: str = "mixing",
    *,
    policies: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
) -> MixingConfig:
    """Validate mixing settings for datasets ``names``: the keys and rules of the YAML ``mixing:`` section.

    Args:
        settings: A :class:`~moemix.config.MixingConfig` or a mapping of its keys (policy, eta, c, interval,
            layers, weights, floor, ...); None: the defaults. A mapping's ``source`` defaults to ``online``.
        names: The datasets' names, in order.
        where: The settings' place, as messages name it (``mixing.eta: must be >= 0, got -1``).
        policies: The policies the caller supports (None: all of them).
        sources: The signal sources the caller supports (None: both).

    Returns:
        The validated settings.

    Raises:
        ConfigError: For an unknown key, a value of the wrong type or out of range, weights that do not name
            exactly ``names``, bounds that admit no weights, or a policy or source the caller cannot run.
    """
    if len(names) < 2:
        raise ConfigError(f"datasets: moemix mixes two or more datasets, got {list(names)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"datasets: a dataset is named twice in {list(names)}")

    def place(path: str) -> str:
        return path.replace("mixing", where, 1) if path.startswith("mixing") else f"{where}.{path}"

    if isinstance(settings, MixingConfig):
        mixing = dataclasses.replace(settings)
    else:
        section = dict(settings or {})
        mixing = build(MixingConfig, INTEGRATION_DEFAULTS | section, "mixing", place)
    check_section(mixing, place, "mixing")
    mixing.check_datasets(list(names), place, "mixing")
    if policies is not None and mixing.policy not in policies:
        raise ConfigError(
            f"{where}.policy: {mixing.policy!r} is not available here; choose one of {', '.join(policies)}"
        )
    if sources is not None and mixing.source not in sources:
        raise ConfigError(f"{where}.source: only {' or '.join(sources)} here, got {mixing.source!r}")
    return mixing
