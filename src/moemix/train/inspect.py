"""Gate loads of a model over a config's datasets, without training: the picture before the first step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moemix.config import Config
from moemix.data.load import load_data, training_texts
from moemix.data.mixture import MixtureCollator, fixed_batches
from moemix.files import write_json_atomic
from moemix.mixing import normalise_loads, pairwise_l2
from moemix.models import build_tokenizer, load_model
from moemix.report.plots import plot_distances, plot_loads
from moemix.train.callback import probe_loads


def inspect_model(config: Config, out: str | Path) -> list[Path]:
    """Probe every dataset's dev batches once and draw loads.png and distances.png; returns the files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(config.model, lambda: training_texts(config))
    data = load_data(config, tokenizer)
    model = load_model(config.model, tokenizer)
    names = [ds.name for ds in config.datasets]
    collator = MixtureCollator(pad_token_id=tokenizer.pad_token_id)
    size = config.mixing.probe_batch_size or int(config.training.get("per_device_eval_batch_size", 8))
    probe = [list(fixed_batches(item.dev, size, config.mixing.probe_batches, collator)) for item in data]
    counts = probe_loads(model, probe, config.mixing.layers, config.mixing.router_module, config.mixing.count_prompt_tokens)
    probs = normalise_loads(counts)
    record = {
        "step": 0,
        "weights": {n: 1.0 / len(names) for n in names},
        "loads": {n: row.tolist() for n, row in zip(names, probs)},
        "distances": pairwise_l2(probs).tolist(),
    }
    write_json_atomic(out / "loads.json", record | {"counts": {n: row.tolist() for n, row in zip(names, np.asarray(counts))}})
    plot_loads([record], out / "loads.png")
    plot_distances([record], out / "distances.png")
    return [out / "loads.json", out / "loads.png", out / "distances.png"]
