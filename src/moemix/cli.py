"""The ``moemix`` command: thin wrappers that parse, call the library and print."""

from __future__ import annotations

import argparse
import sys
from importlib import resources

from moemix.errors import MoemixError

DEMO_CONFIG = "demo.yaml"


def _train(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.config import load_config
    from moemix.train.run import quiet_libraries, run_training

    config = load_config(args.config, overrides)
    quiet_libraries()
    result = run_training(config)
    print(summary_table(result))
    return 0


def _demo(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.config import load_config
    from moemix.train.run import quiet_libraries, run_training

    text = resources.files("moemix").joinpath(DEMO_CONFIG).read_text(encoding="utf-8")
    extra = [f"--output_dir={args.out}"]
    if args.max_steps is not None:
        extra.append(f"--training.max_steps={args.max_steps}")
    config = load_config(text=text, overrides=extra + overrides)
    print(
        f"moemix demo: a random-init Mixtral ({config.model.tiny_config.get('num_hidden_layers')} layers, "
        f"{config.model.tiny_config.get('num_local_experts')} experts, top-{config.model.tiny_config.get('num_experts_per_tok')}) "
        f"on {len(config.datasets)} generated instruction domains, {config.training.get('max_steps')} steps, "
        f"dynamic mixing every {config.mixing.interval} steps",
        flush=True,
    )
    quiet_libraries()
    result = run_training(config)
    print(summary_table(result))
    return 0


def summary_table(result) -> str:
    """Weights and dev loss per dataset, before and after, as a plain-text table."""
    m = result.metrics
    rows = [("dataset", "weight start", "weight end", "dev loss start", "dev loss end", "tokens seen")]
    for name in result.names:
        rows.append(
            (
                name,
                f"{result.initial_weights[name]:.3f}",
                f"{m['weights'][name]:.3f}",
                f"{m[f'eval_initial/{name}/loss']:.3f}",
                f"{m[f'eval/{name}/loss']:.3f}",
                f"{m['tokens_seen'][name]:,}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = result.output_dir
    lines += [
        "",
        f"{m['global_step']} steps, {result.updates} mixture updates, {m['wall_time_s']:.0f} s",
        f"run folder: {out}  (mixture.jsonl: one line per update; metrics.json; model/)",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moemix",
        description="Instruction-tune MoE language models on several datasets, learning the mixture from routing.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="train with a YAML config",
        description="Train with a YAML config. Any config field can be overridden: --mixing.eta 5, "
        "--training.max_steps=100, datasets.0.path=FILE; TrainingArguments fields also bare: --max_steps 100.",
    )
    train.add_argument("config", help="YAML config file")
    train.set_defaults(run=_train)
    demo = sub.add_parser("demo", help="run the embedded default offline (tiny Mixtral, four generated domains)")
    demo.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    demo.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: 200)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input prints one line and exits 2, with no traceback."""
    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    try:
        return args.run(args, overrides)
    except MoemixError as err:
        print(f"moemix: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
