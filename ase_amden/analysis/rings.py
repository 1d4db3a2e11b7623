"""Shortest-path ring statistics (Franzblau, PRB 44, 4925 (1991)) through matscipy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matscipy.ffi import distances_on_graph, find_sp_rings
from matscipy.neighbours import neighbour_list

from ..structures import Images, as_images
from .bonds import Cutoff, covalent_cutoffs, pair_cutoffs
from .validation import symbols_present


def default_count_elements(symbols: Sequence[str]) -> list[str] | None:
    """Elements to count rings in: all but O for oxides (Si in silica), else all atoms."""
    if "O" in symbols and len(symbols) > 1:
        return [s for s in symbols if s != "O"]
    return None


def _network_cutoffs(
    symbols: list[str], cutoff: Cutoff | None, counted: list[str] | None
) -> tuple[float | dict[tuple[int, int], float], int]:
    """Bond cutoffs of the ring graph and the number of graph nodes per counted atom."""
    others = [] if counted is None else [s for s in symbols if s not in counted]
    if counted is None or not others:
        cut = covalent_cutoffs(symbols) if cutoff is None else pair_cutoffs(cutoff)
        return cut, 1
    # Network mode (e.g. Si-O-Si): bonds only between counted and other elements, so
    # every ring alternates and has two graph nodes per counted atom.
    between = (counted, others)
    if cutoff is None:
        return covalent_cutoffs(symbols, between=between), 2
    cross = covalent_cutoffs(symbols, between=between)  # only its keys are used
    cut = pair_cutoffs(cutoff)
    if isinstance(cut, dict):
        return {key: value for key, value in cut.items() if key in cross}, 2
    return {key: cut for key in cross}, 2


def ring_statistics(
    images: Images,
    cutoff: Cutoff | None = None,
    count_elements: str | Sequence[str] | None = None,
    maxlength: int = 12,
) -> np.ndarray:
    """Histogram of shortest-path rings, averaged over images.

    Rings are shortest-path rings of the bond graph (Franzblau's criterion, found by
    ``matscipy``'s ``find_sp_rings``). Bonds: within ``cutoff``, by default within 1.3
    times the sum of the covalent radii (AMShortcut B.6; Si-O 2.30 Å).

    With ``count_elements`` (e.g. ``"Si"`` for silica) rings are counted in those atoms:
    only bonds between a counted and a non-counted element are kept (the Si-O network),
    so a ring of n Si atoms is a closed Si-O-Si path of 2n bonds, and its size is half
    the path length. If every element present is counted, all bonds are used and sizes
    are plain path lengths.

    Rings that wrap around the periodic cell are not found: cells should be wider than
    the largest ring (repeat crystal cells, e.g. ``atoms.repeat(2)``).

    Parameters
    ----------
    images
        One periodic structure or a list of them.
    cutoff
        Bond cutoff in Å, or a mapping of element pairs to Å (``{"Si-O": 2.0}``), or
        None for the covalent-radius rule.
    count_elements
        Element(s) in which ring sizes are counted. None (default) chooses: for an oxide
        every element but O (Si in silica), otherwise all atoms.
    maxlength
        Largest ring size searched, in counted atoms (larger rings are not reported).

    Returns
    -------
    numpy.ndarray, shape (maxlength + 1,)
        Mean number of rings of each size per structure; index = ring size.

    Examples
    --------
    >>> from ase.build import bulk
    >>> hist = ring_statistics(bulk("Si", "diamond", a=5.431, cubic=True).repeat(2))
    >>> hist.nonzero()[0].tolist(), float(hist[6])
    ([6], 128.0)

    """
    items = as_images(images)
    if maxlength < 1:
        raise ValueError(f"maxlength must be at least 1, got {maxlength}")
    if count_elements is None:
        counted = default_count_elements(symbols_present(items))
    elif isinstance(count_elements, str):
        counted = [count_elements]
    else:
        counted = list(count_elements)
    hist = np.zeros(maxlength + 1)
    for atoms in items:
        cut, nodes_per_atom = _network_cutoffs(symbols_present([atoms]), cutoff, counted)
        i, j, d_vec = neighbour_list("ijD", atoms, cut)
        if i.size == 0:
            continue
        graph_distances = distances_on_graph(i, j)
        path_counts = np.asarray(
            # matscipy's maxlength is exclusive: it finds rings shorter than it
            find_sp_rings(i, j, d_vec, graph_distances, maxlength * nodes_per_atom + 1)
        )
        sizes = np.arange(path_counts.size)
        whole = (sizes % nodes_per_atom == 0) & (sizes // nodes_per_atom <= maxlength)
        np.add.at(hist, sizes[whole] // nodes_per_atom, path_counts[whole])
    return hist / len(items)


def average_ring_size(
    images: Images,
    cutoff: Cutoff | None = None,
    count_elements: str | Sequence[str] | None = None,
    maxlength: int = 12,
) -> float:
    """Mean ring size over all rings of all images (see :func:`ring_statistics`).

    Returns
    -------
    float
        Mean size in counted atoms; NaN if no ring was found.

    """
    hist = ring_statistics(images, cutoff, count_elements, maxlength)
    total = hist.sum()
    return float(np.arange(hist.size) @ hist / total) if total > 0 else float("nan")
