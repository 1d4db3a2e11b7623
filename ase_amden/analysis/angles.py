"""Bond-angle distribution."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matscipy.neighbours import first_neighbours, neighbour_list, triplet_list

from ..structures import Images, as_images
from .validation import parse_species


def bond_angles(atoms, cutoff: float, triplet: tuple[int, int, int] | None = None) -> np.ndarray:
    """All angles j-i-k, degrees, with both neighbours j, k of centre i within ``cutoff``.

    Each unordered angle appears twice (as j-i-k and k-i-j) when ``triplet`` is None or
    its two ends are the same element, once otherwise. Periodic images count as
    neighbours, so cells smaller than the cutoff are handled.

    Parameters
    ----------
    atoms
        A periodic structure.
    cutoff
        Neighbour cutoff, Å.
    triplet
        Atomic numbers (end, centre, end), or None for all angles.

    Returns
    -------
    numpy.ndarray, shape (T,)
        Angles in degrees.

    """
    i, j, d_vec = neighbour_list("ijD", atoms, cutoff)
    ij, ik = triplet_list(first_neighbours(len(atoms), i))
    if triplet is not None:
        numbers = atoms.numbers
        end_a, centre, end_b = triplet
        keep = (numbers[i[ij]] == centre) & (numbers[j[ij]] == end_a) & (numbers[j[ik]] == end_b)
        ij, ik = ij[keep], ik[keep]
    a, b = d_vec[ij], d_vec[ik]
    cos = np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def adf(
    images: Images,
    cutoff: float = 3.0,
    nbins: int = 180,
    triplet: str | Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bond-angle distribution (ADF), averaged over images.

    For every centre atom i and every pair of its neighbours j != k within ``cutoff``
    the angle between r_ij and r_ik is binned on [0, 180] degrees (AMShortcut: 3 Å,
    180 bins of 1 degree). The histogram of each structure is normalised to a
    probability density over degrees (integral 1) and the densities are averaged.

    Parameters
    ----------
    images
        One periodic structure or a list of them.
    cutoff
        Bond cutoff, Å.
    nbins
        Number of bins on [0, 180] degrees.
    triplet
        ``None`` for all angles, or three symbols with the centre in the middle, e.g.
        ``"O-Si-O"`` (angles at Si between two O) or ``"Si-O-Si"``.

    Returns
    -------
    theta : numpy.ndarray, shape (nbins,)
        Bin centres, degrees.
    p : numpy.ndarray, shape (nbins,)
        Probability density, 1/degree; zero everywhere for a structure without angles.

    Examples
    --------
    >>> from ase.build import bulk
    >>> theta, p = adf(bulk("Si", "diamond", a=5.431, cubic=True), cutoff=3.0)
    >>> float(theta[np.argmax(p)])  # the tetrahedral angle, 109.47 degrees
    109.5

    """
    items = as_images(images)
    if cutoff <= 0 or nbins < 1:
        raise ValueError(f"need cutoff > 0 and nbins >= 1, got cutoff={cutoff}, nbins={nbins}")
    numbers = None if triplet is None else parse_species(triplet, 3, items)
    edges = np.linspace(0.0, 180.0, nbins + 1)
    densities = []
    for atoms in items:
        angles = bond_angles(atoms, cutoff, numbers)
        if angles.size == 0:
            densities.append(np.zeros(nbins))
            continue
        hist, _ = np.histogram(angles, bins=edges, density=True)
        densities.append(hist)
    return 0.5 * (edges[1:] + edges[:-1]), np.mean(densities, axis=0)
