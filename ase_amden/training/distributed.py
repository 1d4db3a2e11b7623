"""Data-parallel training under ``torchrun`` (torch.distributed + DDP).

``torchrun --nproc_per_node=K`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; when
``WORLD_SIZE > 1`` training joins a process group (NCCL on CUDA, gloo on CPU), wraps
the model in :class:`~torch.nn.parallel.DistributedDataParallel` and gives each rank
its own shard of every epoch's permutation of the structures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    """Where this process stands in a (possibly trivial) process group.

    Attributes
    ----------
    rank, world_size, local_rank
        As set by ``torchrun``; ``0, 1, 0`` for a plain run.
    owns_group
        True if this context initialised the process group (and must destroy it).

    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes checkpoints and logs."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for all ranks (no-op when not distributed)."""
        if self.enabled:
            dist.barrier()

    def any_true(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` holds on any rank (all ranks must call this together)."""
        if not self.enabled:
            return flag
        value = torch.tensor([int(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def resolve_device(device: str | torch.device, local_rank: int = 0) -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda"`` (or a device) into a ``torch.device``.

    ``"auto"`` picks CUDA when available. A bare ``"cuda"`` becomes
    ``cuda:<local_rank>`` so that each ``torchrun`` process uses its own GPU.
    """
    from ase_amden.devices import check_device

    device = check_device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init_distributed(
    device: str | torch.device = "auto",
) -> tuple[DistributedContext, torch.device]:
    """Join the ``torchrun`` process group if there is one.

    Parameters
    ----------
    device
        Requested device; see :func:`resolve_device`.

    Returns
    -------
    (DistributedContext, torch.device)
        The context and the device this rank trains on.

    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistributedContext(), target
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if target.type == "cuda" else "gloo"
        if target.type == "cuda":
            torch.cuda.set_device(target)
        dist.init_process_group(backend=backend)
        owns = True
    context = DistributedContext(rank, world_size, local_rank, owns)
    return context, target


def epoch_shard(n: int, epoch: int, seed: int, rank: int, world_size: int) -> np.ndarray:
    """Return the indices of the structures this rank visits in ``epoch``, in order.

    All ranks draw the same permutation of ``range(n)`` from ``(seed, epoch)``; it is
    padded by wrapping around to a multiple of ``world_size`` (as
    :class:`torch.utils.data.DistributedSampler` does) so every rank gets the same
    number of structures, and rank ``r`` takes every ``world_size``-th entry from ``r``.

    >>> epoch_shard(5, 0, 0, 0, 1).shape
    (5,)
    >>> shards = [epoch_shard(5, 3, 1, r, 2) for r in range(2)]
    >>> [len(s) for s in shards], sorted(set(np.concatenate(shards).tolist()))
    ([3, 3], [0, 1, 2, 3, 4])
    """
    order = np.random.default_rng([seed, epoch]).permutation(n)
    padded = -(-n // world_size) * world_size
    order = np.resize(order, padded)
    return order[rank::world_size]
