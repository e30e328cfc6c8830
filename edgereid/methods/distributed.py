"""Data-parallel training under ``torchrun`` (several GPUs, or several CPU processes with gloo).

Every process builds the same model from the same seed and draws the same batches; each keeps its own
slice of every batch (:func:`shard`), and gradients are averaged across processes after each backward
pass (:func:`average_gradients`), which is what DistributedDataParallel computes, without wrapping
models (the training steps call their models' methods directly). Only the first process writes files
and shows progress. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function is a no-op.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np
import torch
import torch.distributed as dist


def init_from_env() -> bool:
    """Join the process group ``torchrun`` describes (NCCL on GPUs, gloo on CPUs); False when not launched
    by ``torchrun``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """True in the process that writes checkpoints, exports and logs."""
    return rank() == 0


def shard(batch: np.ndarray) -> np.ndarray:
    """This process's slice of a batch of indices (every ``world_size``-th from ``rank``)."""
    if world_size() == 1:
        return batch
    if len(batch) % world_size():
        raise ValueError(f"batch of {len(batch)} does not split evenly over {world_size()} processes")
    return batch[rank()::world_size()]


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace every gradient by its mean over the processes."""
    if world_size() == 1:
        return
    for param in params:
        if param.grad is not None:
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
            param.grad /= world_size()


def all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """The tensors of every process concatenated along the first axis (no gradient)."""
    if world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def finish() -> None:
    """Leave the process group (after the last collective call)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
