"""Periodic geometry on batched tensors: wrapping, minimum image, cell volume.

All functions follow ASE's cell convention: ``cell[b]`` holds the lattice
vectors of system ``b`` as **rows**, so Cartesian positions are
``positions = fractional @ cell`` and ``fractional = positions @ inv(cell)``.

Many systems are handled at once as one concatenated atom set with a
per-atom system index, as in torch-sim: ``positions`` is ``(N, 3)``,
``cell`` is ``(B, 3, 3)`` and ``system_idx`` is ``(N,)`` with values in
``[0, B)``.
"""

from __future__ import annotations

import torch


def _per_atom_cells(cell: torch.Tensor, system_idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cells and inverse cells gathered per atom, both ``(N, 3, 3)``."""
    return cell[system_idx], torch.linalg.inv(cell)[system_idx]


def wrap_positions(
    positions: torch.Tensor, cell: torch.Tensor, system_idx: torch.Tensor
) -> torch.Tensor:
    """Map positions into their cells (fractional coordinates in ``[0, 1)``).

    Parameters
    ----------
    positions
        ``(N, 3)`` Cartesian positions, Å.
    cell
        ``(B, 3, 3)`` cells, rows are lattice vectors, Å.
    system_idx
        ``(N,)`` long, system of each atom.

    Returns
    -------
    torch.Tensor
        ``(N, 3)`` wrapped Cartesian positions, Å. The map is differentiable
        (its Jacobian with respect to ``positions`` is the identity almost
        everywhere).

    Examples
    --------
    >>> cell = 2.0 * torch.eye(3).unsqueeze(0)
    >>> wrap_positions(torch.tensor([[2.5, -0.5, 1.0]]), cell, torch.tensor([0]))
    tensor([[0.5000, 1.5000, 1.0000]])

    """
    atom_cell, inverse = _per_atom_cells(cell, system_idx)
    fractional = torch.einsum("ni,nij->nj", positions, inverse)
    # Subtracting a whole number of lattice vectors keeps d(out)/d(positions) = I.
    whole = torch.floor(fractional).detach()
    wrapped = positions - torch.einsum("ni,nij->nj", whole, atom_cell)
    # Round-off can leave a coordinate at exactly 1.0 (or tiny negative); fold it back.
    fractional = torch.einsum("ni,nij->nj", wrapped, inverse).detach()
    fix = torch.floor(fractional)
    return wrapped - torch.einsum("ni,nij->nj", fix, atom_cell)


def minimum_image(
    displacement: torch.Tensor, cell: torch.Tensor, system_idx: torch.Tensor
) -> torch.Tensor:
    """Minimum-image convention for displacement vectors.

    The periodic image is chosen by rounding fractional coordinates,
    ``d - round(d @ inv(cell)) @ cell``. This is exact for orthorhombic cells
    and for any cell when the displacement is shorter than half the shortest
    distance between opposite cell faces; for strongly skewed triclinic
    cells and long displacements it may return an image that is not the
    shortest (the returned vector is always a valid periodic image, i.e.
    differs from ``displacement`` by a lattice vector). The amorphous cells
    this package handles are near-orthogonal, where rounding is exact.

    Parameters
    ----------
    displacement
        ``(N, 3)`` Cartesian displacements, Å.
    cell
        ``(B, 3, 3)`` cells, rows are lattice vectors, Å.
    system_idx
        ``(N,)`` long, system of each displacement.

    Returns
    -------
    torch.Tensor
        ``(N, 3)`` displacement of the nearest image, Å (differentiable, with
        identity Jacobian almost everywhere).

    Examples
    --------
    >>> cell = 10.0 * torch.eye(3).unsqueeze(0)
    >>> minimum_image(torch.tensor([[9.0, -6.0, 3.0]]), cell, torch.tensor([0]))
    tensor([[-1.,  4.,  3.]])

    """
    atom_cell, inverse = _per_atom_cells(cell, system_idx)
    fractional = torch.einsum("ni,nij->nj", displacement, inverse)
    whole = torch.round(fractional).detach()
    return displacement - torch.einsum("ni,nij->nj", whole, atom_cell)


def cell_volume(cell: torch.Tensor) -> torch.Tensor:
    """Volumes of cells.

    Parameters
    ----------
    cell
        ``(B, 3, 3)`` (or ``(3, 3)``) cells, rows are lattice vectors, Å.

    Returns
    -------
    torch.Tensor
        ``(B,)`` (or scalar) volumes, Å^3, positive whatever the handedness.

    Examples
    --------
    >>> cell_volume(torch.diag(torch.tensor([2.0, 3.0, 4.0])).unsqueeze(0))
    tensor([24.])

    """
    return torch.linalg.det(cell).abs()
