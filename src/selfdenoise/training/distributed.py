"""Multi-process training under ``torchrun``: process group, agreeing on a stop, averaging gradients."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor


def process_group() -> tuple[int, int]:
    """(rank, world size); initialises the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("SELFDENOISE_DEVICE") != "cpu" else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def agree_on_stop(reason: str | None, dev: torch.device) -> str | None:
    """Under torchrun: stop on every rank when any rank asks to."""
    flag = torch.tensor([0.0 if reason is None else 1.0], device=dev)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return reason if reason is not None or float(flag) == 0 else "stopped on another process"


def average_gradients(params: list[Tensor], world: int) -> None:
    """Under torchrun, for methods with several optimisers (not wrapped in DDP): average gradients."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def shared_elapsed(elapsed: float, dev: torch.device) -> float:
    """Rank 0's elapsed seconds on every rank (under a time limit all ranks must stop at the same step)."""
    e = torch.tensor([elapsed], dtype=torch.float64, device=dev)
    dist.broadcast(e, 0)
    return float(e)


def is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def end_process_group() -> None:
    """Under torchrun: wait for rank 0 to write the model, then leave the process group."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
