"""Process-group helpers that do nothing in a single process.

Rank and world size come from the ``torchrun`` environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``); without it the program is one process and no group is created.
Backend: ``nccl`` when the device is CUDA, ``gloo`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world``, ``local_rank`` on its machine."""

    rank: int
    world: int
    local_rank: int


def dist_info() -> DistInfo:
    """Rank, world size and local rank from the environment (0, 1, 0 without torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        )
    return DistInfo(
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(device: str | torch.device = "cpu") -> DistInfo:
    """Join the process group when launched by torchrun with more than one process.

    Args:
        device: The device this process computes on; CUDA selects ``nccl`` and sets the
            local GPU, anything else ``gloo``.
    """
    info = dist_info()
    if info.world > 1 and dist.is_available() and not dist.is_initialized():
        is_cuda = torch.device(device).type == "cuda"
        if is_cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="nccl" if is_cuda else "gloo")
    return info


def is_main_process() -> bool:
    """True on rank 0 (and in a single process)."""
    return dist_info().rank == 0


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place and return it (identity in one process).

    Integer tensors give exact sums, which is why metrics accumulate int64 counts.
    """
    if _active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    """Wait for all processes (no-op in one process)."""
    if _active():
        dist.barrier()


def shutdown_distributed() -> None:
    """Leave the process group if one was joined (avoids gloo aborts at interpreter exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
