"""Controlled redundancy: does the dynamic mixture move weight off near-duplicate datasets, and does it help?

Six datasets: the four built-in domains (dialogue, nlp, math, code) plus two near-duplicates of math
(``math_dup1``, ``math_dup2``: the same task and templates, other generated instances), so uniform sampling
spends half its budget on math. The paper's argument predicts that the duplicates route alike, get small
distances, and lose weight, and that the average dev loss over the four distinct tasks is lower at equal steps.
Runs `moemix compare` (resumable: finished runs are skipped) and writes OUT/redundancy.md and OUT/redundancy.png.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/quality/redundancy.py --out runs/quality/redundancy
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from moemix.data.builtin import write_builtin_jsonl
from moemix.files import read_jsonl, write_text_atomic
from moemix.train.compare import compare

DISTINCT = ("dialogue", "nlp", "math", "code")
DUPLICATES = ("math_dup1", "math_dup2")

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
mixing: {{interval: {interval}, probe_batches: 5}}
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


def summarise(rows: list[dict], out: Path) -> str:
    by_strategy: dict[str, list[dict]] = {}
    for row in rows:
        by_strategy.setdefault(row["strategy"], []).append(row)
    table = [
        "| strategy | seeds | mean dev loss, 4 distinct tasks | paired diff to uniform | weight on duplicates (final) | share of tokens on math + duplicates |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    uniform = {r["seed"]: r for r in by_strategy.get("uniform", [])}
    for strategy, runs in by_strategy.items():
        distinct = [np.mean([float(r[f"dev_loss/{d}"]) for d in DISTINCT]) for r in runs]
        paired = [
            np.mean([float(r[f"dev_loss/{d}"]) for d in DISTINCT])
            - np.mean([float(uniform[r["seed"]][f"dev_loss/{d}"]) for d in DISTINCT])
            for r in runs
            if r["seed"] in uniform
        ]
        dup = [sum(float(r[f"weight/{d}"]) for d in DUPLICATES) for r in runs]
        tokens = [
            sum(float(r[f"tokens/{d}"]) for d in ("math", *DUPLICATES)) / sum(float(v) for k, v in r.items() if k.startswith("tokens/"))
            for r in runs
        ]
        sd = lambda xs: f" ± {np.std(xs, ddof=1):.4f}" if len(xs) > 1 else ""  # noqa: E731
        diff = "-" if strategy == "uniform" else f"{np.mean(paired):+.4f}{sd(paired)}"
        table.append(
            f"| {strategy} | {len(runs)} | {np.mean(distinct):.4f}{sd(distinct)} | {diff} | "
            f"{np.mean(dup):.3f}{sd(dup)} | {np.mean(tokens):.3f} |"
        )
    return "\n".join(table) + "\n"


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
            ax.plot(steps, ys, color=f"C{j}", alpha=0.8, label=name if i == 0 else None,
                    linestyle="--" if name in DUPLICATES else "-")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/quality/redundancy")
    parser.add_argument("--strategies", default="uniform,dynamic")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--interval", type=int, default=20)
    parser.add_argument("--train-examples", type=int, default=1500)
    args = parser.parse_args()
    out = Path(args.out)
    datasets = write_data(out, args.train_examples)
    config = out / "config.yaml"
    write_text_atomic(config, CONFIG.format(out=out, datasets="\n".join(datasets), steps=args.steps, interval=args.interval))
    rows = compare(config, args.strategies.split(","), [int(s) for s in args.seeds.split(",")], out / "runs")
    text = summarise(rows, out)
    header = (
        f"Controlled redundancy: {args.steps} steps x 8 sequences (max 256 tokens), tiny random-init Mixtral "
        f"(4 layers, 8 experts, top-2), update every {args.interval} steps; {platform.machine()}, CPU.\n\n"
    )
    write_text_atomic(out / "redundancy.md", header + text)
    print(header + text)
    print(plot(rows, out))
    print(json.dumps({"runs": len(rows)}))


if __name__ == "__main__":
    main()
