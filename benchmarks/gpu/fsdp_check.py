"""FSDP through the Hugging Face Trainer, checked on GPUs (it cannot run on a CPU, where moemix refuses it).

    python benchmarks/gpu/fsdp_check.py                    # FSDP2 and FSDP1 over every GPU (at most 2)
    python benchmarks/gpu/fsdp_check.py --variants ddp     # the same check for DDP (on CPUs too, over gloo)

Trains the tiny Mixtral of moemix's tests for a few plain-SGD steps through moemix's own recipe: once in one
process with per-device batch N*B (the reference), then under ``torchrun --nproc_per_node N`` with batch B for
each variant. Every rank reports whether the Trainer really ran distributed (and FSDP where asked) and the
full parameters (gathered through accelerate); the script prints, per variant, the max difference from the
reference and between ranks, and exits 1 if a variant was not distributed, not sharded, or differs by more
than 1e-5. With one GPU, FSDP runs over a single rank: that checks the recipe under FSDP's wrapping, hooks
and saving; comparing 2 ranks with 1 needs 2 GPUs. Needs moemix importable (``PYTHONPATH=src``) and no network.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = """
seed: 3
max_length: 128
eval_batches: 1
datasets:
  - {{name: dialogue, path: "builtin:dialogue", max_examples: 40}}
  - {{name: math, path: "builtin:math", max_examples: 40}}
  - {{name: code, path: "builtin:code", max_examples: 40}}
model: {{tiny: mixtral, tokenizer: builtin, vocab_size: 384}}
mixing: {{policy: dynamic, interval: 2, probe_batches: 2, probe_batch_size: 4}}
training:
  max_steps: 6
  per_device_train_batch_size: {batch}
  gradient_accumulation_steps: 2
  per_device_eval_batch_size: 4
  learning_rate: 0.5
  optim: sgd
  disable_tqdm: true
  logging_strategy: "no"
"""

WRAP = "transformer_layer_cls_to_wrap: [MixtralDecoderLayer]"
VARIANTS = {
    "fsdp2": ["--training.fsdp=full_shard auto_wrap", f"--training.fsdp_config={{version: 2, {WRAP}}}"],
    "fsdp1": ["--training.fsdp=full_shard auto_wrap", f"--training.fsdp_config={{version: 1, {WRAP}}}"],
    "ddp": [],
}
TOLERANCE = 1e-5


def rank_driver(config: str, out: str, overrides: list[str]) -> None:
    """One process of a run: train through the recipe, then write what this rank saw and holds."""
    import torch
    from safetensors.torch import save_file

    from moemix.config import load_config
    from moemix.train import prepare_run

    run = prepare_run(load_config(config, [f"--output_dir={out}", *overrides]))
    run.train()
    trainer, args = run.trainer, run.trainer.args
    # every rank takes part in gathering the full parameters (FSDP shards them); rank 0 receives them
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    rank = args.process_index
    report = {
        "rank": rank,
        "world_size": args.world_size,
        "parallel_mode": str(args.parallel_mode),
        "fsdp": bool(trainer.is_fsdp_enabled),
        "device": str(args.device),
    }
    Path(out, f"report.rank{rank}.json").write_text(json.dumps(report))
    if state:
        tensors = {k: v.detach().float().cpu().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}
        save_file(tensors, str(Path(out, f"params.rank{rank}.safetensors")))


def _run(command: list[str], env: dict) -> None:
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-4000:]}")


def _max_difference(a: dict, b: dict) -> float:
    if a.keys() != b.keys():
        return float("inf")
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="fsdp2,fsdp1", help="comma-separated: fsdp2, fsdp1, ddp")
    parser.add_argument("--nproc", type=int, default=None, help="processes (default: GPUs, at most 2; CPU: 2)")
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()

    import torch
    from safetensors.torch import load_file

    nproc = args.nproc or (min(2, torch.cuda.device_count()) if torch.cuda.is_available() else 2)
    root = Path(args.out or tempfile.mkdtemp(prefix="moemix-fsdp-check-"))
    root.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"OMP_NUM_THREADS": "1", "MOEMIX_CACHE": str(root / "cache")}
    me = [sys.executable, str(Path(__file__).resolve()), "--rank-driver"]

    reference_config = root / "reference.yaml"
    reference_config.write_text(CONFIG.format(batch=2 * nproc))
    _run([*me, str(reference_config), str(root / "reference")], env)
    reference = load_file(root / "reference" / "params.rank0.safetensors")
    config = root / "ranks.yaml"
    config.write_text(CONFIG.format(batch=2))

    failed = False
    print(
        f"torch {torch.__version__}, {torch.cuda.device_count()} GPU(s); "
        f"{nproc} process(es) of batch 2 vs 1 of {2 * nproc}"
    )
    for variant in args.variants.split(","):
        out = root / variant
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
        _run([*torchrun, *me[1:], str(config), str(out), *VARIANTS[variant]], env)  # torchrun runs the script
        reports = [json.loads((out / f"report.rank{r}.json").read_text()) for r in range(nproc)]
        params = [load_file(p) for p in sorted(out.glob("params.rank*.safetensors"))]
        from_reference = _max_difference(params[0], reference)
        between = max((_max_difference(p, params[0]) for p in params[1:]), default=0.0)
        distributed = all(
            r["parallel_mode"] == "ParallelMode.DISTRIBUTED" and r["world_size"] == nproc for r in reports
        )
        sharded = all(r["fsdp"] for r in reports) if variant.startswith("fsdp") else True
        ok = distributed and sharded and from_reference <= TOLERANCE and between <= TOLERANCE
        failed |= not ok
        print(
            f"{variant}: {'ok' if ok else 'FAILED'}  distributed={distributed} fsdp={reports[0]['fsdp']} "
            f"device={reports[0]['device']}  max |p - reference| = {from_reference:.2e}  between ranks = {between:.2e}"
        )
    print(f"work folder: {root}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--rank-driver":
        rank_driver(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(main())
