"""RoutingTelemetry on a plain Trainer (no mixing): per MoE layer and dataset, loads, balance and distances, in the
JSONL and in what report_to's callbacks receive; on several architectures."""

from __future__ import annotations

import numpy as np
import pytest
from integration_runs import model, ranged_datasets
from transformers import Trainer, TrainerCallback, TrainingArguments

from moemix.data.mixture import MixtureCollator
from moemix.files import read_jsonl
from moemix.integrations import RoutingTelemetry
from moemix.mixing import pairwise_distances
from moemix.routing import find_moe_layers


class Reporter(TrainerCallback):
    """Stands for a report_to backend: it is one of the callbacks the Trainer builds its logs for."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


@pytest.mark.parametrize("arch", ["mixtral", "qwen2_moe", "deepseek_v3", "gpt_oss", "granitemoe"])
def test_telemetry_logs_every_layer_and_dataset(tmp_path, arch):
    data = {n: d.map(lambda row: {"labels": row["input_ids"]}) for n, d in ranged_datasets(rows=12).items()}
    train = data["a"]  # a plain run on one dataset; the telemetry probes all three
    tiny = model(arch)
    reporter = Reporter()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(
        model=tiny, args=args, train_dataset=train, data_collator=MixtureCollator(1), callbacks=[reporter]
    )
    RoutingTelemetry(data, interval=2, batch_size=4, max_batches=2, pad_token_id=1).attach(trainer)

    trainer.train()

    records = read_jsonl(tmp_path / "routing.jsonl")
    assert [r["step"] for r in records] == [2, 4]
    layers = find_moe_layers(tiny)
    top_k = tiny.config.num_experts_per_tok
    probed = {n: sum(len(ids) for ids in d["input_ids"][:8]) for n, d in data.items()}
    for record in records:
        assert [layer["layer"] for layer in record["layers"]] == [layer.name for layer in layers]
        for layer in record["layers"]:
            stats = layer["datasets"]
            for name, s in stats.items():
                load = np.array(s["load"])
                assert s["tokens"] == probed[name] * top_k  # every probed token, top_k choices each
                assert load.sum() == pytest.approx(1.0) and 0.0 <= s["entropy"] <= 1.0 and s["cv"] >= 0.0
                assert s["dead"] == np.flatnonzero(load == 0).tolist()
            loads = np.array([s["load"] for s in stats.values()])
            assert np.allclose(layer["distances"], pairwise_distances(loads, "l2"))
            assert max(max(row) for row in layer["distances"]) > 0  # disjoint token ranges route differently
    reported = [log for log in reporter.logs if any(k.startswith("routing/") for k in log)]
    assert len(reported) == 2
    name = layers[-1].name
    for log, record in zip(reported, records):
        entropy = record["layers"][-1]["datasets"]["b"]["entropy"]
        assert log[f"routing/{name}/b/entropy"] == entropy and f"routing/{name}/c/distance" in log
