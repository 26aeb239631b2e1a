"""Mixing strategies compared on one GPU in one call of under 9 minutes: SmolLM2-135M-Instruct upcycled to an
8-expert Mixtral (every layer MoE, all ~690 M parameters trained), fine-tuned on the four real data types of
../shared/data, each strategy with each seed, same data, dev examples and budget.

One command on a machine with one CUDA GPU (after `make install`):

    .venv/bin/python benchmarks/gpu/compare_strategies.py --out runs/gpu_compare

What it does:
1. writes DIR/config.yaml: configs/real_mix.yaml (ShareGPT, FLAN CoT, GSM8K, Code Alpaca, each with its dev
   split) with the model replaced by ``builtin:smollm2`` upcycled in copy mode to 8 experts, top-2, every layer
   MoE, bf16; the models are not saved (only the metrics are compared);
2. runs ``moemix compare`` in this process one seed at a time (every strategy of seed 1, then of seed 2, ...),
   so that whatever the budget cuts off, the finished seeds stay paired; finished runs are skipped (resumable);
   a seed is started only if the time it took the last one still fits in ``--budget-minutes``;
3. writes DIR/runs/summary.md (per strategy: dev loss per dataset, the paired difference to uniform with its
   95% intervals and the smallest detectable difference: moemix compare's own table), DIR/summary.csv,
   DIR/dev_loss.png and DIR/weights.png. Code Alpaca is CC BY-NC 4.0: say so where results are published.

``--strategies`` takes compare's specs: ``uniform,dynamic,dynamic/eta=3,dynamic/noise_aware=true``.
``--quick``: uniform and dynamic, one seed, 20 steps. ``--tiny`` runs the same pipeline on any device, CPU
included, with a tiny random-init Mixtral on the built-in domains (no ../shared/data, no model file, seconds a
run): what the tests run, so that a session that is lent a GPU spends it on measurement, not on fixing this.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = "../shared/data"

TINY = {
    "seed": 1,
    "eval_batches": 1,
    "datasets": [{"name": n, "path": f"builtin:{n}", "max_examples": 120} for n in ("dialogue", "nlp", "math", "code")],
    "model": {
        "tiny": "mixtral",
        "tokenizer": "builtin",
        "vocab_size": 512,
        "tiny_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_local_experts": 4},
    },
    "mixing": {"policy": "dynamic"},
    "training": {"learning_rate": 1.0e-3},
}


def _sized(config: dict, steps: int, batch: int, max_length: int, updates: int) -> dict:
    """The run's size: steps of ``batch`` examples cut at ``max_length``, ``updates`` mixture updates."""
    config["max_length"] = max_length
    config["save_model"] = False
    config["mixing"].update({"interval": max(steps // updates, 1), "probe_batches": 2, "probe_batch_size": batch})
    config["training"].update(
        {
            "max_steps": steps,
            "per_device_train_batch_size": batch,
            "per_device_eval_batch_size": batch,
            "logging_strategy": "no",
            "disable_tqdm": True,
            "dataloader_num_workers": 0,
        }
    )
    return config


def build_tiny_config(steps: int, batch: int, max_length: int, data: Path) -> dict:
    """A tiny random-init Mixtral on the built-in domains (any device), sized like the real run."""
    return _sized(json.loads(json.dumps(TINY)), steps, batch, max_length, updates=2)


def build_config(steps: int, batch: int, max_length: int, data: Path) -> dict:
    """The real four-type mix with the upcycled SmolLM2 MoE trained in full, sized for one GPU."""
    config = yaml.safe_load((REPO / "configs" / "real_mix.yaml").read_text(encoding="utf-8"))
    for ds in config["datasets"]:  # real_mix.yaml names ../shared/data relative to the repository root
        for key in ("path", "dev_path"):
            value = ds.get(key)
            values = [value] if isinstance(value, str) else value
            if values:
                moved = [
                    str(data / v[len(SHARED) + 1 :]) if v.startswith(SHARED) else str((REPO / v).resolve())
                    for v in values
                ]
                ds[key] = moved[0] if isinstance(value, str) else moved
    config["model"] = {
        "name_or_path": "builtin:smollm2",
        "upcycle": {"experts": 8, "top_k": 2, "layers": "all", "mode": "copy", "seed": 0},
    }
    config["eval_batches"] = 4
    config["training"] = {
        "learning_rate": 5.0e-5,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": 5,
        "weight_decay": 0.0,
        "bf16": True,
    }
    return _sized(config, steps, batch, max_length, updates=5)


def run_seeds(config: Path, out: Path, strategies: list[str], seeds: list[int], budget_s: float) -> list[int]:
    """``moemix compare`` seed by seed while the last seed's time still fits the budget; the seeds finished."""
    from moemix.train.compare import compare

    started, done, last = time.perf_counter(), [], 0.0
    for seed in seeds:
        left = budget_s - (time.perf_counter() - started)
        if done and last > left:
            print(f"seed {seed}: not started ({left:.0f} s left, the last seed took {last:.0f} s)", flush=True)
            break
        t0 = time.perf_counter()
        compare(config, strategies, done + [seed], out / "runs")
        last = time.perf_counter() - t0
        done.append(seed)
        print(f"seed {seed}: {last:.0f} s; {time.perf_counter() - started:.0f} s in all", flush=True)
    return done


def write_figures(out: Path, rows: list[dict]) -> None:
    """DIR/dev_loss.png (per dataset and strategy, the final dev loss's paired difference to uniform with its
    95% interval over seeds) and DIR/weights.png (first seed's weights)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moemix.report.summary import paired_to_baseline

    names = [k.split("/", 1)[1] for k in rows[0] if k.startswith("dev_loss/") and k != "dev_loss/mean"]
    strategies = list(dict.fromkeys(str(r["strategy"]) for r in rows))
    uniform = {r["seed"]: r for r in rows if r["strategy"] == "uniform"}
    others = [s for s in strategies if s != "uniform"] if uniform else strategies
    columns = [*names, "mean"]
    fig, ax = plt.subplots(figsize=(1.8 * len(columns) + 3, 4), layout="constrained")
    width = 0.8 / max(len(others), 1)
    for i, strategy in enumerate(others):
        group = [r for r in rows if r["strategy"] == strategy]
        xs = [j + i * width for j in range(len(columns))]
        if uniform:  # the paired difference to uniform per dataset, with its 95% t-interval over seeds
            diffs = [paired_to_baseline(rows, strategy, f"dev_loss/{c}") for c in columns]
            errors = [0.0 if d.n < 2 else (d.high - d.low) / 2 for d in diffs]
            ax.bar(xs, [d.mean for d in diffs], width, yerr=errors, capsize=3, label=f"{strategy} ({len(group)} seeds)")
        else:
            means = [sum(float(r[f"dev_loss/{c}"]) for r in group) / len(group) for c in columns]
            ax.bar(xs, means, width, label=f"{strategy} ({len(group)} seeds)")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], columns)
    if uniform:
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_ylabel("final dev loss minus uniform's\n(same seed; bars: 95% t-interval; < 0: better)")
    else:
        ax.set_ylabel("final dev loss (mean over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(out / "dev_loss.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(
        1, len(strategies), figsize=(3.6 * len(strategies) + 2, 3.4), squeeze=False, layout="constrained", sharey=True
    )
    for ax, strategy in zip(axes[0], strategies):
        run = Path(next(r["run_dir"] for r in rows if r["strategy"] == strategy))
        log = run / "mixture.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
        for name in names:
            ax.plot(
                [0] + [r["step"] for r in records],
                [1 / len(names)] + [r["weights"][name] for r in records],
                label=name,
                drawstyle="steps-post",
            )
        ax.set_title(strategy, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("weight")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(out / "weights.png", dpi=120)
    plt.close(fig)
    print(f"figures: {out / 'dev_loss.png'}, {out / 'weights.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu_compare")
    parser.add_argument("--strategies", default="uniform,dynamic,dynamic/noise_aware=true")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--budget-minutes", type=float, default=7.0, help="no seed is started past it")
    parser.add_argument("--data", default=None, help=f"folder of the four data types (default: {SHARED})")
    parser.add_argument("--fresh", action="store_true", help="delete DIR first (else finished runs are kept)")
    parser.add_argument("--quick", action="store_true", help="uniform and dynamic, one seed, 20 steps")
    parser.add_argument("--tiny", action="store_true", help="tiny random-init model, built-in data, any device")
    args = parser.parse_args()
    if args.quick:
        args.strategies, args.seeds, args.steps = "uniform,dynamic", "1", 20

    import torch

    if not torch.cuda.is_available() and not args.tiny:
        raise SystemExit(
            "no CUDA GPU: this benchmark is for one GPU (the CPU demo is `make demo`; --tiny runs anywhere)"
        )
    from moemix.train.compare import parse_strategy

    strategies = [s for s in args.strategies.split(",") if s]
    for spec in strategies:
        parse_strategy(spec)  # an unknown policy or malformed spec stops here, before anything runs
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"{device}; {len(strategies)} strategies x {len(seeds)} seeds x {args.steps} steps of "
        f"{args.batch} x {args.max_length} tokens",
        flush=True,
    )
    data = Path(args.data) if args.data else (REPO / SHARED).resolve()
    build = build_tiny_config if args.tiny else build_config
    config = out / "config.yaml"
    config.write_text(
        yaml.safe_dump(build(args.steps, args.batch, args.max_length, data), sort_keys=False), encoding="utf-8"
    )
    started = time.perf_counter()
    finished = run_seeds(config, out, strategies, seeds, args.budget_minutes * 60)
    with (out / "runs" / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    shutil.copy(out / "runs" / "summary.csv", out / "summary.csv")
    shutil.copy(out / "runs" / "summary.md", out / "summary.md")
    write_figures(out, rows)
    print((out / "summary.md").read_text())
    print(
        f"seeds finished: {finished}; total {time.perf_counter() - started:.0f} s "
        f"(budget {args.budget_minutes:.0f} min); results in {out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
