"""Gate loads of a model over a config's datasets, without training: the picture before the first step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moemix.config import Config, where_set
from moemix.data.load import load_data, training_texts
from moemix.data.mixture import MixtureCollator, fixed_batches
from moemix.errors import ConfigError
from moemix.files import write_json_atomic
from moemix.mixing import normalise_loads, pairwise_l2
from moemix.models import build_tokenizer, check_model_source, load_model
from moemix.report.plots import plot_distances, plot_loads
from moemix.train.callback import probe_loads


def inspect_model(config: Config, out: str | Path) -> list[Path]:
    """Probe every dataset's dev batches once and draw loads.png and distances.png; returns the files."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"inspect --out {out}: is a file, not a folder; choose another --out")
    check_model_source(config.model, lambda path: where_set(config, path))
    tokenizer = build_tokenizer(config.model, lambda: training_texts(config))
    data = load_data(config, tokenizer)
    model = load_model(config.model, tokenizer)
    names = [ds.name for ds in config.datasets]
    collator = MixtureCollator(pad_token_id=tokenizer.pad_token_id)
    size = config.mixing.probe_batch_size or int(config.training.get("per_device_eval_batch_size", 8))
    probe = [list(fixed_batches(item.dev, size, config.mixing.probe_batches, collator)) for item in data]
    counts = probe_loads(
        model, probe, config.mixing.layers, config.mixing.router_module, config.mixing.count_prompt_tokens
    )
    probs = normalise_loads(counts)
    record = {
        "step": 0,
        "weights": {n: 1.0 / len(names) for n in names},
        "loads": {n: row.tolist() for n, row in zip(names, probs)},
        "distances": pairwise_l2(probs).tolist(),
    }
    out.mkdir(parents=True, exist_ok=True)  # only now: a bad input above leaves no empty folder behind
    write_json_atomic(
        out / "loads.json", record | {"counts": {n: row.tolist() for n, row in zip(names, np.asarray(counts))}}
    )
    plot_loads([record], out / "loads.png")
    plot_distances([record], out / "distances.png")
    return [out / "loads.json", out / "loads.png", out / "distances.png"]
