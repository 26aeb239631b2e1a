"""data.packing: the same draws as without packing, the same training losses (packed rows attend within each
example), the same tokens seen, routing signal and training-loss signal per dataset, in fewer padded tokens."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import TrainerCallback

from moemix.config import load_config
from moemix.files import read_jsonl
from moemix.testing import tiny_run_config
from moemix.train import prepare_run


def config_text(arch, policy, source):
    return tiny_run_config(
        ("dialogue", "math", "code"),
        100,
        arch=arch,
        seed=4,
        max_length=384,
        log_draws=True,
        mixing={"policy": policy, "source": source, "interval": 3},
        training={
            "max_steps": 9,
            "per_device_train_batch_size": 6,
            "learning_rate": 0.003,
            "logging_strategy": None,
            "logging_steps": 1,
        },
    )


class RowsPerStep(TrainerCallback):
    """Counts the padded positions each training batch had (rows x width)."""

    def __init__(self, trainer):
        self.positions = 0
        original = trainer.compute_loss

        def counting(model, inputs, *args, **kwargs):
            if model.training:
                self.positions += inputs["input_ids"].numel()
            return original(model, inputs, *args, **kwargs)

        trainer.compute_loss = counting


def train(tmp_path, name, arch, policy, source, packing):
    config = load_config(
        text=config_text(arch, policy, source),
        overrides=[f"--output_dir={tmp_path / name}", f"--data.packing={packing}"],
    )
    run = prepare_run(config)
    # float64: in float32 the padded and packed forwards round differently (other shapes, other reduction orders,
    # ~1e-7 relative per forward, grown by Adam to ~1e-3 in the router logits after a few steps), and a token whose
    # top-2 router logits lie closer than that (a gap of 1.2e-5 was seen, qwen2_moe at step 9) flips its expert:
    # one count in ~1,700 moves, and the weights with it. In float64 the two runs' router logits agree to ~4e-16,
    # ten orders below the smallest top-k gap of these runs, so every routing decision is the same and the
    # comparison below is exact. (torch's grouped_mm has no float64 kernel: the experts run as a loop instead.)
    run.trainer.model.set_experts_implementation("eager")
    run.trainer.model.double()
    rows = RowsPerStep(run.trainer)
    run.train()
    losses = [e["loss"] for e in run.trainer.state.log_history if "loss" in e]
    metrics = json.loads((tmp_path / name / "metrics.json").read_text())
    draws = (tmp_path / name / "draws.jsonl").read_text()
    return losses, metrics, draws, rows.positions


@pytest.mark.parametrize(
    ("arch", "policy", "source"),
    [("mixtral", "dynamic", "online"), ("qwen2_moe", "dynamic", "online"), ("mixtral", "odm", "probe")],
)
def test_packed_training_equals_padded_training(arch, policy, source, tmp_path):
    padded = train(tmp_path, "padded", arch, policy, source, False)
    packed = train(tmp_path, "packed", arch, policy, source, True)
    loss_a, metrics_a, draws_a, positions_a = padded
    loss_b, metrics_b, draws_b, positions_b = packed
    assert len(loss_a) == len(loss_b) == 9
    np.testing.assert_allclose(loss_b, loss_a, rtol=2e-4)
    # The signal (online routing counts, or the odm window loss per dataset) moved the weights the same way,
    # so the runs drew the same examples at every step.
    assert draws_a == draws_b
    w_a, w_b = metrics_a["weights"], metrics_b["weights"]
    assert max(abs(w_a[k] - w_b[k]) for k in w_a) < 1e-12
    log_a, log_b = (read_jsonl(tmp_path / name / "mixture.jsonl") for name in ("padded", "packed"))
    if policy == "dynamic":
        assert not np.allclose(list(w_a.values()), 1 / 3, atol=1e-3)
        # Every token was routed to the same experts: the online counts of every window are equal.
        assert [r["loads"] for r in log_a] == [r["loads"] for r in log_b]
    else:  # odm: the per-dataset training loss of every window, measured from packed rows, is the same
        for a, b in zip(log_a, log_b, strict=True):
            np.testing.assert_allclose(list(b["train_loss"].values()), list(a["train_loss"].values()), rtol=2e-4)
    assert metrics_a["tokens_seen"] == metrics_b["tokens_seen"]
    assert positions_b < positions_a  # the point of packing: fewer padded positions for the same tokens
