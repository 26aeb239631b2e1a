"""Controlled redundancy: does the dynamic mixture move weight off near-duplicate datasets, and does it help?

Six datasets: the four built-in domains (dialogue, nlp, math, code) plus two near-duplicates of math
(``math_dup1``, ``math_dup2``: the same task and templates, other generated instances), so uniform sampling
spends half its budget on math. The paper's argument predicts that the duplicates route alike, get small
distances, and lose weight, and that the average dev loss over the four distinct tasks is lower at equal steps.
Runs `moemix compare` (resumable: finished runs are skipped) and writes OUT/redundancy.md, OUT/redundancy.png
(the dynamic weights over training) and OUT/strategies.png (weight on the duplicates and dev loss per strategy).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/redundancy.py --out runs/quality/redundancy
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/redundancy.py --out runs/quality/redundancy_quick --quick

``--strategies ablations`` runs the ablations the paper leaves open on the same setting: update interval,
eta, distance (l2, cosine, js), last MoE layer vs all, and sentence embeddings instead of gate loads:

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/redundancy.py --out runs/quality/ablations \
        --strategies ablations --steps 150 --interval 15 --probe-batches 2
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from moemix.data.builtin import write_builtin_jsonl
from moemix.files import read_jsonl, write_text_atomic
from moemix.report.stats import PairedDifference, format_interval, paired_difference
from moemix.train.compare import compare

DISTINCT = ("dialogue", "nlp", "math", "code")
DUPLICATES = ("math_dup1", "math_dup2")
STUDY = "uniform,dynamic,dynamic/eta=3,dynamic/floor=0.1,dynamic/noise_aware=true,dynamic/source=online"
"""``--strategies study``: the strategies of the five-seed study in docs/BENCHMARKS.md."""
ABLATIONS = (
    "uniform,dynamic,dynamic/interval={half},dynamic/interval={double},dynamic/eta=1,dynamic/eta=3,"
    "dynamic/distance=cosine,dynamic/distance=js,dynamic/layers=all,embedding"
)

CONFIG = """
output_dir: {out}/unused
seed: 1
max_length: 256
datasets:
{datasets}
model:
  tiny: mixtral
  tokenizer: builtin
  vocab_size: 2048
  tiny_config: {{hidden_size: 128, intermediate_size: 256, num_hidden_layers: 4, num_attention_heads: 4,
                num_key_value_heads: 2, num_local_experts: 8, num_experts_per_tok: 2}}
mixing: {{interval: {interval}, probe_batches: {probe_batches}}}
training:
  max_steps: {steps}
  per_device_train_batch_size: 8
  per_device_eval_batch_size: 16
  learning_rate: 0.001
  lr_scheduler_type: cosine
  warmup_steps: 10
  logging_strategy: "no"
  disable_tqdm: true
"""


def write_data(out: Path, train_n: int) -> list[str]:
    """The six datasets as JSONL files; returns the config's dataset lines."""
    lines = []
    for name, domain, seed in [(d, d, 0) for d in DISTINCT] + [("math_dup1", "math", 1), ("math_dup2", "math", 2)]:
        train = write_builtin_jsonl(domain, "train", out / "data" / f"{name}_train.jsonl", n=train_n, seed=seed)
        dev = write_builtin_jsonl(domain, "dev", out / "data" / f"{name}_dev.jsonl", n=64, seed=seed)
        lines.append(f"  - {{name: {name}, path: {train}, dev_path: {dev}}}")
    return lines


def _distinct_loss(row: dict) -> float:
    return float(np.mean([float(row[f"dev_loss/{d}"]) for d in DISTINCT]))


def _paired(runs: list[dict], base: dict[int, dict]) -> PairedDifference:
    return paired_difference([_distinct_loss(r) - _distinct_loss(base[r["seed"]]) for r in runs if r["seed"] in base])


def _cells(diff: PairedDifference) -> str:
    if diff.n == 0:
        return "- | - | - | -"
    sd = f" ± {diff.sd:.4f}" if diff.n > 1 else ""
    detectable = "-" if np.isnan(diff.detectable) else f"{diff.detectable:.4f}"
    excludes = ("**yes**" if diff.excludes_zero else "no") if diff.n > 1 else "-"
    return f"{diff.mean:+.4f}{sd} | {format_interval(diff.low, diff.high)} | {excludes} | {detectable}"


def summarise(rows: list[dict], out: Path) -> str:
    """The study's table: per strategy, the distinct-task dev loss, its paired differences to uniform and to the
    paper's dynamic update with 95% t-intervals, and where the weight and the tokens went."""
    by_strategy: dict[str, list[dict]] = {}
    for row in rows:
        by_strategy.setdefault(row["strategy"], []).append(row)
    table = [
        "| strategy | seeds | mean dev loss, 4 distinct tasks | vs uniform | 95% CI | excludes 0 | detectable "
        "| vs dynamic (paper) | 95% CI | excludes 0 | detectable | weight on duplicates (final) "
        "| share of tokens on math + duplicates |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    uniform = {r["seed"]: r for r in by_strategy.get("uniform", [])}
    paper = {r["seed"]: r for r in by_strategy.get("dynamic", [])}
    for strategy, runs in by_strategy.items():
        distinct = [_distinct_loss(r) for r in runs]
        dup = [sum(float(r[f"weight/{d}"]) for d in DUPLICATES) for r in runs]
        tokens = [
            sum(float(r[f"tokens/{d}"]) for d in ("math", *DUPLICATES))
            / sum(float(v) for k, v in r.items() if k.startswith("tokens/"))
            for r in runs
        ]
        sd = lambda xs: f" ± {np.std(xs, ddof=1):.4f}" if len(xs) > 1 else ""  # noqa: E731
        vs_uniform = "- | - | - | -" if strategy == "uniform" else _cells(_paired(runs, uniform))
        vs_paper = "- | - | - | -" if strategy in ("uniform", "dynamic") else _cells(_paired(runs, paper))
        table.append(
            f"| {strategy} | {len(runs)} | {np.mean(distinct):.4f}{sd(distinct)} | {vs_uniform} | {vs_paper} | "
            f"{np.mean(dup):.3f}{sd(dup)} | {np.mean(tokens):.3f} |"
        )
    note = (
        "\nMean ± standard deviation over seeds. 'vs uniform' and 'vs dynamic (paper)': mean ± sd of the per-seed "
        "difference in the mean dev loss over the four distinct tasks (negative = lower), its 95% t-interval, "
        "whether the interval excludes 0, and the smallest true difference these seeds would detect with 80% "
        "probability (paired two-sided t-test at 5%). Same seed: same initialisation, data order and dev examples.\n"
    )
    return "\n".join(table) + "\n" + note


def plot(rows: list[dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in rows if r["strategy"] == "dynamic"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, row in enumerate(runs):
        log = read_jsonl(Path(row["run_dir"]) / "mixture.jsonl")
        names = list(log[0]["weights"])
        steps = [0] + [r["step"] for r in log]
        for j, name in enumerate(names):
            ys = [1 / len(names)] + [r["weights"][name] for r in log]
            ax.plot(
                steps,
                ys,
                color=f"C{j}",
                alpha=0.8,
                label=name if i == 0 else None,
                linestyle="--" if name in DUPLICATES else "-",
            )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("sampling weight")
    ax.set_title("Dynamic mixture with two near-duplicates of math (dashed), every seed")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "redundancy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_strategies(rows: list[dict], out: Path) -> Path:
    """Per strategy: the final weight on the duplicates (mean ± sd over seeds) and the paired dev-loss difference to
    uniform (mean and its 95% t-interval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    uniform = {r["seed"]: r for r in rows if r["strategy"] == "uniform"}
    distinct = lambda r: np.mean([float(r[f"dev_loss/{d}"]) for d in DISTINCT])  # noqa: E731
    dup = [[sum(float(r[f"weight/{d}"]) for d in DUPLICATES) for r in rows if r["strategy"] == s] for s in strategies]
    diff = [
        [distinct(r) - distinct(uniform[r["seed"]]) for r in rows if r["strategy"] == s and r["seed"] in uniform]
        for s in strategies
    ]
    sd = lambda xs: np.std(xs, ddof=1) if len(xs) > 1 else 0.0  # noqa: E731
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    y = np.arange(len(strategies))
    axes[0].barh(y, [np.mean(v) for v in dup], xerr=[sd(v) for v in dup], color="C1")
    axes[0].axvline(len(DUPLICATES) / (len(DISTINCT) + len(DUPLICATES)), color="k", lw=0.8, ls="--")
    axes[0].set_xlabel("final weight on the two duplicates, ± sd (dashed: uniform)")
    half = [(d.high - d.low) / 2 if d.n > 1 else 0.0 for d in (paired_difference(v) for v in diff)]
    axes[1].barh(y, [np.mean(v) if v else 0 for v in diff], xerr=half, color="C0")
    axes[1].axvline(0, color="k", lw=0.8)
    axes[1].set_xlabel("distinct-task dev loss minus uniform's, 95% interval (< 0: better)")
    for ax in axes:
        ax.set_yticks(y, strategies, fontsize=8)
        ax.invert_yaxis()
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    path = out / "strategies.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/quality/redundancy")
    parser.add_argument("--strategies", default="uniform,dynamic")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--interval", type=int, default=20)
    parser.add_argument("--probe-batches", type=int, default=5)
    parser.add_argument("--train-examples", type=int, default=1500)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="uniform and dynamic, seed 1, 40 steps: the weight "
        "on the duplicates moving, no result (under 3 min on 2 quiet cores)",
    )
    args = parser.parse_args()
    if args.quick:
        args.strategies, args.seeds, args.steps, args.interval, args.probe_batches = "uniform,dynamic", "1", 40, 10, 1
        args.train_examples = 300
    if args.strategies == "study":
        args.strategies = STUDY
    if args.strategies == "ablations":
        args.strategies = ABLATIONS.format(half=max(args.interval // 2, 1), double=args.interval * 2)
    out = Path(args.out)
    datasets = write_data(out, args.train_examples)
    config = out / "config.yaml"
    write_text_atomic(
        config,
        CONFIG.format(
            out=out,
            datasets="\n".join(datasets),
            steps=args.steps,
            interval=args.interval,
            probe_batches=args.probe_batches,
        ),
    )
    rows = compare(config, args.strategies.split(","), [int(s) for s in args.seeds.split(",")], out / "runs")
    text = summarise(rows, out)
    header = (
        f"Controlled redundancy: {args.steps} steps x 8 sequences (max 256 tokens), tiny random-init Mixtral "
        f"(4 layers, 8 experts, top-2), update every {args.interval} steps from {args.probe_batches} probe batches "
        f"of 16 per dataset; {platform.machine()}, CPU.\n\n"
    )
    write_text_atomic(out / "redundancy.md", header + text)
    print(header + text)
    print(plot(rows, out))
    print(plot_strategies(rows, out))
    print(json.dumps({"runs": len(rows)}))


if __name__ == "__main__":
    main()
