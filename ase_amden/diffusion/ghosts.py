"""Ghost atoms: density control by a fixed node count (AMDEN, "ghost atoms").

A model with maximum density ``rho_max`` (atoms/Å^3) always sees ``floor(rho_max V)`` nodes in
a cell of volume ``V``; the nodes beyond the real atoms are ghosts, an extra element class that
is removed after generation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["add_ghosts", "ghost_count", "node_count", "remove_ghosts"]

# Guards floor() against round-off when rho_max * V is an integer in exact arithmetic.
_FLOOR_TOLERANCE = 1e-9


def node_count(volume: float, rho_max: float) -> int:
    """Return the node count ``floor(rho_max V)`` of a cell of ``volume`` Å^3.

    >>> node_count(1000.0, 0.05)
    50
    """
    return int(math.floor(rho_max * volume + _FLOOR_TOLERANCE))


def ghost_count(n_atoms: int, volume: float, rho_max: float) -> int:
    """Return the ghost count ``max(0, floor(rho_max V) - n)`` for ``n_atoms`` real atoms.

    >>> ghost_count(40, 1000.0, 0.05), ghost_count(60, 1000.0, 0.05)
    (10, 0)
    """
    return max(0, node_count(volume, rho_max) - int(n_atoms))


def add_ghosts(
    positions: torch.Tensor,
    elements: torch.Tensor,
    cell: torch.Tensor,
    system_idx: torch.Tensor,
    rho_max: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Add ghosts at uniform random positions to a batch of structures (training time).

    Structure ``b`` with ``n_b`` atoms in volume ``V_b`` gets
    ``max(0, floor(rho_max V_b) - n_b)`` ghosts whose element channel is the one-hot of the
    last class (the ghost, ``ModelCard.ghost_index``).

    Parameters
    ----------
    positions
        ``(N, 3)`` positions, Å.
    elements
        ``(N, C)`` one-hot element channel; the last of the ``C`` classes is the ghost.
    cell
        ``(B, 3, 3)`` cells, Å; rows are lattice vectors.
    system_idx
        ``(N,)`` long, structure of each atom.
    rho_max
        Maximum density of the model, atoms/Å^3.
    generator
        Torch generator on the tensors' device (None: the global one).

    Returns
    -------
    positions, elements, system_idx
        ``(N + G, ...)``. The order is stable by structure: each structure's real atoms keep
        their order and its ghosts follow them, so a ``system_idx`` sorted on input stays
        sorted.

    """
    n_systems = cell.shape[0]
    counts = torch.bincount(system_idx, minlength=n_systems)
    volumes = torch.linalg.det(cell.detach().double()).abs()
    nodes = torch.floor(rho_max * volumes + _FLOOR_TOLERANCE).long().to(counts.device)
    n_ghost = torch.clamp(nodes - counts, min=0)
    ghost_idx = torch.repeat_interleave(torch.arange(n_systems, device=counts.device), n_ghost)
    fractional = torch.rand(
        (ghost_idx.shape[0], 3), generator=generator, dtype=positions.dtype, device=positions.device
    )
    ghost_positions = torch.einsum("ni,nij->nj", fractional, cell[ghost_idx])
    ghost_elements = torch.zeros(
        (ghost_idx.shape[0], elements.shape[1]), dtype=elements.dtype, device=elements.device
    )
    ghost_elements[:, -1] = 1.0
    all_idx = torch.cat([system_idx, ghost_idx])
    order = torch.sort(all_idx, stable=True).indices
    return (
        torch.cat([positions, ghost_positions])[order],
        torch.cat([elements, ghost_elements])[order],
        all_idx[order],
    )


def remove_ghosts(
    positions: np.ndarray | torch.Tensor, classes: np.ndarray | torch.Tensor, ghost_index: int
) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
    """Drop the nodes whose class is the ghost (after generation).

    Works on numpy arrays and torch tensors alike.

    >>> import numpy as np
    >>> pos, cls = remove_ghosts(np.zeros((3, 3)), np.array([0, 2, 1]), ghost_index=2)
    >>> cls.tolist()
    [0, 1]
    """
    keep = classes != ghost_index
    return positions[keep], classes[keep]
