"""Mixing strategies compared on one GPU in under 10 minutes: SmolLM2-135M upcycled to an 8-expert Mixtral,
fine-tuned on the four real data types of ../shared/data, each strategy with each seed, same data and budget.

One command on a machine with one CUDA GPU (after `make install`):

    .venv/bin/python benchmarks/gpu/compare_strategies.py --out runs/gpu_compare

What it does:
1. writes DIR/config.yaml: configs/real_mix.yaml (ShareGPT, FLAN CoT, GSM8K, Code Alpaca, each with its dev
   split) with the model replaced by `builtin:smollm2` upcycled in copy mode to 8 experts, top-2, every layer
   MoE (a Mixtral, about 690 M parameters, all trained), bf16, max_length 1024;
2. runs the comparison: `moemix compare` when this moemix has it (resumable), else `moemix train` once per
   strategy and seed (a finished run, one with metrics.json, is skipped);
3. writes DIR/summary.csv (one row per run: strategy, seed, dev loss per dataset and their mean, tokens seen
   per dataset, wall time), DIR/summary.md (mean and spread over seeds, difference to uniform),
   DIR/dev_loss.png (final dev loss per dataset and strategy) and DIR/weights.png (the weights over training
   of the first seed of each strategy). Code Alpaca is CC BY-NC 4.0: say so where these results are published.

Budget: the defaults (3 strategies x 2 seeds x 150 steps of 16 x 1024 tokens) are sized for an H100/H200-class
GPU; --steps, --strategies and --seeds trade coverage for time. The script prints each run's wall time and the
total, and the time left of --budget-minutes after each run. ``--quick``: uniform and dynamic, one seed, 40 steps.

``--tiny`` runs the same pipeline on any device, CPU included, with a tiny random-init Mixtral on the built-in
domains (no ../shared/data, no model download, a few seconds a run): what the tests run, so that a session that
is lent a GPU spends it on measurement, not on fixing this script.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MOEMIX = [sys.executable, "-m", "moemix.cli"]


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


def build_tiny_config(out: Path, steps: int, batch: int, max_length: int) -> Path:
    """DIR/config.yaml: the same sizes of run, with a tiny random-init Mixtral on the built-in domains (any device)."""
    config = json.loads(json.dumps(TINY))
    config["max_length"] = max_length
    config["mixing"].update({"interval": max(steps // 2, 1), "probe_batches": 1, "probe_batch_size": batch})
    config["training"].update(
        {
            "max_steps": steps,
            "per_device_train_batch_size": batch,
            "per_device_eval_batch_size": batch,
            "logging_strategy": "no",
            "dataloader_num_workers": 0,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build_config(out: Path, steps: int, batch: int, max_length: int) -> Path:
    """DIR/config.yaml: the real four-type mix with the upcycled SmolLM2 MoE, sized for one GPU."""
    config = yaml.safe_load((REPO / "configs" / "real_mix.yaml").read_text(encoding="utf-8"))
    for ds in config["datasets"]:  # paths in real_mix.yaml are relative to the repository root
        for key in ("path", "dev_path"):
            value = ds.get(key)
            if isinstance(value, str):
                ds[key] = str((REPO / value).resolve())
            elif isinstance(value, list):
                ds[key] = [str((REPO / v).resolve()) for v in value]
    config["model"] = {
        "name_or_path": "builtin:smollm2",
        "upcycle": {"experts": 8, "top_k": 2, "layers": "all", "mode": "copy", "seed": 0},
    }
    config["max_length"] = max_length
    config["eval_batches"] = 8
    config["mixing"].update({"interval": max(steps // 10, 1), "probe_batches": 4, "probe_batch_size": 16})
    config["training"].update(
        {
            "max_steps": steps,
            "per_device_train_batch_size": batch,
            "per_device_eval_batch_size": 16,
            "learning_rate": 5.0e-5,
            "warmup_steps": max(steps // 20, 1),
            "bf16": True,
            "logging_steps": 10,
            "dataloader_num_workers": 2,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def has_compare() -> bool:
    """Whether this moemix has the `compare` subcommand."""
    probe = subprocess.run([*MOEMIX, "compare", "--help"], capture_output=True, text=True)
    return probe.returncode == 0


def run_all(config: Path, out: Path, strategies: list[str], seeds: list[int], budget_s: float) -> None:
    """Every strategy with every seed: through `moemix compare`, or one `moemix train` each."""
    started = time.perf_counter()
    if has_compare():
        cmd = [*MOEMIX, "compare", str(config), "--strategies", ",".join(strategies),
               "--seeds", ",".join(map(str, seeds)), "--out", str(out / "runs")]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        return
    for strategy in strategies:
        for seed in seeds:
            run = out / "runs" / f"{strategy}-seed{seed}"
            if (run / "metrics.json").is_file():
                print(f"{run.name}: done before, skipped", flush=True)
                continue
            cmd = [*MOEMIX, "train", str(config), f"--output_dir={run}", f"--mixing.policy={strategy}",
                   f"--seed={seed}", "--training.disable_tqdm=true"]
            if strategy == "static":
                raise SystemExit("static needs mixing.weights: leave it out of --strategies here")
            t0 = time.perf_counter()
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            spent = time.perf_counter() - started
            print(f"{run.name}: {time.perf_counter() - t0:.0f} s; {spent:.0f} s in all, "
                  f"{budget_s - spent:.0f} s of the budget left", flush=True)


def collect(out: Path) -> list[dict]:
    """One row per finished run (a folder with metrics.json under DIR/runs)."""
    rows = []
    for metrics_path in sorted((out / "runs").rglob("metrics.json")):
        run = metrics_path.parent
        metrics = json.loads(metrics_path.read_text())
        strategy, _, seed = run.name.rpartition("-seed")
        names = sorted(metrics["weights"])
        row = {"run": str(run.relative_to(out)), "strategy": strategy or run.name, "seed": seed}
        row |= {f"dev_loss/{n}": metrics[f"eval/{n}/loss"] for n in names}
        row["dev_loss/mean"] = metrics["eval/mean_loss"]
        row |= {f"tokens/{n}": metrics["tokens_seen"][n] for n in names}
        row["wall_time_s"] = metrics["wall_time_s"]
        rows.append(row)
    return rows


def write_summaries(out: Path, rows: list[dict]) -> None:
    """DIR/summary.csv and DIR/summary.md."""
    if not rows:
        raise SystemExit(f"no finished run under {out / 'runs'}")
    with (out / "summary.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    losses = [k for k in rows[0] if k.startswith("dev_loss/")]
    by_strategy: dict[str, list[dict]] = {}
    for row in rows:
        by_strategy.setdefault(row["strategy"], []).append(row)
    base = by_strategy.get("uniform")
    lines = ["| strategy | seeds | " + " | ".join(losses) + " | mean - uniform |", "|---|---:|" + "---:|" * (len(losses) + 1)]
    for strategy, group in by_strategy.items():
        cells = []
        for key in losses:
            values = [r[key] for r in group]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
        delta = "-"
        if base:
            delta = f"{statistics.mean(r['dev_loss/mean'] for r in group) - statistics.mean(r['dev_loss/mean'] for r in base):+.4f}"
        lines.append(f"| {strategy} | {len(group)} | " + " | ".join(cells) + f" | {delta} |")
    text = "Final dev loss (mean ± standard deviation over seeds; lower is better).\n\n" + "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text, encoding="utf-8")
    print(text)


def write_figures(out: Path, rows: list[dict]) -> None:
    """DIR/dev_loss.png and DIR/weights.png (skipped, with a note, when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figures")
        return
    names = [k.split("/", 1)[1] for k in rows[0] if k.startswith("dev_loss/") and k != "dev_loss/mean"]
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(strategies)
    for i, strategy in enumerate(strategies):
        group = [r for r in rows if r["strategy"] == strategy]
        means = [statistics.mean(r[f"dev_loss/{n}"] for r in group) for n in names]
        ax.bar([j + i * width for j in range(len(names))], means, width, label=strategy)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names)
    ax.set_ylabel("final dev loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "dev_loss.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(strategies), figsize=(4 * len(strategies), 3.5), squeeze=False)
    for ax, strategy in zip(axes[0], strategies):
        run = out / next(r["run"] for r in rows if r["strategy"] == strategy)
        log = run / "mixture.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
        for name in names:
            ax.plot([r["step"] for r in records], [r["weights"][name] for r in records], label=name)
        ax.set_title(strategy)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("weight")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "weights.png", dpi=120)
    plt.close(fig)
    print(f"figures: {out / 'dev_loss.png'}, {out / 'weights.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu_compare")
    parser.add_argument("--strategies", default="uniform,random,dynamic")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--fresh", action="store_true", help="delete DIR first (else finished runs are kept)")
    parser.add_argument("--quick", action="store_true", help="uniform and dynamic, one seed, 40 steps")
    parser.add_argument("--tiny", action="store_true", help="tiny random-init model, built-in data, any device")
    args = parser.parse_args()
    if args.quick:
        args.strategies, args.seeds, args.steps = "uniform,dynamic", "1", 40

    import torch

    if not torch.cuda.is_available() and not args.tiny:
        raise SystemExit("no CUDA GPU: this benchmark is for one GPU (the CPU demo is `make demo`; --tiny runs anywhere)")
    from moemix.mixing import POLICIES

    strategies = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in strategies if s not in POLICIES]
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; this moemix has {', '.join(POLICIES)}")
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"{device}; {len(strategies)} strategies x {len(args.seeds.split(','))} "
          f"seeds x {args.steps} steps of {args.batch} x {args.max_length} tokens", flush=True)
    build = build_tiny_config if args.tiny else build_config
    config = build(out, args.steps, args.batch, args.max_length)
    started = time.perf_counter()
    run_all(config, out, strategies, [int(s) for s in args.seeds.split(",")], args.budget_minutes * 60)
    rows = collect(out)
    write_summaries(out, rows)
    write_figures(out, rows)
    print(f"total {time.perf_counter() - started:.0f} s (budget {args.budget_minutes:.0f} min); results in {out}")


if __name__ == "__main__":
    main()
