"""The feed: the global order of draws is independent of world size; ranks take disjoint slices."""

from __future__ import annotations

import numpy as np

from moemix.data import MixtureCollator, MixtureDataset, MixtureSampler, TokenizedSplit
from moemix.data.feed import MixtureFeed


def _dataset(sizes):
    splits = []
    for d, n in enumerate(sizes):
        ids = [np.array([d, e, 7], dtype=np.int32) for e in range(n)]
        splits.append(TokenizedSplit(f"d{d}", ids, [x.copy() for x in ids]))
    return MixtureDataset(splits)


def _feeds(world, batch, sizes=(60, 50, 50), seed=4):
    dataset = _dataset(sizes)
    feeds = []
    for rank in range(world):
        sampler = MixtureSampler(dataset.sizes, [0.5, 0.3, 0.2], seed=seed)
        feeds.append(MixtureFeed(sampler, dataset, MixtureCollator(pad_token_id=0), batch, world, rank, record=True))
    return feeds


def _examples(batch):
    return [tuple(row[:2].tolist()) for row in batch["input_ids"]]


def test_union_of_ranks_equals_single_process():
    # Global batch 8 per optimizer step: 1 rank x 4 x 2 accumulation == 2 ranks x 2 x 2 accumulation.
    (single,) = _feeds(world=1, batch=4)
    pair = _feeds(world=2, batch=2)
    for step in range(6):
        if step == 3:  # a mixture update between steps, applied identically everywhere
            for feed in (single, *pair):
                feed.sampler.set_weights([0.1, 0.1, 0.8])
        one = [x for b in single.next_step(2) for x in _examples(b)]
        per_rank = [[x for b in feed.next_step(2) for x in _examples(b)] for feed in pair]
        assert sorted(one) == sorted(per_rank[0] + per_rank[1])
        assert not set(per_rank[0]) & set(per_rank[1])  # no dataset wraps into a second epoch here
        # Interleaving: micro-batch m of rank r holds global positions (m*W + r)*B ... + B.
        assert one[:2] == per_rank[0][:2] and one[2:4] == per_rank[1][:2]
    assert pair[0].steps[-1]["weights_sha"] == pair[1].steps[-1]["weights_sha"] == single.steps[-1]["weights_sha"]


def test_batches_carry_dataset_ids_matching_the_draws():
    (feed,) = _feeds(world=1, batch=5)
    (batch,) = feed.next_step(1)
    assert batch["dataset_ids"].tolist() == [d for d, _ in feed.steps[0]["draws"]]
    assert batch["input_ids"][:, 0].tolist() == batch["dataset_ids"].tolist()
