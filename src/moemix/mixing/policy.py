"""Mixing policies behind one small interface: initial weights, an update from signals, JSON state.

Pure: arrays in, arrays out; no torch, no files. Each policy's state is a dataclass whose fields round-trip
through JSON (``state_dict`` / ``from_state``), so a policy can be replayed on a logged ``mixture.jsonl``.

The knobs a user sets (``eta``, ``c``, ``distance``, ...) have no defaults and no checks here: they are defined,
defaulted and checked once, in the config's ``mixing:`` section (:class:`moemix.config.MixingConfig`), and
passed in by name (:func:`moemix.train.policies.build_policy`). What is checked here is what the data gives a
policy (weights, sizes, reference losses of the right length).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from moemix.errors import MixingError
from moemix.mixing.distances import summarise_distances
from moemix.mixing.dynamic import check_weights, exponentiated_update, normalise_loads
from moemix.mixing.noise import shrink_scores
from moemix.mixing.signals import Signals


class MixingPolicy(Protocol):
    """What the trainer needs from a policy."""

    name: str
    needs: ClassVar[frozenset[str]]
    """Signals the policy reads: a subset of {"loads", "dev_loss", "train_loss", "noise"} (an instance may read
    more than its class, e.g. the noise-aware dynamic update)."""

    def initial_weights(self, n: int) -> np.ndarray:
        """Sampling weights before the first update, shape (n,), summing to 1."""

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        """New weights from the current ones and the window's signals."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, enough to rebuild the policy with ``from_state``."""


def _uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


class _Stateless:
    """``state_dict`` from the dataclass fields, with the policy's name."""

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name} | {k: v for k, v in asdict(self).items() if k != "name"}


@dataclass
class UniformPolicy(_Stateless):
    """Every dataset drawn with probability 1/n, always (the paper's first baseline)."""

    name: str = field(default="uniform", init=False)
    needs: ClassVar[frozenset[str]] = frozenset()

    def initial_weights(self, n: int) -> np.ndarray:
        return _uniform(n)

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        return _uniform(len(weights))


@dataclass
class StaticPolicy(_Stateless):
    """Fixed weights given by the user (the config or a file); updates leave them unchanged."""

    weights: list[float]
    name: str = field(default="static", init=False)
    needs: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        check_weights(self.weights, what="mixing.weights")

    def initial_weights(self, n: int) -> np.ndarray:
        return check_weights(self.weights, n=n, what="mixing.weights").copy()

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        return self.initial_weights(len(weights))


@dataclass
class DataSizePolicy(_Stateless):
    """Weights proportional to each dataset's size (examples or tokens), fixed for the run."""

    sizes: list[float]
    by: str
    name: str = field(default="datasize", init=False)
    needs: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        if not self.sizes or min(self.sizes) <= 0:
            raise MixingError("datasize policy: every dataset needs a positive size")

    def initial_weights(self, n: int) -> np.ndarray:
        sizes = np.asarray(self.sizes, dtype=np.float64)
        if sizes.size != n:
            raise MixingError(f"datasize policy: {sizes.size} sizes for {n} datasets")
        return sizes / sizes.sum()

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        return self.initial_weights(len(weights))


@dataclass
class RandomPolicy(_Stateless):
    """Fresh random weights (flat Dirichlet) at every update, seeded by (seed, step): the paper's baseline."""

    seed: int = 0
    name: str = field(default="random", init=False)
    needs: ClassVar[frozenset[str]] = frozenset()

    def initial_weights(self, n: int) -> np.ndarray:
        return _uniform(n)

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        return np.random.default_rng([self.seed, signals.step]).dirichlet(np.ones(len(weights)))


@dataclass
class CyclePolicy:
    """All weight on one dataset per update window, round-robin: 0, 1, ..., n-1, 0, ..."""

    updates: int = 0
    name: str = field(default="cycle", init=False)
    needs: ClassVar[frozenset[str]] = frozenset()

    def initial_weights(self, n: int) -> np.ndarray:
        return np.eye(n)[0]

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        self.updates += 1
        return np.eye(len(weights))[self.updates % len(weights)]

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "updates": self.updates}


@dataclass
class SequentialPolicy:
    """One dataset after another, in config order: the run's ``windows`` update windows (the stretch before
    the first update included) are split evenly, window k training only dataset ``k * n // windows``."""

    windows: int = 1
    updates: int = 0
    name: str = field(default="sequential", init=False)
    needs: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        if self.windows < 1:
            raise MixingError(f"sequential policy: windows must be >= 1, got {self.windows}")

    def _current(self, n: int) -> np.ndarray:
        return np.eye(n)[min(self.updates * n // self.windows, n - 1)]

    def initial_weights(self, n: int) -> np.ndarray:
        return self._current(n)

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        self.updates += 1
        return self._current(len(weights))

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "windows": self.windows, "updates": self.updates}


@dataclass
class DynamicPolicy(_Stateless):
    """The paper's update, with the variants its open questions ask about.

    ``distance`` (l2, cosine, js) between normalised gate loads and ``criterion`` (mean, min, max) summarising
    a dataset's distance to the others; l2 + mean is the paper's :func:`dynamic_update`.

    With ``noise_aware`` (off in the paper), each score's deviation from the mean score is first pulled
    towards 0 by ``noise_z`` of its standard errors (:func:`moemix.mixing.noise.shrink_scores`, the standard
    errors from the update's ``noise`` signal): the weights move only as far as the routing signal stands
    above its sampling noise.
    """

    eta: float
    c: float
    distance: str
    criterion: str
    noise_aware: bool
    noise_z: float
    weights: list[float] | None = None
    name: str = field(default="dynamic", init=False)
    needs: ClassVar[frozenset[str]] = frozenset({"loads"})

    def __post_init__(self) -> None:
        if self.weights is not None:
            check_weights(self.weights, what="mixing.weights")
        if self.noise_aware:
            self.needs = frozenset({"loads", "noise"})  # this instance reads the noise too

    def initial_weights(self, n: int) -> np.ndarray:
        if self.weights is None:
            return _uniform(n)
        return check_weights(self.weights, n=n, what="mixing.weights").copy()

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        probs = normalise_loads(signals.require("loads", self.name))
        w = check_weights(weights, n=probs.shape[0])
        scores = summarise_distances(probs, self.distance, self.criterion)
        if self.noise_aware:
            noise = signals.noise
            if noise is None:
                raise MixingError(
                    "policy dynamic with mixing.noise_aware: needs the noise of the gate loads, which this update "
                    "did not estimate"
                )
            if noise.score_se.shape != scores.shape:
                raise MixingError(f"noise-aware update: noise of {noise.score_se.size} datasets for {scores.size}")
            if (noise.distance, noise.criterion) != (self.distance, self.criterion):
                raise MixingError(
                    f"noise-aware update: the noise is of {noise.distance}/{noise.criterion} scores, the update's are "
                    f"{self.distance}/{self.criterion}; use the distance and criterion the noise was estimated for"
                )
            scores = shrink_scores(scores, noise.score_se, self.noise_z)
        return exponentiated_update(w, scores, self.eta, self.c)


@dataclass
class EmbeddingPolicy(_Stateless):
    """The dynamic update with each dataset represented by a fixed vector (e.g. its mean sentence embedding).

    It asks whether the routing signal matters: the same update, fed a representation that never changes
    with the model.
    """

    vectors: list[list[float]]
    eta: float
    c: float
    distance: str
    criterion: str
    name: str = field(default="embedding", init=False)
    needs: ClassVar[frozenset[str]] = frozenset()

    def initial_weights(self, n: int) -> np.ndarray:
        return _uniform(n)

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        scores = summarise_distances(np.asarray(self.vectors, dtype=np.float64), self.distance, self.criterion)
        return exponentiated_update(check_weights(weights), scores, self.eta, self.c)


@dataclass
class RefLossPolicy(_Stateless):
    """Reference-loss mixing (DoReMi-style, the paper's baseline): weight follows the excess dev loss.

    ``a = softmax(log w + eta * max(dev_loss - reference, 0))``, smoothed with ``c`` like the dynamic update.
    """

    reference: list[float]
    eta: float
    c: float
    name: str = field(default="refloss", init=False)
    needs: ClassVar[frozenset[str]] = frozenset({"dev_loss"})

    def initial_weights(self, n: int) -> np.ndarray:
        if len(self.reference) != n:
            raise MixingError(f"refloss policy: {len(self.reference)} reference losses for {n} datasets")
        return _uniform(n)

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        excess = np.maximum(signals.require("dev_loss", self.name) - np.asarray(self.reference), 0.0)
        return exponentiated_update(check_weights(weights), excess, self.eta, self.c)


@dataclass
class OnlineDataMixingPolicy:
    """Online data mixing as a multi-armed bandit (EXP3 with smoothed importance-weighted rewards).

    Following Albalak et al. (2023): each dataset is an arm, its reward the training loss it produced,
    divided by its sampling probability (importance weighting) and smoothed with ``alpha``; the exploration
    rate is ``eps_t = min(1/n, sqrt(ln n / (n t)))`` and ``pi = (1 - n eps_t) softmax(eps_{t-1} R) + eps_t``.
    Updates once per window, on the window's mean training loss per dataset.
    """

    alpha: float
    rewards: list[float] | None = None
    updates: int = 0
    name: str = field(default="odm", init=False)
    needs: ClassVar[frozenset[str]] = frozenset({"train_loss"})

    def initial_weights(self, n: int) -> np.ndarray:
        return _uniform(n)

    @staticmethod
    def _eps(n: int, t: int) -> float:
        return min(1.0 / n, math.sqrt(math.log(n) / (n * max(t, 1))))

    def update(self, weights: np.ndarray, signals: Signals) -> np.ndarray:
        n = len(weights)
        loss = signals.require("train_loss", self.name)
        rewards = np.zeros(n) if self.rewards is None else np.asarray(self.rewards, dtype=np.float64)
        seen = np.isfinite(loss)
        probs = np.maximum(np.asarray(weights, dtype=np.float64), 1e-12)
        rewards[seen] = self.alpha * rewards[seen] + (1 - self.alpha) * loss[seen] / probs[seen]
        self.updates += 1
        eps_prev, eps = self._eps(n, self.updates), self._eps(n, self.updates + 1)
        logits = eps_prev * rewards
        logits -= logits.max()
        soft = np.exp(logits) / np.exp(logits).sum()
        new = (1 - n * eps) * soft + eps
        self.rewards = rewards.tolist()
        return new / new.sum()

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha, "rewards": self.rewards, "updates": self.updates}


POLICIES: dict[str, type] = {
    "uniform": UniformPolicy,
    "static": StaticPolicy,
    "datasize": DataSizePolicy,
    "random": RandomPolicy,
    "cycle": CyclePolicy,
    "sequential": SequentialPolicy,
    "dynamic": DynamicPolicy,
    "embedding": EmbeddingPolicy,
    "refloss": RefLossPolicy,
    "odm": OnlineDataMixingPolicy,
}


def from_state(state: dict[str, Any]) -> MixingPolicy:
    """Rebuild a policy from its ``state_dict`` (or from constructor arguments with a ``name``)."""
    state = dict(state)
    name = state.pop("name", None)
    if name not in POLICIES:
        raise MixingError(f"mixing.policy: unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    try:
        return POLICIES[name](**state)
    except TypeError as err:
        raise MixingError(f"mixing.policy {name}: {err}") from None
