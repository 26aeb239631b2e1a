"""Mixing policies behind one small interface: initial weights, an update from gate loads, JSON state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from moemix.errors import MixingError
from moemix.mixing.dynamic import check_params, check_weights, dynamic_update


class MixingPolicy(Protocol):
    """What the trainer needs from a policy. Arrays in, arrays out; no torch, no files."""

    name: str

    def initial_weights(self, n: int) -> np.ndarray:
        """Sampling weights before the first update, shape (n,), summing to 1."""

    def update(self, weights: np.ndarray, loads: np.ndarray) -> np.ndarray:
        """New weights from the current ones and the (n, N) expert counts of the last window."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, enough to rebuild the policy with ``from_state``."""


@dataclass
class UniformPolicy:
    """Every dataset drawn with probability 1/n, always (the paper's first baseline)."""

    name: str = field(default="uniform", init=False)

    def initial_weights(self, n: int) -> np.ndarray:
        return np.full(n, 1.0 / n)

    def update(self, weights: np.ndarray, loads: np.ndarray) -> np.ndarray:
        return self.initial_weights(len(weights))

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass
class StaticPolicy:
    """Fixed weights given by the user; updates leave them unchanged."""

    weights: list[float]
    name: str = field(default="static", init=False)

    def __post_init__(self) -> None:
        check_weights(self.weights, what="mixing.weights")

    def initial_weights(self, n: int) -> np.ndarray:
        return check_weights(self.weights, n=n, what="mixing.weights").copy()

    def update(self, weights: np.ndarray, loads: np.ndarray) -> np.ndarray:
        return self.initial_weights(len(weights))

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weights": list(self.weights)}


@dataclass
class DynamicPolicy:
    """The paper's update (see :func:`moemix.mixing.dynamic_update`), uniform start or given weights."""

    eta: float = 10.0
    c: float = 0.05
    weights: list[float] | None = None
    name: str = field(default="dynamic", init=False)

    def __post_init__(self) -> None:
        check_params(self.eta, self.c)
        if self.weights is not None:
            check_weights(self.weights, what="mixing.weights")

    def initial_weights(self, n: int) -> np.ndarray:
        if self.weights is None:
            return np.full(n, 1.0 / n)
        return check_weights(self.weights, n=n, what="mixing.weights").copy()

    def update(self, weights: np.ndarray, loads: np.ndarray) -> np.ndarray:
        return dynamic_update(weights, loads, eta=self.eta, c=self.c)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self) | {"name": self.name}


POLICIES: dict[str, type] = {"uniform": UniformPolicy, "static": StaticPolicy, "dynamic": DynamicPolicy}


def from_state(state: dict[str, Any]) -> MixingPolicy:
    """Rebuild a policy from its ``state_dict`` (or from a config's mixing section with a ``name``)."""
    state = dict(state)
    name = state.pop("name", None)
    if name not in POLICIES:
        raise MixingError(f"mixing.policy: unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    return POLICIES[name](**state)
