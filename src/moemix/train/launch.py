"""Every launch trains one model or refuses: the checks between a launcher (torchrun, accelerate, DeepSpeed) and
the Trainer.

Under ``torchrun --nproc_per_node N`` on a machine without an accelerator, accelerate (1.x) only recognises a
CPU process group when asked for the CPU: ``PartialState._prepare_backend`` finds no GPU, leaves the distributed
type at ``NO`` unless ``cpu=True``, and the Trainer then never wraps the model in DDP: every rank trains its own
parameters (under DeepSpeed it even sees a world of 1). moemix therefore asks for the CPU (``use_cpu``) when a
multi-process launch finds no accelerator, and after building ``TrainingArguments`` checks that the launch is
really distributed, refusing with one line before anything loads when it is not.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from transformers import TrainingArguments
from transformers.training_args import ParallelMode

from moemix.errors import MoemixError

# The variables a launcher sets to the number of processes (torchrun; MPI launchers through accelerate).
_WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_world_size() -> int:
    """The number of processes the launcher started (1 without a launcher)."""
    sizes = [int(os.environ[name]) for name in _WORLD_SIZE_VARIABLES if os.environ.get(name, "").isdigit()]
    return max(sizes, default=1)


def has_accelerator() -> bool:
    """Whether torch sees an accelerator (CUDA, XPU, MPS, ...) this process can train on."""
    return torch.accelerator.is_available()


def launch_defaults(training: Mapping[str, Any]) -> dict[str, Any]:
    """``TrainingArguments`` values the launch needs, for the keys ``training`` does not set itself.

    Args:
        training: The ``training`` section as it will be passed to ``TrainingArguments``.

    Returns:
        On a machine without an accelerator: no pinned memory (it needs one); with several processes also the
        gloo backend (NCCL needs GPUs; in one process it raises) and ``use_cpu`` (see the module docstring).
    """
    if has_accelerator():
        return {}
    defaults: dict[str, Any] = {"dataloader_pin_memory": False}
    if launched_world_size() > 1:
        defaults |= {"ddp_backend": "gloo", "use_cpu": True}
    return {key: value for key, value in defaults.items() if key not in training}


def check_launch(training: Mapping[str, Any]) -> None:
    """Refuse, before ``TrainingArguments`` are built, a launch that would not train one model.

    Args:
        training: The config's ``training`` section.

    Raises:
        MoemixError: ``accelerate launch`` that started one process where several were asked for; FSDP on a
            machine without an accelerator (a missing DeepSpeed is :mod:`moemix.extras`' check).
    """
    if (
        "ACCELERATE_USE_CPU" in os.environ  # accelerate's simple launcher sets it, always
        and "MASTER_ADDR" in os.environ  # ... and these only when --num_processes > 1
        and launched_world_size() == 1
        and "LOCAL_RANK" not in os.environ
    ):
        raise MoemixError(
            "accelerate launch asked for several processes but started one (without a GPU its simple launcher runs "
            "a single process unless mpirun is configured): launch with `torchrun --nproc_per_node N -m moemix.cli "
            "train ...` instead"
        )
    fsdp = training.get("fsdp") or os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"
    if fsdp and not has_accelerator():
        raise MoemixError(
            "training.fsdp: FSDP through the Hugging Face Trainer does not run on a CPU (no accelerator found); "
            "on CPUs use DDP (torchrun) or DeepSpeed ZeRO-3 (--deepspeed configs/deepspeed/zero3.json)"
        )


def join_deepspeed(args: TrainingArguments) -> None:
    """Under DeepSpeed on a CPU, start DeepSpeed's communication on the process group accelerate set up.

    With ``use_cpu`` accelerate initialises torch's process group but not DeepSpeed's own (it does on GPUs), and
    ZeRO-3 needs it before the model is built: ``zero.Init`` sizes the partitions by DeepSpeed's world, which
    would be 1 ("train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size").

    Args:
        args: The built arguments.
    """
    if not args.deepspeed or launched_world_size() == 1:
        return
    import deepspeed.comm

    if not deepspeed.comm.is_initialized():
        deepspeed.comm.init_distributed(dist_backend=args.ddp_backend or "gloo", auto_mpi_discovery=False)


def check_distributed(args: TrainingArguments) -> None:
    """Refuse a multi-process launch in which the Trainer would not train one model across the processes.

    Args:
        args: The built arguments (building them set up accelerate's distributed state).

    Raises:
        MoemixError: If the launcher started several processes but accelerate does not see them as one
            distributed run (each would train and save its own model).
    """
    world = launched_world_size()
    if world == 1 or (args.parallel_mode == ParallelMode.DISTRIBUTED and args.world_size == world):
        return
    kind = args.distributed_state.distributed_type if args.distributed_state is not None else "none"
    hint = (
        "remove training.use_cpu: false (this machine has no accelerator)"
        if args.use_cpu is False and not has_accelerator()
        else "launch with torchrun on devices accelerate recognises, or set training.use_cpu: true"
    )
    raise MoemixError(
        f"launched as {world} processes, but the Trainer would train {world} separate models (accelerate sees "
        f"distributed type {kind}, world size {args.world_size}): {hint}"
    )
