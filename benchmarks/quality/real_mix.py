"""Real four-type mix: the mixing strategies on ShareGPT, FLAN CoT, GSM8K and Code Alpaca with the upcycled
SmolLM2 MoE, at a fixed token budget, over several seeds; dev loss per dataset and GSM8K exact match.

One command (resumable: a run with metrics.json and gsm8k.json is skipped, a run with only metrics.json gets
its GSM8K score), after `make install`, with ../shared/data beside the repository:

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/real_mix.py --out runs/quality/real_mix
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/real_mix.py --out runs/quality/real_mix_quick --quick

Writes OUT/config.yaml (configs/real_mix.yaml with the model replaced by `builtin:smollm2` upcycled in copy
mode, the last 4 of 30 layers MoE with 8 experts, top-2, only those layers trained), OUT/runs/<strategy>-seed<n>
(each a moemix run folder plus gsm8k.json), OUT/summary.csv, OUT/real_mix.md (the tables) and
OUT/real_mix.png (weights over training, dev loss and GSM8K per strategy). Code Alpaca is CC BY-NC 4.0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import yaml

from moemix.files import read_jsonl, write_json_atomic, write_text_atomic
from moemix.report.summary import markdown, mean_sd, paired_to_baseline, write_csv
from moemix.train.compare import compare, parse_strategy

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
STRATEGIES = "uniform,datasize,random,refloss,odm,dynamic,dynamic/source=online"


def build_config(out: Path, args) -> Path:
    """OUT/config.yaml: configs/real_mix.yaml's datasets with the upcycled SmolLM2 MoE and the budget."""
    config = yaml.safe_load((REPO / "configs" / "real_mix.yaml").read_text(encoding="utf-8"))
    for ds in config["datasets"]:  # real_mix.yaml's paths are relative to the repository root
        for key in ("path", "dev_path"):
            if isinstance(ds.get(key), str):
                ds[key] = str((REPO / ds[key]).resolve())
            elif isinstance(ds.get(key), list):
                ds[key] = [str((REPO / v).resolve()) for v in ds[key]]
    config["model"] = {
        "name_or_path": "builtin:smollm2",
        "upcycle": {"experts": 8, "top_k": 2, "layers": "last:4", "mode": "copy", "seed": 0},
        "trainable_layers": 4,
    }
    config |= {
        "output_dir": str(out / "unused"),
        "max_length": args.max_length,
        "max_tokens": args.tokens,
        "eval_batches": 1,
    }
    if args.gsm8k_problems <= 0:  # nothing reads the trained model
        config["save_model"] = False
    config["mixing"] = {"interval": args.interval, "probe_batches": 1, "probe_batch_size": 4}
    config["training"] = {
        "max_steps": args.max_steps,  # a cap: the token budget ends every run before it
        "per_device_train_batch_size": args.batch,
        "per_device_eval_batch_size": 8,
        "learning_rate": 2.0e-4,
        "lr_scheduler_type": "constant_with_warmup",  # independent of where the budget stops the run
        "warmup_steps": 2,
        "weight_decay": 0.0,
        "logging_strategy": "no",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    path = out / "config.yaml"
    write_text_atomic(path, yaml.safe_dump(config, sort_keys=False))
    return path


def gsm8k_score(model_dir: Path, problems: int, max_new_tokens: int, out_file: Path) -> dict:
    """GSM8K exact match of a model (a run folder or builtin:smollm2) on the first ``problems`` test problems."""
    from moemix.eval.runner import EvalOptions, run_task
    from moemix.eval.target import load_target

    options = EvalOptions(
        tasks=["gsm8k"],
        limit=problems,
        gsm8k_file=str(DATA / "math" / "gsm8k_test.jsonl"),
        max_new_tokens=max_new_tokens,
        batch_size=problems,
    )
    started = time.perf_counter()
    result = run_task("gsm8k", load_target(str(model_dir)), options)
    result["seconds"] = round(time.perf_counter() - started, 1)
    write_json_atomic(out_file, result)
    return result


def gsm8k_table(rows: list[dict], base: dict | None) -> str:
    """GSM8K exact match per strategy, mean ± sd over seeds, paired difference to uniform."""
    by: dict[str, dict[int, dict]] = {}
    for row in rows:
        by.setdefault(row["strategy"], {})[row["seed"]] = row
    lines = [
        "| strategy | seeds | GSM8K exact match | vs uniform (paired) | correct per seed |",
        "|---|---:|---:|---:|---|",
    ]
    if base is not None:
        lines.append(f"| before fine-tuning | - | {base['exact_match']:.3f} | - | {base['correct']}/{base['n']} |")
    uniform = by.get("uniform", {})
    for strategy, runs in by.items():
        em = [r["gsm8k"] for r in runs.values()]
        paired = [runs[s]["gsm8k"] - uniform[s]["gsm8k"] for s in runs if s in uniform]
        vs = "-" if strategy == "uniform" or not paired else mean_sd(paired, 3)
        counts = ", ".join(f"{r['gsm8k_correct']}/{r['gsm8k_n']}" for r in runs.values())
        lines.append(f"| {strategy} | {len(runs)} | {mean_sd(em, 3)} | {vs} | {counts} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], out: Path) -> Path:
    """Weights over training (every seed) of each strategy whose weights are not uniform; each strategy's dev loss
    minus uniform's per dataset with its 95% interval; GSM8K per strategy where it was scored."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = list(dict.fromkeys(r["strategy"] for r in rows))

    def moves(row: dict) -> bool:  # whether a run's weights were ever other than uniform
        path = Path(row["run_dir"]) / "mixture.jsonl"
        log = read_jsonl(path) if path.is_file() else []
        return any(abs(w - 1 / len(r["weights"])) > 1e-6 for r in log for w in r["weights"].values())

    adaptive = [s for s in strategies if any(moves(r) for r in rows if r["strategy"] == s)]
    names = [k.split("/", 1)[1] for k in rows[0] if k.startswith("weight/")]
    scored = any(np.isfinite(float(r["gsm8k"])) for r in rows)
    cols = max(len(adaptive), 3)
    fig = plt.figure(figsize=(3.2 * cols, 6.8))
    grid = fig.add_gridspec(2, cols)
    for i, strategy in enumerate(adaptive):
        ax = fig.add_subplot(grid[0, i])
        for row in (r for r in rows if r["strategy"] == strategy):
            log = read_jsonl(Path(row["run_dir"]) / "mixture.jsonl")
            if not log:
                continue
            start = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())["initial_weights"]
            steps = [0] + [r["step"] for r in log]
            for j, name in enumerate(names):
                ax.plot(
                    steps,
                    [start[name]] + [r["weights"][name] for r in log],
                    color=f"C{j}",
                    alpha=0.7,
                    label=name if row["seed"] == rows[0]["seed"] else None,
                )
        ax.set_title(strategy, fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_ylabel("sampling weight")
            ax.legend(fontsize=7)
    # Bottom: each strategy's dev loss minus uniform's (same seed), per dataset and on the mean, 95% t-interval.
    dev = fig.add_subplot(grid[1, : cols - 1] if scored else grid[1, :])
    others = [s for s in strategies if s != "uniform"]
    columns = [*names, "mean"]
    width = 0.8 / max(len(others), 1)
    for i, strategy in enumerate(others):
        diffs = [paired_to_baseline(rows, strategy, f"dev_loss/{c}") for c in columns]
        dev.bar(
            [j + i * width for j in range(len(columns))],
            [d.mean for d in diffs],
            width,
            yerr=[(d.high - d.low) / 2 if d.n > 1 else 0.0 for d in diffs],
            capsize=3,
            label=f"{strategy} (n = {diffs[-1].n} seeds)",
        )
    dev.axhline(0.0, color="black", linewidth=0.8)
    dev.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], columns)
    dev.set_ylabel("dev loss minus uniform's\n(same seed; 95% interval)")
    dev.grid(alpha=0.3, axis="y")
    dev.legend(fontsize=7)
    if scored:
        x = np.arange(len(strategies))
        gsm = fig.add_subplot(grid[1, -1])
        em = [[r["gsm8k"] for r in rows if r["strategy"] == s] for s in strategies]
        gsm.bar(x, [np.mean(e) for e in em], yerr=[np.std(e, ddof=1) if len(e) > 1 else 0 for e in em], color="C7")
        gsm.set_xticks(x, strategies, rotation=45, ha="right", fontsize=7)
        gsm.set_ylabel("GSM8K exact match")
    fig.tight_layout()
    path = out / "real_mix.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/quality/real_mix")
    parser.add_argument("--strategies", default=STRATEGIES)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--tokens", type=int, default=12000, help="token budget of every run (non-padding)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--interval", type=int, default=3, help="optimizer steps between mixture updates")
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument(
        "--gsm8k-problems", type=int, default=30, help="the first N problems of gsm8k_test.jsonl (0: none)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--keep-models", action="store_true", help="keep each run's model (about 880 MB each)")
    parser.add_argument(
        "--summary-only", action="store_true", help="tables and plot of the finished runs; train nothing"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="uniform and dynamic, seed 1, 1,500 tokens, an update "
        "every 2 steps, 1 GSM8K problem of 32 new tokens: a smoke run of the whole study, not a result",
    )
    args = parser.parse_args()
    if args.quick:
        args.strategies, args.seeds, args.tokens, args.interval = "uniform,dynamic", "1", 1500, 2
        args.gsm8k_problems, args.max_new_tokens = 1, 32
    if not DATA.is_dir():
        raise SystemExit(f"{DATA}: not found; this study reads the real data files beside the repository")
    out = Path(args.out)
    config = build_config(out, args)
    strategies = args.strategies.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    base_file = out / "gsm8k_before.json"
    if args.summary_only and args.gsm8k_problems > 0 and not base_file.is_file():
        raise SystemExit(f"{base_file}: not found; run the study first")
    scored = args.gsm8k_problems > 0  # 0: dev loss only (GSM8K sits at the floor at CPU budgets)
    if scored:
        base = (
            json.loads(base_file.read_text())
            if base_file.is_file()
            else gsm8k_score("builtin:smollm2", args.gsm8k_problems, args.max_new_tokens, base_file)
        )
        print(f"[real_mix] GSM8K before fine-tuning: {base['correct']}/{base['n']}", flush=True)
    else:
        base = None
    rows = []
    for seed in seeds:  # seed by seed, so that a stopped study has whole seeds
        for spec in strategies:
            run_dir = out / "runs" / f"{parse_strategy(spec).label}-seed{seed}"
            score_file = run_dir / "gsm8k.json"
            if args.summary_only and not (score_file if scored else run_dir / "metrics.json").is_file():
                continue
            row = compare(config, [spec], [seed], out / "runs")[0]
            if not score_file.is_file() and scored:
                gsm8k_score(run_dir, args.gsm8k_problems, args.max_new_tokens, score_file)
            if not args.keep_models:
                shutil.rmtree(run_dir / "model", ignore_errors=True)
            unscored = {"exact_match": float("nan"), "correct": "-", "n": 0, "seconds": 0.0}
            score = json.loads(score_file.read_text()) if score_file.is_file() else unscored
            row |= {
                "gsm8k": score["exact_match"],
                "gsm8k_correct": score["correct"],
                "gsm8k_n": score["n"],
                "gsm8k_s": score["seconds"],
            }
            rows.append(row)
            print(
                f"[real_mix] {row['strategy']} seed {seed}: mean dev loss {row['dev_loss/mean']:.4f}, "
                f"GSM8K {score['correct']}/{score['n']}, {row['steps']} steps, "
                f"{time.perf_counter() - started:.0f} s so far",
                flush=True,
            )
    write_csv(out / "summary.csv", rows)
    header = (
        f"Real four-type mix, upcycled SmolLM2-135M-Instruct (last 4 of 30 layers MoE, 8 experts, top-2, only "
        f"those trained), budget {args.tokens:,} tokens per run (batches of {args.batch}, max {args.max_length} "
        f"tokens), update every {args.interval} steps, "
        f"strategies {', '.join(parse_strategy(s).label for s in strategies)}, "
        f"seeds {args.seeds}; {platform.machine()} CPU ({os.cpu_count()} cores); {len(rows)} runs, "
        f"{sum(r['wall_time_s'] for r in rows) / 60:.0f} min of training and dev loss, "
        f"{sum(r['gsm8k_s'] for r in rows) / 60:.0f} min of GSM8K.\n\n"
    )
    text = header + markdown(rows)
    if scored:
        text += (
            "\nGSM8K exact match, first "
            + f"{args.gsm8k_problems} test problems, greedy, zero-shot:\n\n"
            + gsm8k_table(rows, base)
        )
    write_text_atomic(out / "real_mix.md", text)
    print(text)
    print(plot(rows, out))


if __name__ == "__main__":
    main()
