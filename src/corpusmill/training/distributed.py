"""Process-group handling for `torchrun`: one code path for a single process and for DDP.

`torchrun` sets WORLD_SIZE/RANK/LOCAL_RANK; when WORLD_SIZE > 1 the group is initialised (NCCL on CUDA,
gloo otherwise) and each rank takes its slice of every global batch. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the one process that logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when a process group is in use."""
        return self.world_size > 1


def setup_distributed() -> DistInfo:
    """Read torchrun's environment, start the process group if needed and choose this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def all_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a scalar over ranks (identity in a single process)."""
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= info.world_size
    return value


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.enabled:
        dist.barrier()
