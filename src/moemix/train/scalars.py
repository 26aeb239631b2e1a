"""Mixture scalars on their way from the mixing callback to the Trainer's logs (TensorBoard, W&B, ...)."""

from __future__ import annotations

from collections.abc import Mapping


class PendingScalars:
    """Scalars an update produced, waiting to ride along with the Trainer's next log.

    The mixing callback puts the weights and distances of each update here; the trainer takes them when it
    logs. Built before both and handed to each, so neither reaches into the other.
    """

    def __init__(self) -> None:
        self._values: dict[str, float] = {}

    def update(self, values: Mapping[str, float]) -> None:
        """Add scalars (a later value of the same name replaces the earlier one)."""
        self._values.update(values)

    def take(self) -> dict[str, float]:
        """The pending scalars, and none left pending."""
        values, self._values = self._values, {}
        return values

    def __bool__(self) -> bool:
        return bool(self._values)
