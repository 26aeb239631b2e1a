"""Several processes train ONE model: 2 ranks with per-device batch B equal 1 rank with batch 2B.

Each launch runs the CLI's own recipe in real processes (torchrun, gloo on the CPU; DeepSpeed ZeRO-2/3 with
DS_ACCELERATOR=cpu) through ``moemix.testing.run_distributed``: every rank writes the parameters it holds at
the end of training, so the test sees each rank's model, not only what rank 0 saves. Plain SGD: Adam would
hide a gradient off by a constant factor (a sum over ranks instead of a mean), SGD moves the parameters by it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from moemix.config import load_config
from moemix.testing import rank_parameters, run_distributed, tiny_run_config
from moemix.train import prepare_run


def config_text(batch: int, model: dict | None = None) -> str:
    return tiny_run_config(
        seed=3,
        max_length=64,
        max_examples=40,
        model=model,
        vocab_size=384,
        mixing={"probe_batches": 2},
        training={
            "max_steps": 6,
            "per_device_train_batch_size": batch,
            "gradient_accumulation_steps": 2,
            "per_device_eval_batch_size": 4,
            "learning_rate": 0.5,
            "optim": "sgd",
        },
    )


def write_config(root: Path, batch: int) -> Path:
    """Runs start from the tiny model saved in ``root/initial`` (ZeRO-3 builds a model from a config already
    partitioned, with other random values than one process would draw: loading makes the start the same)."""
    path = root / f"batch{batch}.yaml"
    path.write_text(config_text(batch, model={"name_or_path": str(root / "initial")}))
    return path


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: one process, per-device batch 4 (the two ranks' 2 + 2)."""
    root = tmp_path_factory.mktemp("dist")
    tiny = root / "tiny.yaml"
    tiny.write_text(config_text(batch=4))
    built = prepare_run(load_config(tiny, [f"--output_dir={root / 'build'}"]))
    built.trainer.model.save_pretrained(root / "initial")
    built.trainer.processing_class.save_pretrained(root / "initial")
    built.folder.release()
    out = root / "single"
    prepare_run(load_config(write_config(root, batch=4), [f"--output_dir={out}"])).train()
    return root, load_file(out / "model" / "model.safetensors")


def assert_one_model(out: Path, reference: dict[str, torch.Tensor], tolerance: float) -> None:
    """Both ranks hold the same parameters, and the saved model is the 1-rank run's."""
    rank0, rank1 = (rank_parameters(out, r) for r in (0, 1))
    between_ranks = max_difference(rank0, rank1)
    from_reference = max_difference(load_file(out / "model" / "model.safetensors"), reference)
    # one model: gradients averaged over the ranks, the same update everywhere
    print(f"between ranks {between_ranks:.2e}, from the 1-rank run {from_reference:.2e}")
    assert between_ranks == 0.0, f"the ranks hold different parameters (up to {between_ranks:.2e} apart)"
    assert from_reference < tolerance, (
        f"2 ranks x batch 2 vs 1 rank x batch 4: parameters differ by up to {from_reference:.2e}"
    )


@pytest.mark.slow  # the 1-rank reference run, then torchrun and two ranks: ~22 s of CPU
def test_two_ranks_train_the_parameters_of_one_rank_with_twice_the_batch(single):
    root, reference = single
    out = root / "ddp"
    proc = run_distributed(write_config(root, batch=2), out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_one_model(out, reference, tolerance=1e-5)


@pytest.mark.deepspeed
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_on_cpu_trains_one_model(single, stage):
    pytest.importorskip("deepspeed")
    root, reference = single
    out = root / stage
    zero = json.loads((Path(__file__).parents[2] / "configs" / "deepspeed" / f"{stage}.json").read_text())
    if stage == "zero3":  # shard every parameter: by default ZeRO-3 keeps tensors under 100k values whole
        zero["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    (root / f"{stage}.json").write_text(json.dumps(zero))
    proc = run_distributed(
        write_config(root, batch=2),
        out,
        overrides=[f"--deepspeed={root / f'{stage}.json'}"],
        env={"DS_ACCELERATOR": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_one_model(out, reference, tolerance=1e-5)
