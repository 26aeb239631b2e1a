"""Time of the CPU demo (``moemix demo``: SmolLM2 upcycled, last 4 of 30 layers trained) as the recipe runs it,
and with a frozen-prefix cache on its probe and dev-loss batches (:class:`moemix.models.prefix.FrozenPrefix`).

Each run is a fresh Python process (imports not timed: they are the same for both); variants alternate over
``--rounds`` so that machine noise falls on both alike. Phases, as CPU seconds of the process and wall seconds:

- prepare: data, model (read from the cache; the first run of all builds it), Trainer;
- dev loss before: the first dev-loss pass (with the cache it also records the frozen layers' output);
- steps: the optimizer steps without the mixture updates;
- updates: the mixture updates (the probe forwards and the policy);
- dev loss after: the final dev-loss pass, plus saving the model and the plots.

The weights and dev losses of both variants are printed: the weights must be equal (the same probe counts), the
dev losses equal within float tolerance.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/demo_time.py
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/demo_time.py --quick   # 6 steps, 1 round: < 3 min
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

VARIANTS = ("recipe", "prefix")
PHASES = ("prepare", "dev loss before", "steps", "updates", "dev loss after")


def _clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def child(variant: str, out: Path, overrides: list[str], result: Path) -> None:
    """One demo run; writes the phase times, weights and dev losses as JSON to ``result``."""
    from transformers import TrainerCallback

    from moemix.config import load_config
    from moemix.logs import quiet_libraries
    from moemix.models.prefix import FrozenPrefix
    from moemix.train.run import prepare_run

    quiet_libraries()
    text = resources.files("moemix").joinpath("demo.yaml").read_text(encoding="utf-8")
    marks: dict[str, tuple[float, float]] = {"start": _clocks()}
    run = prepare_run(load_config(text=text, overrides=[f"--output_dir={out}", *overrides]))
    if variant == "prefix":
        prefix = FrozenPrefix(run.trainer.model)
        run.eval_batches = {name: prefix.batches(batches) for name, batches in run.eval_batches.items()}
        run.callback.probe_batches = [prefix.batches(batches) for batches in run.callback.probe_batches]
    marks["prepared"] = _clocks()
    interval = run.callback.interval
    updates = [0.0, 0.0]

    class Before(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            marks["train begin"] = _clocks()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % interval == 0:
                self.started = _clocks()

    class After(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % interval == 0:
                now = _clocks()
                updates[0] += now[0] - before.started[0]
                updates[1] += now[1] - before.started[1]

        def on_train_end(self, args, state, control, **kwargs):
            marks["train end"] = _clocks()

    before = Before()
    callbacks = run.trainer.callback_handler.callbacks
    callbacks.insert(callbacks.index(run.callback), before)
    run.trainer.add_callback(After())
    result_run = run.train()
    marks["end"] = _clocks()

    def span(a: str, b: str) -> list[float]:
        return [marks[b][i] - marks[a][i] for i in range(2)]

    training = span("train begin", "train end")
    times = {
        "prepare": span("start", "prepared"),
        "dev loss before": span("prepared", "train begin"),
        "steps": [training[i] - updates[i] for i in range(2)],
        "updates": updates,
        "dev loss after": span("train end", "end"),
    }
    metrics = result_run.metrics
    names = result_run.names
    result.write_text(
        json.dumps(
            {
                "times": times,
                "weights": metrics["weights"],
                "dev_loss": {n: metrics[f"eval/{n}/loss"] for n in names},
                "dev_loss_initial": {n: metrics[f"eval_initial/{n}/loss"] for n in names},
                "prefix_bytes": prefix.nbytes if variant == "prefix" else 0,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="6 steps, an update every 3, one round")
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.child:
        variant, out, result = args.child
        child(variant, Path(out), overrides, Path(result))
        return
    if args.quick:
        args.rounds = 1
        overrides = ["--max_steps=6", "--mixing.interval=3", *overrides]
    overrides = ["--disable_tqdm=true", *overrides]

    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="moemix-demo-time-") as tmp:
        for r in range(args.rounds):
            order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                result = Path(tmp) / f"{variant}{r}.json"
                cmd = [sys.executable, __file__, "--child", variant, str(Path(tmp) / f"{variant}{r}"), str(result)]
                started = time.perf_counter()
                subprocess.run(
                    [*cmd, *overrides],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=dict(os.environ),
                )
                results[variant].append(json.loads(result.read_text()))
                times = results[variant][-1]["times"]
                shown = ", ".join(f"{p} {times[p][0]:.1f}" for p in PHASES)
                print(
                    f"round {r + 1} {variant}: {time.perf_counter() - started:.0f} s wall; CPU s: {shown}", flush=True
                )

    print(f"\nmedian over {args.rounds} round(s); CPU seconds (wall seconds)")
    print("| phase | recipe | with frozen-prefix cache | ratio (CPU) |")
    print("|---|---:|---:|---:|")
    totals = {}
    for phase in (*PHASES, "total"):
        cells = []
        for variant in VARIANTS:
            if phase == "total":
                cpu = [sum(r["times"][p][0] for p in PHASES) for r in results[variant]]
                wall = [sum(r["times"][p][1] for p in PHASES) for r in results[variant]]
            else:
                cpu = [r["times"][phase][0] for r in results[variant]]
                wall = [r["times"][phase][1] for r in results[variant]]
            cells.append((statistics.median(cpu), statistics.median(wall)))
        totals[phase] = cells
        ratio = cells[1][0] / cells[0][0] if cells[0][0] else float("nan")
        print(
            f"| {phase} | {cells[0][0]:.1f} ({cells[0][1]:.1f}) | {cells[1][0]:.1f} ({cells[1][1]:.1f}) | {ratio:.2f} |"
        )
    first = {v: results[v][0] for v in VARIANTS}
    same_weights = first["recipe"]["weights"] == first["prefix"]["weights"]
    loss_diff = max(
        abs(first["recipe"][key][n] - first["prefix"][key][n])
        for key in ("dev_loss", "dev_loss_initial")
        for n in first["recipe"][key]
    )
    print(
        f"\nfinal weights equal: {same_weights}; largest dev-loss difference: {loss_diff:.2e}; "
        f"recorded hidden states: {first['prefix']['prefix_bytes'] / 1e6:.1f} MB"
    )
    print("weights (recipe):", {n: round(w, 4) for n, w in first["recipe"]["weights"].items()})


if __name__ == "__main__":
    main()
