"""Time and peak memory of one ``dynamic_update`` from 10 to 10,000 datasets, beside a naive version in the same run.

The naive version computes the mean distances from the full (n, n, N) difference array, the direct reading of
D_i = (1/n) sum_j ||O_i - O_j||_2; moemix uses the Gram form in row blocks. Both give the same weights (checked).
Peak memory is what ``tracemalloc`` sees numpy allocate during the call (a separate run from the timing, since
tracing slows allocation). The naive version is skipped where its difference array alone would pass
``--naive-max-gb``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/update_scaling.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/update_scaling.py --quick
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc

import numpy as np

from moemix.mixing import dynamic_update
from moemix.mixing.dynamic import check_params, check_weights, normalise_loads


def naive_update(weights: np.ndarray, loads: np.ndarray, eta: float = 10.0, c: float = 0.05) -> np.ndarray:
    """The update with D from the explicit (n, n, N) difference array."""
    check_params(eta, c)
    probs = normalise_loads(loads)
    w = check_weights(weights, n=probs.shape[0])
    distances = np.sqrt(((probs[:, None, :] - probs[None, :, :]) ** 2).sum(axis=2)).mean(axis=1)
    with np.errstate(divide="ignore"):
        logits = np.log(w) + eta * distances
    a = np.exp(logits - logits.max())
    a /= a.sum()
    out = (1.0 - c) * a + c / w.size
    return out / out.sum()


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _peak_mb(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--experts", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--naive-max-gb", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="100, 1,000 and 10,000 datasets x 128 experts only")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.experts = [100, 1000, 10000], [128]

    print(f"# {platform.processor() or platform.machine()}, numpy {np.__version__}, {platform.python_version()}")
    print(
        "| datasets n | experts N | moemix time | moemix peak | naive time | naive peak "
        "| time ratio naive/moemix | max abs diff |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(args.seed)
    for n in args.sizes:
        for experts in args.experts:
            # Counts as the probe gives them: top-k choices of a few thousand tokens per dataset.
            loads = rng.multinomial(4096, rng.dirichlet(np.ones(experts)), size=n).astype(np.float64) + 1
            weights = rng.dirichlet(np.ones(n))
            repeats = 5 if n <= 1000 else 3
            ours = lambda: dynamic_update(weights, loads, eta=10.0, c=0.05)  # noqa: E731 (naive_update's knobs)
            ours()  # warm-up: first-call costs (page faults, BLAS start) are not the update's
            t_ours, m_ours = _time(ours, repeats), _peak_mb(ours)
            naive_gb = n * n * experts * 8 / 2**30
            if naive_gb <= args.naive_max_gb:
                naive = lambda: naive_update(weights, loads)  # noqa: E731
                naive()
                t_naive, m_naive = _time(naive, repeats), _peak_mb(naive)
                diff = float(np.abs(naive() - ours()).max())
                cells = (f"{t_naive * 1e3:,.1f} ms", f"{m_naive:,.1f} MB", f"{t_naive / t_ours:,.1f}x", f"{diff:.1e}")
            else:
                cells = (f"not run ({naive_gb:,.0f} GB array)", "-", "-", "-")
            print(
                f"| {n:,} | {experts} | {t_ours * 1e3:,.1f} ms | {m_ours:,.1f} MB | " + " | ".join(cells) + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
