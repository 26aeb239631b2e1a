"""The units the noise estimate resamples cost nothing extra: per probe example, per group of training sequences."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from moemix.data.render import IGNORE_INDEX
from moemix.errors import RoutingError
from moemix.routing import expert_counts
from moemix.testing import random_dev_batches, tiny_moe
from moemix.train.callback import probe_loads, probe_units
from moemix.train.online import OnlineExpertCounts

VOCAB = 256


dev_batches = partial(random_dev_batches, length=16, vocab_size=VOCAB)
"""Right-padded batches of different lengths; the first 3 tokens of a row are a prompt without labels."""


@pytest.mark.parametrize("arch", ["mixtral", "deepseek_v3", "jetmoe"])
@pytest.mark.parametrize("count_prompt_tokens", [True, False])
def test_probe_counts_per_example_are_each_examples_own_and_sum_to_the_probe_loads(arch, count_prompt_tokens):
    model = tiny_moe(arch, seed=1)
    probe = [dev_batches(seed, count=1 + seed % 2) for seed in range(3)]
    counts, units = probe_units(model, probe, "last", count_prompt_tokens=count_prompt_tokens)

    np.testing.assert_array_equal(counts, probe_loads(model, probe, "last", count_prompt_tokens=count_prompt_tokens))
    assert [len(u) for u in units] == [3, 6, 3]  # one row per probe example
    for dataset, batches in enumerate(probe):
        expected = []
        for batch in batches:
            counted = None if count_prompt_tokens else batch["attention_mask"] * (batch["labels"] != IGNORE_INDEX)
            expected.append(expert_counts(model, batch["input_ids"], batch["attention_mask"], count_mask=counted))
        np.testing.assert_array_equal(units[dataset], torch.cat(expected).numpy())


def mixed_batches(seed: int = 0) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Two right-padded batches of three rows drawn from datasets 0-2."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for lengths, datasets in (([9, 5, 12], [0, 2, 1]), ([7, 12, 3], [1, 1, 0])):
        input_ids = torch.randint(3, VOCAB, (3, 12), generator=generator)
        mask = (torch.arange(12)[None] < torch.tensor(lengths)[:, None]).long()
        batches.append(({"input_ids": input_ids * mask, "attention_mask": mask}, torch.tensor(datasets)))
    return batches


def count(online: OnlineExpertCounts, model, batches) -> None:
    for batch, datasets in batches:
        with torch.no_grad(), online.counting(batch, datasets):
            model(**batch)


def test_online_units_split_each_datasets_counts_by_sequence_and_sum_to_them():
    model = tiny_moe("mixtral", seed=2).eval()
    plain, split = OnlineExpertCounts(model, 3, layers="all"), OnlineExpertCounts(model, 3, layers="all", units=4)
    try:
        count(plain, model, mixed_batches())
        count(split, model, mixed_batches())
        units = split.read_units()
        expected = plain.read()
    finally:
        plain.close()
        split.close()

    assert units.shape == (3, 4, expected.shape[1])
    np.testing.assert_array_equal(units.sum(axis=1), expected)
    # Sequences 0-5 of datasets 0, 2, 1, 1, 1, 0 go to units 0, 1, 2, 3, 0, 1 (k mod 4).
    used = {dataset: set(np.flatnonzero(units[dataset].sum(axis=1))) for dataset in range(3)}
    assert used == {0: {0, 1}, 1: {2, 3, 0}, 2: {1}}


def test_a_window_resumed_from_its_state_continues_its_counts_and_units():
    model = tiny_moe("qwen2_moe", seed=3).eval()
    first, second = mixed_batches(0)
    whole, before = OnlineExpertCounts(model, 3, units=4), OnlineExpertCounts(model, 3, units=4)
    try:
        count(whole, model, [first, second])
        count(before, model, [first])
        state = before.state_dict()
    finally:
        before.close()
    after = OnlineExpertCounts(model, 3, units=4)
    try:
        after.load_state_dict(state)
        count(after, model, [second])
        np.testing.assert_array_equal(after.read_units(), whole.read_units())
    finally:
        after.close()
        whole.close()
    wider = OnlineExpertCounts(model, 3, units=8)
    try:
        with pytest.raises(RoutingError, match=r"3 datasets x 8 units"):
            wider.load_state_dict(state)
    finally:
        wider.close()
