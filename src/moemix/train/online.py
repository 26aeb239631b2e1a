"""Gate loads for free: count the experts chosen in the training forward passes themselves.

Hooks stay on the chosen MoE layers for the whole run but record only inside :meth:`OnlineExpertCounts.counting`,
which the trainer opens around each training forward. Each forward's choices are added, on the device and in
one scatter per layer, to a ``(datasets x units, experts)`` accumulator through the batch's per-token dataset
ids: no extra forward pass, no host synchronisation per step, no Python loop over tokens. The update reads the
accumulators once (summed over ranks) and resets them.

The units split each dataset's counts into a few groups of training sequences (sequence k of the run goes to
unit ``k mod units``), so that the update can tell how much its loads would vary on other sequences (the
bootstrap of :mod:`moemix.mixing.noise`) at the cost of a wider accumulator, not of any extra work per token.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager

import numpy as np
import torch
from torch import nn

from moemix.data.render import IGNORE_INDEX
from moemix.errors import RoutingError
from moemix.routing import (
    ROUTER_MODULE_HINT,
    LayerSpec,
    RoutersNotFoundError,
    capture_layers,
    check_layers,
    count_by_group,
)
from moemix.train.distributed import all_reduce_sum, rank_and_world


def check_routing(model: nn.Module, layers: LayerSpec, router_module: str | None) -> None:
    """Check before training that the configured MoE layers can be read; errors name the config field.

    Raises:
        RoutingError: If the model has no readable MoE layer or ``mixing.layers`` names one it does not have.
    """
    try:
        check_layers(model, layers, router_module)
    except RoutersNotFoundError:
        raise  # already says how to set mixing.router_module
    except RoutingError as err:
        field = "mixing.layers" if str(err).startswith("routing layer") else "mixing.router_module"
        raise RoutingError(f"{field}: {err}") from None


def token_groups(
    batch: Mapping[str, torch.Tensor],
    dataset_ids: torch.Tensor | None,
    token_dataset_ids: torch.Tensor | None,
    count_prompt_tokens: bool = True,
) -> torch.Tensor:
    """The dataset of every token of a training batch, ``-1`` where a token must not count.

    Args:
        batch: The model inputs: ``input_ids``, ``attention_mask`` and (for ``count_prompt_tokens=False``)
            ``labels``.
        dataset_ids: ``[B]`` dataset of each example, used when ``token_dataset_ids`` is None.
        token_dataset_ids: ``[B, S]`` dataset of each token (``-1`` on padding), as the collator emits them.
        count_prompt_tokens: Count prompt tokens too; False keeps only tokens whose label is not ignored.

    Returns:
        ``LongTensor[B, S]`` on the device of ``input_ids``.

    Raises:
        RoutingError: If the batch carries no dataset ids.
    """
    input_ids = batch["input_ids"]
    if token_dataset_ids is not None:
        groups = token_dataset_ids.to(input_ids.device, torch.long)
    elif dataset_ids is not None:
        groups = dataset_ids.to(input_ids.device, torch.long)[:, None].expand_as(input_ids)
    else:
        raise RoutingError("online routing counts need batches that carry dataset_ids (the MixtureCollator's)")
    mask = batch.get("attention_mask")
    if mask is not None:
        groups = groups.masked_fill(mask.to(groups.device) == 0, -1)  # padding never counts
    if not count_prompt_tokens:
        groups = groups.masked_fill(batch["labels"].to(groups.device) == IGNORE_INDEX, -1)
    return groups


class OnlineExpertCounts:
    """Expert counts per dataset accumulated from training forwards; the ``online`` source of gate loads.

    Args:
        model: The model being trained (bare or wrapped).
        num_datasets: Number of datasets of the mixture.
        layers: MoE layers to read, as in :func:`moemix.routing.select_moe_layers`.
        router_module: Router path pattern for models whose routers moemix does not find by itself.
        count_prompt_tokens: Count prompt tokens too (False: only tokens that carry a loss).
        units: Groups of training sequences counted apart per dataset (1: one count per dataset).

    Raises:
        RoutingError: If the routing cannot be hooked (a model read only through ``output_router_logits``
            cannot be counted online: asking for the logits changes the training loss).
    """

    def __init__(
        self,
        model: nn.Module,
        num_datasets: int,
        layers: LayerSpec = "last",
        router_module: str | None = None,
        count_prompt_tokens: bool = True,
        units: int = 1,
    ):
        if units < 1:
            raise RoutingError(f"online counts: units must be >= 1, got {units}")
        self.num_datasets = num_datasets
        self.units = units
        self.count_prompt_tokens = count_prompt_tokens
        self._stack = ExitStack()
        try:
            self.captures = self._stack.enter_context(capture_layers(model, layers, router_module))
        except RoutersNotFoundError as err:
            raise RoutingError(
                f"{err} (mixing.source online reads the routers during training; a model read only through "
                f"output_router_logits can use mixing.source probe)"
            ) from None
        for capture in self.captures:
            capture.active = False  # evaluation and probe forwards do not count
        self.width = sum(capture.layer.num_experts for capture in self.captures)
        self._counts: list[torch.Tensor | None] = [None] * len(self.captures)
        self.forwards = 0
        self.sequences = 0  # training sequences counted so far this run, over all ranks: the unit of the next one

    @contextmanager
    def counting(
        self,
        batch: Mapping[str, torch.Tensor],
        dataset_ids: torch.Tensor | None,
        token_dataset_ids: torch.Tensor | None = None,
    ) -> Iterator[None]:
        """Count the routing of the one training forward run inside the context.

        Args:
            batch: The model inputs of the forward (``input_ids``, ``attention_mask``, ``labels``).
            dataset_ids: ``[B]`` dataset of each example.
            token_dataset_ids: ``[B, S]`` dataset of each token, if the collator gave them.

        Raises:
            RoutingError: If a counted layer did not run exactly once in the forward.
        """
        groups = token_groups(batch, dataset_ids, token_dataset_ids, self.count_prompt_tokens)
        rows = groups.shape[0]
        rank, world = rank_and_world()
        if self.units > 1:  # (dataset, unit) pairs as one group index; -1 (not counted) stays negative
            # The run's sequence index across ranks (rank r holds rows r*B..r*B+B-1 of each global micro-batch),
            # so N ranks of batch B group the sequences as one rank of batch N*B does.
            first = self.sequences + rank * rows
            unit = (torch.arange(rows, device=groups.device) + first) % self.units
            groups = torch.where(groups >= 0, groups * self.units + unit[:, None], groups)
        for capture in self.captures:
            capture.take()
            capture.active = True
        try:
            yield
        finally:
            for capture in self.captures:
                capture.active = False
        for i, capture in enumerate(self.captures):
            indices = capture.take()
            if len(indices) != 1:
                raise RoutingError(
                    f"MoE layer {capture.layer.name!r} ran {len(indices)} times in one training forward, expected "
                    f"once (a fused kernel may bypass its experts module; {ROUTER_MODULE_HINT})"
                )
            if self._counts[i] is None:
                self._counts[i] = torch.zeros(
                    self.num_datasets * self.units,
                    capture.layer.num_experts,
                    dtype=torch.long,
                    device=indices[0].device,
                )
            elif self._counts[i].device != indices[0].device:  # restored from a checkpoint onto the CPU
                self._counts[i] = self._counts[i].to(indices[0].device)
            count_by_group(
                indices[0], groups, self.num_datasets * self.units, capture.layer.num_experts, out=self._counts[i]
            )
        self.forwards += 1
        self.sequences += rows * world

    def read_units(self, model: nn.Module | None = None) -> np.ndarray:
        """The counts since the last read per dataset and unit, summed over ranks, and reset them: one host
        synchronisation.

        Args:
            model: Unused; the signature every load source shares.

        Returns:
            ``(num_datasets, units, sum of the layers' num_experts)`` int64 counts, layers concatenated in order.
        """
        rows = []
        for i, capture in enumerate(self.captures):
            counts = self._counts[i]
            if counts is None:
                rows.append(np.zeros((self.num_datasets * self.units, capture.layer.num_experts), dtype=np.int64))
                continue
            rows.append(counts.cpu().numpy().astype(np.int64))
            counts.zero_()
        return all_reduce_sum(np.concatenate(rows, axis=1)).reshape(self.num_datasets, self.units, self.width)

    def read(self, model: nn.Module | None = None) -> np.ndarray:
        """The counts since the last read per dataset (its units summed), summed over ranks, and reset them.

        Returns:
            ``(num_datasets, sum of the layers' num_experts)`` int64 counts, layers concatenated in order.
        """
        return self.read_units(model).sum(axis=1)

    def state_dict(self) -> dict:
        """The counts of the window so far, per layer (None where nothing was counted yet), for a checkpoint.

        A run resumed mid-window continues this window's counts, and its sequences the units they had, instead
        of starting them again.
        """
        return {
            "counts": [None if c is None else c.cpu().tolist() for c in self._counts],
            "forwards": self.forwards,
            "units": self.units,
            "sequences": self.sequences,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (onto the device of the routed tokens at the first count).

        Raises:
            RoutingError: If the saved counts do not fit this model's chosen layers.
        """
        saved = state["counts"]
        shapes = [(self.num_datasets * self.units, capture.layer.num_experts) for capture in self.captures]
        if len(saved) != len(shapes) or any(c is not None and np.shape(c) != shape for c, shape in zip(saved, shapes)):
            raise RoutingError(
                f"saved online counts do not fit {len(shapes)} layer(s) of shapes {shapes} ({self.num_datasets} "
                f"datasets x {self.units} units)"
            )
        self._counts = [None if c is None else torch.tensor(c, dtype=torch.long) for c in saved]
        self.forwards = int(state.get("forwards", 0))
        self.sequences = int(state.get("sequences", 0))

    def close(self) -> None:
        """Remove the hooks."""
        self._stack.close()
