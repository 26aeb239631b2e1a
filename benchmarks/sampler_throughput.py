"""Draws per second of moemix's mixture sampler against ``datasets.interleave_datasets`` with the same weights.

Both sides draw the same number of examples from the same tokenised data (n datasets, random lengths 32-512,
int32 token ids) with the same probabilities, in one process:

- moemix indices: ``MixtureSampler`` alone (what the DataLoader asks the sampler for).
- moemix examples: the sampler's indices fetched from ``MixtureDataset`` (ids and labels per draw).
- HF map-style: ``interleave_datasets`` over Arrow ``Dataset`` objects (numpy format), building the schedule
  included, then reading each row.
- HF iterable: ``interleave_datasets`` over ``IterableDataset`` objects, reading each row (fewer draws: it is
  slow, and a rate needs only enough of them).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sampler_throughput.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sampler_throughput.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from moemix.data.load import TokenizedSplit
from moemix.data.mixture import MixtureDataset
from moemix.data.sampler import MixtureSampler


def _splits(sizes: list[int], rng: np.random.Generator) -> list[TokenizedSplit]:
    out = []
    for d, size in enumerate(sizes):
        lengths = rng.integers(32, 513, size=size)
        ids = [rng.integers(4, 4096, size=k, dtype=np.int32) for k in lengths]
        out.append(TokenizedSplit(f"d{d}", ids, [x.copy() for x in ids]))
    return out


def _hf_dataset(split: TokenizedSplit):
    import datasets

    lengths = np.fromiter((len(x) for x in split.input_ids), dtype=np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    flat = pa.array(np.concatenate(split.input_ids))
    column = pa.ListArray.from_arrays(offsets, flat)
    table = pa.table({"input_ids": column, "labels": column})
    return datasets.Dataset(datasets.table.InMemoryTable(table))


def _rate(fn, draws: int) -> tuple[float, float]:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return draws / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, nargs="+", default=[4, 100, 1000])
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--iterable-draws", type=int, default=2000, help="draws of the (slow) HF iterable side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 and 100 datasets, 5,000 draws (500 iterable)")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.draws, args.iterable_draws = [4, 100], 5000, 500

    import datasets

    datasets.disable_progress_bars()
    rng = np.random.default_rng(args.seed)
    print(
        "| datasets n | draws | moemix indices/s | moemix examples/s | HF map-style examples/s "
        "| HF iterable examples/s | moemix examples / HF map-style | moemix examples / HF iterable |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.datasets:
        K = args.draws
        weights = rng.dirichlet(np.ones(n))
        weights = weights / weights.sum()
        # Twice the expected draws of each dataset: none runs out (interleave's first_exhausted stop) before K.
        splits = _splits([int(2 * K * w) + 50 for w in weights], rng)

        def moemix_indices():
            sampler = MixtureSampler([len(s) for s in splits], weights, seed=args.seed)
            for _ in range(K):
                sampler.draw()

        mixture = MixtureDataset(splits)

        def moemix_examples():
            sampler = MixtureSampler([len(s) for s in splits], weights, seed=args.seed)
            for _ in range(K):
                d, example = sampler.draw()
                mixture[int(mixture.offsets[d] + example)]

        hf = [_hf_dataset(s).with_format("numpy") for s in splits]

        def hf_map():
            mixed = datasets.interleave_datasets(
                hf, probabilities=weights.tolist(), seed=args.seed, stopping_strategy="first_exhausted"
            )
            for i in range(K):
                mixed[i]

        hf_iter = [_hf_dataset(s).to_iterable_dataset().with_format("numpy") for s in splits]

        K_iter = min(K, args.iterable_draws)

        def hf_iterable():
            mixed = datasets.interleave_datasets(
                hf_iter, probabilities=weights.tolist(), seed=args.seed, stopping_strategy="first_exhausted"
            )
            for i, _ in enumerate(mixed):
                if i + 1 == K_iter:
                    break

        r_idx, _ = _rate(moemix_indices, K)
        r_ex, _ = _rate(moemix_examples, K)
        r_map, _ = _rate(hf_map, K)
        r_it, _ = _rate(hf_iterable, K_iter)
        print(
            f"| {n:,} | {K:,} | {r_idx:,.0f} | {r_ex:,.0f} | {r_map:,.0f} | {r_it:,.0f} | {r_ex / r_map:.1f}x | "
            f"{r_ex / r_it:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
