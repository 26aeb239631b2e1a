"""Time from start to the end of the first optimizer step of ``moemix train``, cold and with a warm cache.

Each start is a fresh Python process (imports included), run from the repository root on a config (default
``configs/real_mix.yaml``, whose data lives in ``../shared/data``). Cold: an empty ``MOEMIX_CACHE`` (the
builtin tokenizer is trained and every dataset tokenised). Warm: the same cache again (the tokenizer and the
tokenised splits are read back). Reported: seconds to "prepared" (config, tokenizer, data, model, Trainer built)
and to the end of step 1 (which includes the initial dev-loss pass), median of ``--repeats`` starts each.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/first_step.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/first_step.py --quick
"""

from __future__ import annotations

import time

_STARTED = time.time()  # before the heavy imports of the child

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _child(config_path: str, stamp: str, overrides: list[str]) -> None:
    from transformers import TrainerCallback

    from moemix.config import load_config
    from moemix.logs import quiet_libraries
    from moemix.train.run import prepare_run

    imported = time.time()
    quiet_libraries()
    run = prepare_run(load_config(config_path, overrides))
    prepared = time.time()

    class FirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            Path(stamp).write_text(json.dumps({"imported": imported, "prepared": prepared, "step": time.time()}))
            os._exit(0)  # the figure is taken; the rest of the run is not what is measured

    run.trainer.add_callback(FirstStep())
    run.train()


def _start(config: str, cache: Path, out: Path, extra: list[str]) -> dict[str, float]:
    stamp = out / "stamp.json"
    stamp.unlink(missing_ok=True)
    env = dict(os.environ, MOEMIX_CACHE=str(cache))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        config,
        "--stamp",
        str(stamp),
        f"--output_dir={out / 'run'}",
        "--disable_tqdm",
        "true",
        *extra,
    ]
    spawned = time.time()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = json.loads(stamp.read_text())
    return {key: times[key] - spawned for key in ("imported", "prepared", "step")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/real_mix.yaml")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one cold and one warm start")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stamp", default=None, help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.child:
        _child(args.child, args.stamp, overrides)
        return
    if args.quick:
        args.repeats = 1

    import statistics

    results: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="moemix-first-step-") as tmp:
        for i in range(args.repeats):
            cache = Path(tmp) / f"cache{i}"  # a fresh, empty cache per cold start
            results["cold"].append(_start(args.config, cache, Path(tmp), overrides))
            results["warm"].append(_start(args.config, cache, Path(tmp), overrides))
            print(f"start {i + 1}: cold {results['cold'][-1]}, warm {results['warm'][-1]}", flush=True)
    keys = ("imported", "prepared", "step")
    med = {mode: {k: statistics.median(r[k] for r in runs) for k in keys} for mode, runs in results.items()}
    print(f"\n{args.config}, median of {args.repeats} starts each")
    print(
        "| start | to imported (torch, transformers, moemix) | to prepared (data, model, Trainer) | to end of step 1 |"
    )
    print("|---|---:|---:|---:|")
    for mode in ("cold", "warm"):
        print(
            f"| {mode} cache | {med[mode]['imported']:.1f} s | {med[mode]['prepared']:.1f} s | "
            f"{med[mode]['step']:.1f} s |"
        )
    print("| warm / cold | " + " | ".join(f"{med['warm'][k] / med['cold'][k]:.2f}" for k in keys) + " |")
    warm = med["warm"]
    print(
        f"warm start: imports {warm['imported'] / warm['step']:.0%}, "
        f"preparing {(warm['prepared'] - warm['imported']) / warm['step']:.0%}, "
        f"initial dev loss and step 1 {(warm['step'] - warm['prepared']) / warm['step']:.0%}"
    )


if __name__ == "__main__":
    main()
