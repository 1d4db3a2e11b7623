"""Coordination numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from matscipy.neighbours import neighbour_list

from ..structures import Images, as_images
from .bonds import Cutoff, pair_cutoffs
from .validation import parse_species


class Coordination(NamedTuple):
    """Result of :func:`coordination`; unpacks as ``mean, per_atom``."""

    mean: float
    """Mean number of neighbours per centre atom over all images."""
    per_atom: np.ndarray
    """Number of neighbours of every centre atom, shape (M,), int; the centre atoms of
    all images concatenated in order (all atoms, or those of the pair's first element)."""


def coordination(
    images: Images,
    cutoff: Cutoff,
    pair: str | Sequence[str] | None = None,
) -> Coordination:
    """Coordination numbers: neighbours within a cutoff, periodic images included.

    Parameters
    ----------
    images
        One periodic structure or a list of them.
    cutoff
        One distance in Å, or a mapping from element pairs to distances such as
        ``{"Si-O": 2.0, "Si-Si": 2.6}`` (pairs not listed are not counted).
    pair
        ``None`` to count all neighbours of all atoms, or ``"A-B"`` to count the B
        neighbours of every A atom (e.g. ``"Si-O"``: O around Si).

    Returns
    -------
    Coordination
        ``(mean, per_atom)``: the mean coordination (float) over all centre atoms of all
        images, and the per-centre-atom counts (int array, shape (M,), the centres of
        all images in order; M = total number of atoms, or of A atoms for a pair).

    Examples
    --------
    >>> from ase.build import bulk
    >>> mean, per_atom = coordination(bulk("Si", "diamond", a=5.431, cubic=True), 2.6)
    >>> mean, per_atom.tolist()
    (4.0, [4, 4, 4, 4, 4, 4, 4, 4])

    """
    items = as_images(images)
    cut = pair_cutoffs(cutoff)
    species = None if pair is None else parse_species(pair, 2, items)
    counts = []
    for atoms in items:
        i, j = neighbour_list("ij", atoms, cut)
        if species is None:
            counts.append(np.bincount(i, minlength=len(atoms)))
            continue
        centre, neighbour = species
        keep = atoms.numbers[j] == neighbour
        per_atom = np.bincount(i[keep], minlength=len(atoms))
        counts.append(per_atom[atoms.numbers == centre])
    per_atom = np.concatenate(counts).astype(int)
    return Coordination(float(per_atom.mean()), per_atom)
