"""Packing: rows within max_length, each example attending only to itself, every token tagged with its dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moemix.data.packing import PackingCollator, pack_rows
from moemix.testing import tiny_moe


@pytest.mark.parametrize("seed", range(5))
def test_pack_rows_places_every_example_once_within_max_length(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 65, size=40).tolist()
    rows = pack_rows(lengths, 64)
    assert sorted(i for row in rows for i in row) == list(range(40))
    assert all(sum(lengths[i] for i in row) <= 64 for row in rows)
    assert len(rows) < 40 and len(rows) >= -(-sum(lengths) // 64)


def test_pack_rows_rejects_too_long():
    with pytest.raises(ValueError, match="example 1 has 9 tokens, more than max_length=8"):
        pack_rows([3, 9], 8)


def _features(rng, n, vocab):
    out = []
    for d in range(n):
        ids = rng.integers(3, vocab, size=int(rng.integers(4, 20))).astype(np.int32)
        out.append({"input_ids": ids, "labels": ids.copy(), "dataset_id": d % 3})
    return out


def test_a_cache_hides_the_boundaries():
    # Why the batch carries use_cache=False: with a cache (the config's default) the boundaries are ignored.
    model = tiny_moe("mixtral", vocab_size=64, seed=1).eval()
    a, b = torch.tensor([[5, 6, 7, 8]]), torch.tensor([[9, 10, 11]])
    ids, pos = torch.cat([a, b], 1), torch.tensor([[0, 1, 2, 3, 0, 1, 2]])
    with torch.no_grad():
        alone = model(input_ids=b).logits[0]
        torch.testing.assert_close(model(input_ids=ids, position_ids=pos, use_cache=False).logits[0, 4:], alone)
        assert not torch.allclose(model(input_ids=ids, position_ids=pos).logits[0, 4:], alone, atol=1e-4)


def test_collator_layout():
    rng = np.random.default_rng(0)
    features = _features(rng, 7, 50)
    batch = PackingCollator(pad_token_id=0, max_length=32)(features)
    ids, pos, tags, labels = (batch[k].numpy() for k in ("input_ids", "position_ids", "token_dataset_ids", "labels"))
    assert ids.shape[1] <= 32 and ids.shape[0] < 7
    found = 0
    for r in range(ids.shape[0]):
        starts = np.flatnonzero(pos[r] == 0)
        for a, b in zip(starts, [*starts[1:], ids.shape[1]]):
            if tags[r, a] == -1:  # the padding segment
                assert (ids[r, a:b] == 0).all() and (labels[r, a:b] == -100).all()
                continue
            f = next(f for f in features if len(f["input_ids"]) == b - a and (f["input_ids"] == ids[r, a:b]).all())
            assert (tags[r, a:b] == f["dataset_id"]).all()
            assert labels[r, a] == -100 and (labels[r, a + 1 : b] == f["input_ids"][1:]).all()
            found += 1
    assert found == 7


@pytest.mark.parametrize("arch", ["mixtral", "qwen2_moe", "olmoe"])
def test_packed_logits_equal_each_example_alone(arch):
    vocab = 64
    model = tiny_moe(arch, vocab_size=vocab, seed=1).eval()
    features = _features(np.random.default_rng(1), 6, vocab)
    batch = PackingCollator(pad_token_id=0, max_length=40)(features)
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "position_ids", "use_cache")}
        packed = model(**inputs).logits
        # Control: the same rows with positions running on (no boundaries) let attention cross examples.
        running = torch.arange(batch["input_ids"].shape[1])[None].expand_as(batch["input_ids"])
        leaky = model(**(inputs | {"position_ids": running})).logits
        crossed = 0
        for f in features:
            alone = model(input_ids=torch.as_tensor(f["input_ids"], dtype=torch.long)[None]).logits[0]
            n = len(f["input_ids"])
            r, a = _locate(batch["input_ids"], torch.as_tensor(f["input_ids"], dtype=torch.long))
            torch.testing.assert_close(packed[r, a : a + n], alone, atol=1e-5, rtol=1e-4)
            crossed += a > 0 and not torch.allclose(leaky[r, a : a + n], alone, atol=1e-5, rtol=1e-4)
    assert crossed > 0  # the comparison can fail: without boundaries the examples after the first differ


def _locate(ids: torch.Tensor, example: torch.Tensor) -> tuple[int, int]:
    n = len(example)
    for r in range(ids.shape[0]):
        for a in range(ids.shape[1] - n + 1):
            if torch.equal(ids[r, a : a + n], example):
                return r, a
    raise AssertionError("example not found in the packed batch")
