"""Memory estimates, checked before large tensors are allocated."""

from __future__ import annotations

import math
import os

import torch

from .errors import ResourceError

__all__ = ["available_memory", "check_graph_memory", "graph_memory"]

# Floats alive per edge and per node in one network pass (hidden-width features,
# messages, coordinates), a generous estimate of the EGNN's working set.
_EDGE_FLOATS_PER_HIDDEN = 6
_NODE_FLOATS_PER_HIDDEN = 16


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes that can still be allocated on ``device`` (None if unknown).

    CUDA: free device memory; CPU: ``MemAvailable`` of ``/proc/meminfo``, else psutil,
    else the free physical pages (``os.sysconf``).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def graph_memory(n_nodes: float, volume: float, cutoff: float, hidden: int,
                 bytes_per_float: int = 4) -> float:
    """Estimated bytes of one network pass over ``n_nodes`` in a cell of ``volume`` Å^3.

    Each node has about ``density * 4/3 pi cutoff^3`` neighbours (Å).
    """
    neighbours = n_nodes / volume * 4.0 / 3.0 * math.pi * cutoff**3
    edges = n_nodes * max(neighbours, 1.0)
    floats = (edges * _EDGE_FLOATS_PER_HIDDEN + n_nodes * _NODE_FLOATS_PER_HIDDEN) * hidden
    return floats * bytes_per_float


def check_graph_memory(n_systems: int, n_nodes: int, volume: float, cutoff: float,
                       hidden: int, device: torch.device | str = "cpu",
                       bytes_per_float: int = 4) -> float:
    """Raise :class:`ResourceError` if a batch of structures would not fit in memory.

    Parameters
    ----------
    n_systems
        Structures passed through the network together.
    n_nodes, volume
        Nodes (atoms and ghosts) per structure and the cell volume, Å^3.
    cutoff, hidden
        The network's graph cutoff (Å) and hidden width.
    device
        Where the network runs (its free memory is compared).
    bytes_per_float
        4 for float32 weights, 8 for float64.

    Returns
    -------
    float
        The estimate, bytes.

    """
    need = graph_memory(n_nodes * n_systems, volume * n_systems, cutoff, hidden,
                        bytes_per_float)
    free = available_memory(device)
    if free is not None and need > free:
        raise ResourceError(
            f"{n_systems} structure(s) of {n_nodes:.3g} nodes in {volume:.3g} Å^3 would need "
            f"about {need / 2**30:.3g} GiB on {torch.device(device).type}, but only "
            f"{free / 2**30:.3g} GiB are available; use fewer atoms, a smaller cell or a "
            "smaller batch_size"
        )
    return need
