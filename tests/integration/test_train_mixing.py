"""Real Trainer, tiny real MoE models: the weights change at the configured interval and nowhere else."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import TrainerCallback

from moemix.config import load_config
from moemix.files import read_jsonl
from moemix.testing import tiny_run_config
from moemix.train import prepare_run


def config_text(arch, interval, steps):
    return tiny_run_config(
        ("dialogue", "math", "code"),
        120,
        arch=arch,
        seed=3,
        mixing={"interval": interval, "probe_batches": 2},
        training={"max_steps": steps, "learning_rate": 0.003},
    )


class WeightsEachStep(TrainerCallback):
    """Records the sampler's weights at the end of every optimizer step (after the mixing callback)."""

    def __init__(self, sampler):
        self.sampler, self.by_step = sampler, {}

    def on_step_end(self, args, state, control, **kwargs):
        self.by_step[state.global_step] = self.sampler.weights


@pytest.mark.parametrize("arch", ["mixtral", "qwen2_moe", "olmoe"])
def test_weights_change_only_at_interval(arch, tmp_path):
    interval, steps = 4, 12
    config = load_config(text=config_text(arch, interval, steps), overrides=[f"--output_dir={tmp_path / 'run'}"])
    run = prepare_run(config)
    recorder = WeightsEachStep(run.sampler)
    run.trainer.add_callback(recorder)
    result = run.train()

    uniform = np.full(3, 1 / 3)
    previous = uniform
    for step in range(1, steps + 1):
        current = recorder.by_step[step]
        changed = not np.allclose(current, previous, atol=1e-12)
        assert changed == (step % interval == 0), f"step {step}: changed={changed}"
        previous = current

    log = read_jsonl(tmp_path / "run" / "mixture.jsonl")
    assert [r["step"] for r in log] == [4, 8, 12]
    for record in log:
        assert list(record["weights"]) == ["dialogue", "math", "code"]
        assert abs(sum(record["weights"].values()) - 1) < 1e-9
        experts = len(next(iter(record["loads"].values())))
        assert all(len(v) == experts and abs(sum(v) - 1) < 1e-9 for v in record["loads"].values())
        d = np.array(record["distances"])
        assert d.shape == (3, 3) and np.allclose(d, d.T) and np.all(np.diag(d) == 0)
        np.testing.assert_allclose(list(record["weights"].values()), recorder.by_step[record["step"]])
    assert not np.allclose(list(log[-1]["weights"].values()), uniform, atol=1e-3)

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("dialogue", "math", "code"):
        assert np.isfinite(metrics[f"eval/{name}/loss"])
        # Training lowers every dataset's dev loss from the random-init start.
        assert metrics[f"eval/{name}/loss"] < metrics[f"eval_initial/{name}/loss"]
    np.testing.assert_allclose(list(metrics["weights"].values()), list(log[-1]["weights"].values()))
    assert sum(metrics["draws"].values()) == steps * 4
    assert result.updates == 3
