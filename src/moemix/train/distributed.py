"""The little moemix needs from torch.distributed: sum routing counts over ranks, check ranks agree.

Nothing here launches or configures processes: that is torchrun's, accelerate's or DeepSpeed's job, through
Hugging Face ``TrainingArguments``. Without an initialised process group every function is the identity.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo reduces CPU tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: np.ndarray) -> np.ndarray:
    """Sum an array over all ranks (every rank gets the sum): int64 for counts, float64 otherwise."""
    if rank_and_world()[1] == 1:
        return values
    dtype = torch.int64 if np.issubdtype(np.asarray(values).dtype, np.integer) else torch.float64
    # a copy: all_reduce works in place and must not write into the caller's array
    tensor = torch.tensor(np.asarray(values), dtype=dtype, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def assert_same_across_ranks(values: np.ndarray, what: str) -> None:
    """Raise on every rank if any rank holds different ``values`` (compared bit for bit).

    Raises:
        RuntimeError: naming the ranks that disagree, so that no rank trains on with other weights.
    """
    rank, world = rank_and_world()
    if world == 1:
        return
    mine = torch.as_tensor(np.ascontiguousarray(values, dtype=np.float64), device=_device())
    gathered = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    differ = [r for r, other in enumerate(gathered) if not torch.equal(other, gathered[0])]
    if differ:
        raise RuntimeError(f"{what} differ between ranks: rank(s) {differ} disagree with rank 0; stopping")


def close_process_group(finished: bool) -> None:
    """Destroy the default process group, where one was started, before the process exits.

    Gloo keeps worker threads that hold tensors of the last collectives; left to the interpreter's shutdown, they
    can abort a rank whose run succeeded (SIGABRT, "terminate called without an active exception"), and torchrun
    then fails the whole run. For the command line, which owns its process; a script of the user's owns its group.

    Args:
        finished: Every rank got here normally: the ranks meet first, so that none tears the group down while
            another still reads it. False after an error: no meeting (another rank may never come).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def whole_parameters(model: torch.nn.Module) -> contextlib.AbstractContextManager:
    """A context in which a model sharded by DeepSpeed ZeRO-3 holds all its parameters on every rank.

    Before the Trainer wraps the model in DeepSpeed's engine, nothing gathers a ZeRO-3 shard for a forward
    (the model was built already partitioned); inside the context it can run one. A collective: enter it on
    every rank. Any other model is left as it is.
    """
    sharded = [p for p in model.parameters() if hasattr(p, "ds_id")]  # DeepSpeed marks its partitioned tensors
    if not sharded:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(sharded)
