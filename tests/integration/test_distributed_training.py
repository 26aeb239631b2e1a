"""Several processes train ONE model: 2 ranks with per-device batch B equal 1 rank with batch 2B.

Each launch runs the CLI's own recipe in real processes (torchrun, gloo on the CPU). A rank writes the
parameters it holds at the end of training, so the test sees every rank's model, not only what rank 0 saves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from moemix.config import load_config
from moemix.train import prepare_run

CONFIG = """
seed: 3
max_length: 64
eval_batches: 1
datasets:
  - {{name: dialogue, path: "builtin:dialogue", max_examples: 40}}
  - {{name: math, path: "builtin:math", max_examples: 40}}
model: {{tiny: mixtral, tokenizer: builtin, vocab_size: 384}}
mixing: {{policy: dynamic, interval: 2, probe_batches: 2, probe_batch_size: 4}}
training:
  max_steps: 6
  per_device_train_batch_size: {batch}
  gradient_accumulation_steps: 2
  per_device_eval_batch_size: 4
  learning_rate: 0.01
  disable_tqdm: true
  logging_strategy: "no"
"""

# Trains through the recipe, then every rank writes the parameters it holds (the bare model, not a wrapper).
DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from safetensors.torch import save_file
    from moemix.cli import main
    from moemix.train import run as run_module

    out = Path(sys.argv[2])
    prepare = run_module.prepare_run

    def prepare_and_dump(config):
        prepared = prepare(config)
        original = prepared.train

        def train():
            result = original()
            rank = prepared.trainer.args.process_index
            params = {k: v.detach().cpu().clone().contiguous() for k, v in prepared.trainer.model.state_dict().items()}
            save_file(params, str(out / f"params.rank{rank}.safetensors"))
            return result

        prepared.train = train
        return prepared

    run_module.prepare_run = prepare_and_dump
    sys.exit(main(["train", sys.argv[1], f"--output_dir={out}", *sys.argv[3:]]))
    """
)


def write_config(root: Path, batch: int) -> Path:
    path = root / f"batch{batch}.yaml"
    path.write_text(CONFIG.format(batch=batch))
    return path


def torchrun(root: Path, config: Path, out: Path, *extra: str, env: dict | None = None):
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    return subprocess.run(
        # --standalone: a free port of its own (other test runs may be launching on this machine too)
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(driver), str(config), str(out), *extra],
        capture_output=True, text=True, timeout=900,
        env=os.environ | {"OMP_NUM_THREADS": "1"} | (env or {}),
    )


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: one process, per-device batch 4 (the two ranks' 2 + 2)."""
    root = tmp_path_factory.mktemp("dist")
    os.environ["MOEMIX_CACHE"] = str(root / "cache")
    out = root / "single"
    prepare_run(load_config(write_config(root, batch=4), [f"--output_dir={out}"])).train()
    return root, load_file(out / "model" / "model.safetensors")


def test_two_ranks_train_the_parameters_of_one_rank_with_twice_the_batch(single):
    root, reference = single
    out = root / "ddp"
    proc = torchrun(root, write_config(root, batch=2), out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (load_file(out / f"params.rank{r}.safetensors") for r in (0, 1))
    between_ranks = max_difference(rank0, rank1)
    from_reference = max_difference(load_file(out / "model" / "model.safetensors"), reference)
    # one model: gradients averaged over the ranks, the same update everywhere
    print(f"between ranks {between_ranks:.2e}, from the 1-rank run {from_reference:.2e}")
    assert between_ranks == 0.0, f"the ranks hold different parameters (up to {between_ranks:.2e} apart)"
    assert from_reference < 1e-5, f"2 ranks x batch 2 vs 1 rank x batch 4: parameters differ by up to {from_reference:.2e}"
