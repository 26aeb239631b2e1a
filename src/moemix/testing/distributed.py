"""Run moemix's training recipe in several real processes (torchrun) and read back what every rank holds.

``run_distributed`` launches ``torchrun --standalone`` (a free port of its own) over this module; each process
trains the config through :func:`moemix.train.prepare_run`, as ``moemix train`` does, then writes the full
parameters it holds to ``OUT/params.rank{r}.safetensors`` (DeepSpeed ZeRO-3 shards are gathered first), so a
test can check that the ranks trained one model, not only what rank 0 saved.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch


def run_distributed(
    config: str | Path,
    output_dir: str | Path,
    nproc: int = 2,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """Train ``config`` under ``torchrun --nproc_per_node nproc``; every rank writes its parameters.

    Args:
        config: A moemix YAML config.
        output_dir: The run folder (``--output_dir``).
        nproc: Number of processes.
        overrides: Further command-line overrides (``--deepspeed=...``, ``--training.use_cpu=false``, ...).
        env: Extra environment variables (one thread per process unless given).
        timeout: Seconds before the launch is killed.

    Returns:
        The finished launch (its return code, stdout and stderr).
    """
    command = torchrun(nproc, "-m", "moemix.testing.distributed", str(config), f"--output_dir={output_dir}", *overrides)
    environment = os.environ | {"OMP_NUM_THREADS": "1"} | dict(env or {})
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)


def torchrun(nproc: int, *arguments: str) -> list[str]:
    """The command line that runs ``arguments`` (``-m module ...`` or a script) in ``nproc`` processes.

    It is ``torchrun --standalone --nproc_per_node nproc``, through this Python (``-m torch.distributed.run``),
    so that a free port of its own is used and no ``torchrun`` on the path is needed.
    """
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *arguments]


def rank_parameters(output_dir: str | Path, rank: int) -> dict[str, torch.Tensor]:
    """The parameters rank ``rank`` held at the end of a :func:`run_distributed` run."""
    from safetensors.torch import load_file

    return load_file(Path(output_dir) / f"params.rank{rank}.safetensors")


def _train_and_write(argv: list[str]) -> int:
    from safetensors.torch import save_file

    from moemix.cli import main
    from moemix.train import run as recipe

    out = Path(next(a.split("=", 1)[1] for a in argv if a.startswith("--output_dir=")))
    prepare = recipe.prepare_run

    def prepare_and_write(config):
        prepared = prepare(config)
        train = prepared.train

        def train_and_write():
            result = train()
            trainer = prepared.trainer
            model = trainer.model
            gathered = contextlib.nullcontext()
            if trainer.is_deepspeed_enabled:  # ZeRO-3 leaves a shard on each rank: gather the whole
                import deepspeed

                gathered = deepspeed.zero.GatheredParameters(list(model.parameters()))
            with gathered:
                params = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
            save_file(params, str(out / f"params.rank{trainer.args.process_index}.safetensors"))
            return result

        prepared.train = train_and_write
        return prepared

    recipe.prepare_run = prepare_and_write  # the CLI's own path, with the parameters written at its end
    return main(["train", *argv])


if __name__ == "__main__":
    sys.exit(_train_and_write(sys.argv[1:]))
