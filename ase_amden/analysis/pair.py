"""Pair correlations: radial distribution function and static structure factor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from ..structures import Images, as_images
from .validation import check_rmax, largest_rmax, parse_species


def rdf(
    images: Images,
    rmax: float = 5.0,
    nbins: int = 100,
    pair: str | Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Radial distribution function g(r), total or partial, averaged over images.

    g(r) is normalised so that an ideal gas gives 1: the number of neighbours in a shell,
    divided by the number of centre atoms, the density of the neighbour species and the
    shell volume (as ``ase.geometry.rdf.get_rdf``, the implementation AMShortcut used).
    Partials follow LAMMPS ``compute rdf``: g_ab = g_ba and g = sum_ab c_a c_b g_ab.
    Only minimum-image distances are counted, hence the limit on ``rmax``.

    Parameters
    ----------
    images
        One periodic structure or a list of them; the curves of all are averaged.
    rmax
        Largest distance, Å; at most half the smallest perpendicular cell width.
    nbins
        Number of bins of width ``rmax / nbins`` between 0 and ``rmax``.
    pair
        ``None`` for the total g(r), or two symbols such as ``"Si-O"`` for the partial
        g(r) of O neighbours around Si centres.

    Returns
    -------
    r : numpy.ndarray, shape (nbins,)
        Bin centres, Å.
    g : numpy.ndarray, shape (nbins,)
        g(r), dimensionless.

    Raises
    ------
    InvalidStructureError
        For empty, non-periodic, zero-volume or NaN structures.
    ValueError
        If ``rmax`` exceeds half the smallest perpendicular cell width (the message
        gives the largest allowed value).

    Examples
    --------
    >>> from ase.build import bulk
    >>> atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    >>> r, g = rdf(atoms, rmax=5.0, nbins=100)
    >>> float(r[np.argmax(g > 0)])  # first shell (2.35 Å) falls in the bin centred here
    2.375

    """
    items = as_images(images)
    check_rmax(items, rmax)
    if nbins < 1:
        raise ValueError(f"nbins must be at least 1, got {nbins}")
    elements = None if pair is None else parse_species(pair, 2, items)
    edges = np.linspace(0.0, rmax, nbins + 1)
    g = np.mean([_rdf_of(atoms, edges, elements) for atoms in items], axis=0)
    return 0.5 * (edges[:-1] + edges[1:]), g


def _rdf_of(atoms: Atoms, edges: np.ndarray, elements: Sequence[int] | None) -> np.ndarray:
    """g(r) of one structure on ``edges``, normalised as ASE's ``get_rdf`` (ASE >= 3.27).

    Computed here from ``ase.neighborlist.neighbor_list`` so that partials and lists of
    images work with every ASE the package supports (``get_rdf`` takes element symbols and
    image lists only from ASE 3.28). A distance ``d`` falls in bin ``ceil(d / dr)``.
    """
    rmax, nbins = float(edges[-1]), len(edges) - 1
    dr = rmax / nbins
    i, j, d = neighbor_list("ijd", atoms, rmax)
    n_centres, n_neighbours = len(atoms), len(atoms)
    if elements is not None:
        a, b = elements
        keep = (atoms.numbers[i] == a) & (atoms.numbers[j] == b)
        d = d[keep]
        n_centres = int(np.count_nonzero(atoms.numbers == a))
        n_neighbours = int(np.count_nonzero(atoms.numbers == b))
    counts = np.bincount(np.ceil(d / dr).astype(int), minlength=nbins + 1)[1 : nbins + 1]
    shells = 4.0 * np.pi * dr * (edges[:-1] ** 2 + edges[:-1] * dr + dr**2 / 3.0)
    return counts / (n_centres * n_neighbours / atoms.cell.volume * shells)


def structure_factor(
    images: Images,
    q: np.ndarray | Sequence[float],
    rmax: float | None = None,
    nbins: int = 400,
    window: bool = True,
) -> np.ndarray:
    """Compute the static structure factor S(q) by Fourier transform of the total g(r).

    S(q) = 1 + 4 pi rho int_0^rmax r^2 (g(r) - 1) sin(qr)/(qr) W(r) dr, with rho the mean
    number density and W the Lorch window sin(pi r/rmax)/(pi r/rmax) (or 1 without
    ``window``). This is the number-number (Bhatia-Thornton) S(q) with unit weight for
    every atom: no X-ray form factors or neutron scattering lengths.

    Limits: g(r) is known only to ``rmax`` (half the smallest cell width), so S(q) is
    smeared by about 2 pi / rmax in q; below that, S(q) and the forward-scattering
    (q -> 0) limit are not reliable. The truncation ripples are damped by the window at
    the price of broader peaks.

    Parameters
    ----------
    images
        One periodic structure or a list of them (g(r) and density averaged).
    q
        Scattering vector magnitudes q = 4 pi sin(theta) / lambda, 1/Å, shape (M,);
        all positive.
    rmax
        Upper integration limit, Å; default the largest allowed (half the smallest
        perpendicular cell width of the images).
    nbins
        Number of RDF bins between 0 and ``rmax``.
    window
        Apply the Lorch window.

    Returns
    -------
    numpy.ndarray, shape (M,)
        S(q), dimensionless; tends to 1 at large q.

    """
    items = as_images(images)
    q = np.atleast_1d(np.asarray(q, dtype=float))
    if np.any(q <= 0):
        raise ValueError("q must be positive (1/Å); S(0) is not defined by this transform")
    rmax = largest_rmax(items) if rmax is None else rmax
    r, g = rdf(items, rmax=rmax, nbins=nbins)
    rho = np.mean([len(atoms) / atoms.cell.volume for atoms in items])
    weight = np.sinc(r / rmax) if window else np.ones_like(r)  # np.sinc(x) = sin(pi x)/(pi x)
    dr = rmax / nbins
    kernel = np.sinc(np.outer(q, r) / np.pi)  # sin(qr)/(qr)
    integrand = r**2 * (g - 1.0) * weight
    return 1.0 + 4.0 * np.pi * rho * (kernel @ integrand) * dr
