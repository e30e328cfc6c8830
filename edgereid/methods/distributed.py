"""Data-parallel training under ``torchrun`` (several GPUs with NCCL, or several CPU processes with gloo).

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
    """Join the process group ``torchrun`` describes; False when not launched by ``torchrun``. CPU tensors
    are reduced with gloo, CUDA tensors with NCCL, so methods that train on :func:`device` and methods that
    stay on the CPU both work."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    if device().type == "cuda":
        torch.cuda.set_device(device())
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    return True


def device() -> torch.device:
    """Where this process trains the methods that use a GPU (DCAC, AIO, ReID distillation): its own GPU,
    ``cuda:LOCAL_RANK``, when there is one for it, else the CPU (more processes than GPUs train on the CPU).
    (Written for GPUs; run on a CPU only here.)"""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def host_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a CPU tensor ready for this process's device: page-locked when that is a GPU, so that
    ``.to(device, non_blocking=True)`` copies it asynchronously (a DataLoader's ``pin_memory``)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.pin_memory() if device().type == "cuda" else tensor


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
        raise ValueError(f"a batch of {len(batch)} does not split evenly over {world_size()} processes: "
                         "set batch_size to a multiple of --nproc_per_node")
    return batch[rank()::world_size()]


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace every gradient by its mean over the processes."""
    if world_size() == 1:
        return
    for param in params:
        if param.grad is None:  # every process must join every reduction, even without a gradient
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
        param.grad /= world_size()


def average_buffers(module: torch.nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over the processes, so every process
    keeps the same model (each estimated them from its own slice of the batch)."""
    if world_size() == 1:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer /= world_size()


def sample_randomness(batch_rng: np.random.Generator, seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """Generators for per-sample randomness (flips, jitter, diffusion noise and timesteps). In one process
    that is ``batch_rng`` itself (and a torch generator seeded with ``seed``); under ``torchrun`` each
    process gets its own, while ``batch_rng`` stays shared so all processes draw the same batches."""
    if world_size() == 1:
        return batch_rng, torch.Generator().manual_seed(seed)
    return np.random.default_rng((seed, rank())), torch.Generator().manual_seed(seed + 7919 * rank())


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
