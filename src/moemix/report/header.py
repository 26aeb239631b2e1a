"""The report's header in words: what was trained, how it mixed, how far it got, and the weights it ended with.

Read from ``run_config.yaml`` (the resolved config a run writes when it starts) and ``metrics.json`` (written
when it ends); a fact either file lacks is left out rather than guessed.
"""

from __future__ import annotations

from moemix.report.replay import initial_weights, time_averaged_weights
from moemix.report.run_folder import RunFolder

# The mixing fields each policy reads (config.MixingConfig); the header shows those and no others.
POLICY_KNOBS = {
    "dynamic": ("eta", "c", "distance", "criterion", "source", "layers", "load_ema"),
    "embedding": ("eta", "c", "distance", "criterion", "embedding_examples"),
    "refloss": ("eta", "c", "reference"),
    "odm": ("odm_alpha",),
    "static": ("weights", "weights_file"),
    "datasize": ("datasize_by",),
}
LISTED_DATASETS = 12  # more than this: the header counts them and the table lists them


def _number(value) -> str:
    """Integers with thousands separators, floats with up to four significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.4g}"


def duration(seconds: float) -> str:
    """``3 h 05 min``, ``4 min 12 s`` or ``8.4 s``."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def describe_model(model: dict) -> str:
    """One line for the ``model`` section of a config: which model, how it was changed, what trains."""
    if model.get("tiny"):
        shape = ", ".join(f"{k} {_number(v)}" for k, v in (model.get("tiny_config") or {}).items())
        text = f"tiny {model['tiny']}, random init (seed {model.get('seed', 0)})" + (f": {shape}" if shape else "")
    else:
        text = str(model.get("name_or_path") or "unknown")
        if model.get("gguf_file"):
            text += f" ({model['gguf_file']})"
    upcycle = model.get("upcycle")
    if upcycle:
        text += (
            f"; upcycled to {upcycle.get('experts')} experts, top-{upcycle.get('top_k')}, "
            f"layers {upcycle.get('layers')}, {upcycle.get('mode')}"
        )
    if model.get("lora"):
        text += f"; LoRA r={model['lora'].get('r')}"
    if model.get("trainable_layers"):
        text += f"; last {model['trainable_layers']} layers trained"
    if model.get("tokenizer") == "builtin":
        text += f"; builtin tokenizer (vocabulary {_number(model.get('vocab_size'))})"
    return text


def describe_policy(mixing: dict) -> str:
    """The policy and the knobs it reads, e.g. ``dynamic (eta 10, c 0.05, ...), every 100 steps``."""
    name = mixing.get("policy", "?")
    knobs = []
    for key in POLICY_KNOBS.get(name, ()):
        value = mixing.get(key)
        if value is None:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {_number(v)}" for k, v in value.items())
        knobs.append(f"{key} {_number(value)}")
    if mixing.get("count_prompt_tokens") is False and name == "dynamic":
        knobs.append("loads of assistant tokens only")
    if mixing.get("noise_aware") and name == "dynamic":
        knobs.append(f"noise-aware, z {_number(mixing.get('noise_z', 1.0))}")
    if mixing.get("floor"):
        knobs.append(f"floor {_number(mixing['floor'])}")
    if mixing.get("ceiling") not in (None, 1, 1.0):
        knobs.append(f"ceiling {_number(mixing['ceiling'])}")
    if mixing.get("freeze_router"):
        knobs.append("routers frozen")
    text = name + (f" ({', '.join(knobs)})" if knobs else "")
    if mixing.get("interval"):
        text += f", updated every {_number(mixing['interval'])} steps"
    return text


def summary_items(run: RunFolder) -> list[tuple[str, str]]:
    """The header's (label, value) pairs, in reading order."""
    config, metrics = run.config, run.metrics
    training = config.get("training") or {}
    names = run.names
    items: list[tuple[str, str]] = []
    if metrics:
        items.append(("Status", "finished"))
    else:
        items.append(("Status", "not finished (no metrics.json yet): figures up to the last update"))
    if config.get("model"):
        items.append(("Model", describe_model(config["model"])))
    if config.get("mixing"):
        items.append(("Policy", describe_policy(config["mixing"])))
    shown = ", ".join(names) if len(names) <= LISTED_DATASETS else "listed in the table below"
    items.append(("Datasets", f"{len(names)}: {shown}"))
    steps = f"{_number(run.last_step)}"
    if training.get("max_steps") and int(training["max_steps"]) > 0:
        steps += f" of {_number(training['max_steps'])}"
    updates = len(run.records)
    items.append(("Steps", f"{steps}; {updates} mixture update{'s' if updates != 1 else ''}"))
    if metrics.get("tokens_seen"):
        tokens = f"{_number(sum(metrics['tokens_seen'].values()))} trained on"
        if metrics.get("max_tokens"):
            tokens += f" (budget {_number(metrics['max_tokens'])})"
        items.append(("Tokens", tokens))
    if "wall_time_s" in metrics:
        items.append(("Wall time", duration(metrics["wall_time_s"])))
    if "train_loss" in metrics:
        items.append(("Train loss", f"{metrics['train_loss']:.4f} (mean over the run)"))
    start = [metrics.get(f"eval_initial/{n}/loss") for n in names]
    end = [metrics.get(f"eval/{n}/loss") for n in names]
    if None not in start and None not in end:
        mean_start, mean_end = sum(start) / len(start), sum(end) / len(end)
        items.append(("Mean dev loss", f"{mean_start:.4f} → {mean_end:.4f} ({mean_end - mean_start:+.4f})"))
    if "seed" in config:
        items.append(("Seed", str(config["seed"])))
    return items


def weights_table(run: RunFolder) -> list[list[str]]:
    """Header row, then one row per dataset in the run's order: weights, draws, tokens and dev loss. Columns
    the run has no figures for (an unfinished run has no draws or dev loss) are left out."""
    names, metrics = run.names, run.metrics
    final = run.final_weights
    start = dict(zip(names, initial_weights(metrics, names)))
    average = dict(zip(names, time_averaged_weights(run.records, metrics)))
    draws = metrics.get("draws") or {}
    total_draws = sum(draws.values())
    tokens = metrics.get("tokens_seen") or {}

    def loss(key: str, name: str) -> str:
        value = metrics.get(f"{key}/{name}/loss")
        return "" if value is None else f"{value:.4f}"

    def change(name: str) -> str:
        a, b = metrics.get(f"eval_initial/{name}/loss"), metrics.get(f"eval/{name}/loss")
        return "" if a is None or b is None else f"{b - a:+.4f}"

    columns = {
        "dataset": list(names),
        "start weight": [f"{start[n]:.4f}" for n in names],
        "final weight": [f"{final[n]:.4f}" for n in names],
        "time-averaged weight": [f"{average[n]:.4f}" for n in names],
        "share of draws": [f"{draws[n] / total_draws:.4f}" if total_draws and n in draws else "" for n in names],
        "tokens": [_number(tokens[n]) if n in tokens else "" for n in names],
        "dev loss start": [loss("eval_initial", n) for n in names],
        "dev loss end": [loss("eval", n) for n in names],
        "change": [change(n) for n in names],
    }
    kept = [k for k, cells in columns.items() if any(cells)]
    return [kept] + [[columns[k][i] for k in kept] for i in range(len(names))]
