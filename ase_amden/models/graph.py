"""Periodic radius graphs for batches of structures."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch
import vesin

from ase_amden.errors import InvalidStructureError


def periodic_graph(
    positions: torch.Tensor,
    cell: torch.Tensor,
    system_idx: torch.Tensor,
    cutoff: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All periodic neighbour pairs within a cutoff, for a batch of systems.

    Every pair ``(i, j)`` of atoms of the same system with an image of ``j``
    closer than ``cutoff`` to ``i`` gives one directed edge per image, in both
    directions. All images count, also when the cell is smaller than twice
    the cutoff; then an atom can neighbour several images of another atom and
    images of itself (the trivial self pair ``i == j`` at zero shift is
    excluded). This matches ``ase.neighborlist.neighbor_list("ijS", ...)``.

    The search runs per system with vesin (numpy, float64, on the CPU; GPU
    tensors are copied over), the systems of a batch in parallel on up to
    ``torch.get_num_threads()`` threads. Measured on one CPU thread at 0.05 Å^-3 with a
    6.5 Å cutoff: vesin 1.6 ms for 256 atoms and 9.5 ms for 2,000 atoms,
    vesin-torch the same within noise, a dense all-pairs torch search 51 ms
    and 7.2 s; this whole function takes 2.2 ms and 14 ms. Only integer
    image counts come from the search: the shift vectors are built as
    ``image @ cell`` in torch, so displacements computed from them are
    differentiable with respect to ``positions`` and ``cell``.

    Parameters
    ----------
    positions
        ``(N, 3)`` Cartesian positions, Å; need not be wrapped into the cell.
    cell
        ``(B, 3, 3)`` cells, rows are lattice vectors, Å. All systems are
        periodic in the three directions.
    system_idx
        ``(N,)`` long, system of each atom, values in ``[0, B)``; the atoms of
        a system need not be contiguous.
    cutoff
        Neighbour cutoff radius, Å.

    Returns
    -------
    src, dst
        ``(E,)`` long indices into ``positions``.
    shift
        ``(E, 3)`` Cartesian image offsets, Å, with the dtype and device of
        ``positions``, such that the edge vector from ``src`` to the image
        of ``dst`` is ``positions[dst] - positions[src] + shift``.

    Raises
    ------
    InvalidStructureError
        If shapes disagree, a position is not finite or a cell has (near)
        zero volume.

    Examples
    --------
    >>> cell = 3.0 * torch.eye(3, dtype=torch.float64).unsqueeze(0)
    >>> positions = torch.zeros(1, 3, dtype=torch.float64)
    >>> src, dst, shift = periodic_graph(positions, cell, torch.tensor([0]), 3.5)
    >>> len(src)  # the six face-sharing images of the only atom
    6

    """
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InvalidStructureError(
            f"positions must have shape (N, 3), got {tuple(positions.shape)}"
        )
    if cell.ndim != 3 or cell.shape[1:] != (3, 3):
        raise InvalidStructureError(f"cell must have shape (B, 3, 3), got {tuple(cell.shape)}")
    if system_idx.shape != (positions.shape[0],):
        raise InvalidStructureError(
            f"system_idx must have shape ({positions.shape[0]},) to match positions, "
            f"got {tuple(system_idx.shape)}"
        )
    n_systems = cell.shape[0]
    positions_np = positions.detach().to("cpu", torch.float64).numpy()
    cells_np = cell.detach().to("cpu", torch.float64).numpy()
    volumes = np.abs(np.linalg.det(cells_np))
    if np.any(volumes < 1e-6):
        bad = np.flatnonzero(volumes < 1e-6).tolist()
        raise InvalidStructureError(
            f"cells of systems {bad} have (near) zero volume; give three independent "
            "lattice vectors (rows of the cell)"
        )
    finite = np.isfinite(positions_np).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)[:10].tolist()
        raise InvalidStructureError(
            f"positions of atoms {bad} (first ten) are not finite; check the structure or, "
            "while sampling, the step size and the model"
        )
    system_np = system_idx.detach().cpu().numpy()
    order = np.argsort(system_np, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(system_np, minlength=n_systems))])

    systems = [(b, atoms) for b in range(n_systems)
               if (atoms := order[bounds[b]:bounds[b + 1]]).size]
    searches = [(positions_np[atoms], cells_np[b], float(cutoff)) for b, atoms in systems]
    workers = min(len(searches), torch.get_num_threads())
    found = (_pool(workers).map(_search, searches) if workers > 1 else map(_search, searches))
    sources, targets, images = [], [], []
    for (_, atoms), (i, j, image) in zip(systems, found, strict=True):
        sources.append(atoms[i])
        targets.append(atoms[j])
        images.append(image)

    device = positions.device
    if sources:
        src = torch.from_numpy(np.concatenate(sources).astype(np.int64)).to(device)
        dst = torch.from_numpy(np.concatenate(targets).astype(np.int64)).to(device)
        image = torch.from_numpy(np.concatenate(images)).to(device, positions.dtype)
    else:
        src = torch.zeros(0, dtype=torch.long, device=device)
        dst = torch.zeros(0, dtype=torch.long, device=device)
        image = torch.zeros(0, 3, dtype=positions.dtype, device=device)
    with torch.autocast(device.type, enabled=False):  # Å-scale shifts need full precision
        edge_cells = cell.to(positions.dtype).index_select(0, system_idx.index_select(0, src))
        shift = torch.bmm(image.unsqueeze(1), edge_cells).squeeze(1)
    return src, dst, shift


def _search(task: tuple[np.ndarray, np.ndarray, float]) -> list[np.ndarray]:
    """Pairs ``i, j`` and integer images ``S`` of one periodic system (vesin)."""
    positions, cell, cutoff = task
    return vesin.NeighborList(cutoff=cutoff, full_list=True).compute(positions, cell, True, "ijS")


@lru_cache(maxsize=4)
def _pool(workers: int) -> ThreadPoolExecutor:
    """Threads for the per-system searches (vesin's C call releases the GIL)."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ase_amden-graph")
