"""The routing signal's noise at an update: whether to measure it, the estimate, and the warnings it raises.

The estimate itself is pure (:func:`moemix.mixing.noise.routing_noise`); this module decides what it is
computed on (the policy's distance and criterion, the loads the policy saw), seeds it from the run's seed and
the step (a resumed run logs the same), and says in the log when an update moved the weights on noise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from moemix.mixing import MixingPolicy
from moemix.mixing.noise import MAX_DATASETS, RoutingNoise, routing_noise

logger = logging.getLogger(__name__)

ONLINE_UNITS = 32
"""Groups of training sequences each dataset's online counts are kept apart in (sequence k goes to group
k mod 32): enough units for a bootstrap, a bounded accumulator however long the window."""


def estimates_noise(num_datasets: int, policy: MixingPolicy) -> bool:
    """Whether the updates estimate their noise: up to :data:`~moemix.mixing.noise.MAX_DATASETS` datasets,
    and always for a policy that reads it (the noise-aware update)."""
    return num_datasets <= MAX_DATASETS or "noise" in policy.needs


def online_units(num_datasets: int, policy: MixingPolicy) -> int:
    """Units per dataset the online counts keep apart: :data:`ONLINE_UNITS` when the noise is estimated, else 1."""
    return ONLINE_UNITS if estimates_noise(num_datasets, policy) else 1


def update_noise(
    units: Sequence[np.ndarray] | None,
    loads: np.ndarray,
    fresh: np.ndarray,
    policy: MixingPolicy,
    seed: Sequence[int],
) -> RoutingNoise | None:
    """The noise of one update's gate loads, or None where it cannot be or is not estimated.

    Args:
        units: Per dataset, the ``(m_i, N)`` counts of its measured units (None: not measured per unit).
        loads: ``(n, N)`` the loads the policy reads (rows summing to 1).
        fresh: ``(n,)`` share of each load that this window measured (see :class:`moemix.train.loads.WindowLoads`).
        policy: The policy: its distance and criterion when it reads loads, else the paper's (l2, mean).
        seed: The bootstrap's seed, e.g. ``[run seed, step]``.

    Returns:
        The estimate; None above :data:`~moemix.mixing.noise.MAX_DATASETS` datasets (unless the policy reads
        it), without units, or when no dataset has two units that routed a counted token.
    """
    if units is None or not estimates_noise(len(units), policy):
        return None
    if not any(int((np.asarray(u).reshape(len(u), -1).sum(axis=1) > 0).sum()) >= 2 for u in units if len(u)):
        return None
    reads_loads = "loads" in policy.needs and hasattr(policy, "distance")
    distance = policy.distance if reads_loads else "l2"
    criterion = policy.criterion if reads_loads else "mean"
    return routing_noise(units, distance, criterion, seed=list(seed), loads=loads, fresh=fresh)


def warn_about_noise(noise: RoutingNoise, step: int, noise_aware: bool) -> None:
    """One warning when the update moved the weights on noise: loads indistinguishable, or a direction within
    the noise (SNR below 1). Nothing when the scores have no direction at all (e.g. two datasets under the
    mean criterion, which the run warns about when it starts)."""
    action = (
        "the noise-aware update leaves what is within the noise out"
        if noise_aware
        else "set mixing.noise_aware: true to move the weights only by what stands above the noise"
    )
    if noise.indistinguishable:
        logger.warning(
            "step %d: the datasets' gate loads are indistinguishable (largest distance %.4f, spread %.2f times "
            "their sampling noise): no routing signal yet, e.g. a freshly initialised model routing every dataset "
            "alike; %s",
            step,
            noise.max_distance,
            noise.separation,
            action,
        )
        return
    deviation = noise.scores - noise.scores.mean()
    if noise.within_noise and float(np.abs(deviation).max()) > 1e-9 * max(float(np.abs(noise.scores).max()), 1e-300):
        logger.warning(
            "step %d: the update's direction is within the sampling noise of the gate loads (signal-to-noise "
            "ratio %.2f < 1): another sample of the same data could have moved the weights another way; %s",
            step,
            noise.snr,
            action,
        )
