"""Differentiable, periodic pair distribution g(r) and weighted structure factor S(q).

The torch core works on batches as the samplers hold them (concatenated atoms, per-atom
``system_idx``, ``(B, 3, 3)`` cells whose rows are lattice vectors, Å) and is differentiable
with respect to positions, so a measured S(q) or g(r) can steer a diffusion sampler; the
numpy wrappers take ``ase.Atoms`` for analysis.

g(r) is a smoothed histogram: every pair distance ``d`` (periodic neighbour list, vesin)
adds a normalised Gaussian of width ``sigma`` centred on ``d``. Partials follow Faber and
Ziman: ``g_ab(r) = V n_ab(r) / (4 pi r^2 N_a N_b)`` with ``n_ab`` the smoothed count of
``b`` neighbours around ``a`` atoms, so an ideal gas gives 1 and ``g = sum c_a c_b g_ab``.
``S_ab(q) = 1 + 4 pi rho int_0^rmax r^2 (g_ab(r) - 1) sin(qr)/(qr) W(r) dr`` with the Lorch
window ``W(r) = sin(pi r / rmax) / (pi r / rmax)`` and ``rmax`` at most half the smallest
perpendicular cell width. The total
``S(q) = 1 + sum_ab c_a c_b w_a(q) w_b(q) (S_ab(q) - 1) / (sum_a c_a w_a(q))^2``
with X-ray form factors or neutron coherent scattering lengths as weights ``w``.

Sources of the weights:

* X-ray: Cromer-Mann coefficients of International Tables for Crystallography Vol. C (1992),
  Table 6.1.1.4: ``f(s) = sum_i a_i exp(-b_i s^2) + c`` with ``s = q / (4 pi)``, 1/Å.
* Neutron: bound coherent scattering lengths, fm, of V. F. Sears, Neutron News 3 (1992) 26,
  as tabulated by NIST (https://www.ncnr.nist.gov/resources/n-lengths/); the real part for B.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from torch import Tensor

from ..errors import AmdenError
from ..models.graph import periodic_graph
from ..structures import Images, as_images
from .validation import largest_rmax

__all__ = [
    "CROMER_MANN",
    "NEUTRON_LENGTHS",
    "ScatteringSetup",
    "form_factors",
    "pair_distribution",
    "partial_rdfs",
    "rfactor",
    "structure_factor",
    "weighted_structure_factor",
]

#: Cromer-Mann coefficients ``(a1, a2, a3, a4, b1, b2, b3, b4, c)``, neutral atoms, ITC Vol. C
#: Table 6.1.1.4; ``b`` in Å^2.
CROMER_MANN: dict[str, tuple[float, ...]] = {
    "Li": (1.1282, 0.7508, 0.6175, 0.4653, 3.9546, 1.0524, 85.3905, 168.261, 0.0377),
    "B": (2.0545, 1.3326, 1.0979, 0.7068, 23.2185, 1.0210, 60.3498, 0.1403, -0.1932),
    "O": (3.0485, 2.2868, 1.5463, 0.8670, 13.2771, 5.7011, 0.3239, 32.9089, 0.2508),
    "Na": (4.7626, 3.1736, 1.2674, 1.1128, 3.2850, 8.8422, 0.3136, 129.424, 0.6760),
    "Al": (6.4202, 1.9002, 1.5936, 1.9646, 3.0387, 0.7426, 31.5472, 85.0886, 1.1151),
    "Si": (6.2915, 3.0353, 1.9891, 1.5410, 2.4386, 32.3337, 0.6785, 81.6937, 1.1407),
    "Ca": (8.6266, 7.3873, 1.5899, 1.0211, 10.4421, 0.6599, 85.7484, 178.437, 1.3751),
    "Cu": (13.338, 7.1676, 5.6158, 1.6735, 3.5828, 0.2470, 11.3966, 64.8126, 1.1910),
    "Zr": (17.8765, 10.948, 5.41732, 3.65721, 1.27618, 11.916, 0.117622, 87.6627, 2.06929),
}

#: Bound coherent neutron scattering lengths, fm (Sears 1992, NIST table), natural isotopes.
NEUTRON_LENGTHS: dict[str, float] = {
    "Li": -1.90, "B": 5.30, "O": 5.803, "Na": 3.63, "Al": 3.449, "Si": 4.1491,
    "Ca": 4.70, "Cu": 7.718, "Zr": 7.16,
}

WEIGHTINGS = ("xray", "neutron", "number")
# Gaussians are cut at this many widths.
_KERNEL_WIDTHS = 5.0


def form_factors(symbols: Sequence[str], q: np.ndarray, weighting: str = "xray") -> np.ndarray:
    """Scattering weights ``(S, M)`` of each species at each ``q`` (1/Å).

    ``"xray"``: Cromer-Mann form factors, electrons; ``"neutron"``: coherent scattering
    lengths, fm (constant in q); ``"number"``: 1 (the Bhatia-Thornton number-number S(q)).

    >>> round(float(form_factors(["Si"], np.array([0.0]))[0, 0]), 2)
    14.0
    """
    if weighting not in WEIGHTINGS:
        raise AmdenError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}")
    table = {"xray": CROMER_MANN, "neutron": NEUTRON_LENGTHS}.get(weighting)
    if table is not None:
        missing = sorted(set(symbols) - set(table))
        if missing:
            raise AmdenError(
                f"no {weighting} scattering data for {missing}; tabulated elements: "
                f"{', '.join(sorted(table))} (or use weighting='number')"
            )
    q = np.asarray(q, dtype=float)
    if weighting == "number":
        return np.ones((len(symbols), q.size))
    if weighting == "neutron":
        return np.array([[NEUTRON_LENGTHS[s]] * q.size for s in symbols])
    s2 = (q / (4.0 * math.pi)) ** 2
    rows = []
    for symbol in symbols:
        coefficients = CROMER_MANN[symbol]
        a, b, c = coefficients[:4], coefficients[4:8], coefficients[8]
        rows.append(c + sum(ai * np.exp(-bi * s2) for ai, bi in zip(a, b, strict=True)))
    return np.array(rows)


def partial_rdfs(
    positions: Tensor,
    species: Tensor,
    cell: Tensor,
    system_idx: Tensor,
    n_species: int,
    rmax: float,
    dr: float = 0.02,
    sigma: float = 0.05,
) -> tuple[Tensor, Tensor]:
    """Smoothed partial g_ab(r) of a batch, differentiable with respect to ``positions``.

    Parameters
    ----------
    positions
        ``(N, 3)`` Cartesian positions, Å.
    species
        ``(N,)`` long, species index of each atom in ``[0, n_species)``.
    cell
        ``(B, 3, 3)`` cells, rows are lattice vectors, Å.
    system_idx
        ``(N,)`` long, structure of each atom.
    n_species
        Number of species ``S``.
    rmax
        Largest distance, Å (the caller keeps it at most half the smallest cell width).
    dr
        Grid spacing, Å; the grid holds the bin centres ``(k + 1/2) dr < rmax``.
    sigma
        Width of the Gaussian smoothing each distance, Å.

    Returns
    -------
    r
        ``(R,)`` grid, Å.
    g
        ``(B, S, S, R)`` partials; 0 for a pair of species absent from a structure.

    """
    n_bins = int(math.floor(rmax / dr + 1e-9))
    dtype, device = positions.dtype, positions.device
    r = (torch.arange(n_bins, dtype=dtype, device=device) + 0.5) * dr
    n_systems = cell.shape[0]
    reach = int(math.ceil(_KERNEL_WIDTHS * sigma / dr))
    src, dst, shift = periodic_graph(positions, cell, system_idx, rmax + _KERNEL_WIDTHS * sigma)
    distance = torch.linalg.norm(positions[dst] - positions[src] + shift, dim=-1)
    centre = torch.floor(distance.detach() / dr).long()
    offsets = torch.arange(-reach, reach + 1, device=device)
    bins = centre[:, None] + offsets[None, :]
    inside = (bins >= 0) & (bins < n_bins)
    bins = bins.clamp(0, n_bins - 1)
    kernel = torch.exp(-0.5 * ((r[bins] - distance[:, None]) / sigma) ** 2)
    kernel = kernel * inside / (math.sqrt(2.0 * math.pi) * sigma)
    system = system_idx[src]
    channel = (system * n_species + species[src]) * n_species + species[dst]
    flat = torch.zeros(n_systems * n_species * n_species * n_bins, dtype=dtype, device=device)
    flat = flat.index_add(0, (channel[:, None] * n_bins + bins).reshape(-1), kernel.reshape(-1))
    counts = torch.zeros(n_systems, n_species, dtype=dtype, device=device)
    counts = counts.index_put((system_idx, species), torch.ones_like(species, dtype=dtype),
                              accumulate=True)
    volume = torch.abs(torch.linalg.det(cell)).to(dtype)
    pairs = counts[:, :, None] * counts[:, None, :]
    norm = volume[:, None, None] / pairs.clamp(min=1.0) * (pairs > 0)
    g = flat.view(n_systems, n_species, n_species, n_bins) * norm[..., None]
    return r, g / (4.0 * math.pi * r**2)


def _lorch_transform(r: Tensor, q: Tensor, rmax: float) -> Tensor:
    """``(M, R)`` kernel ``4 pi r^2 sin(qr)/(qr) W(r) dr`` of the windowed sine transform."""
    dr = float(r[1] - r[0]) if r.numel() > 1 else float(2 * r[0])
    window = torch.sinc(r / rmax)  # torch.sinc(x) = sin(pi x) / (pi x)
    qr = q[:, None] * r[None, :]
    return 4.0 * math.pi * r**2 * torch.sin(qr) / qr * window * dr


def weighted_structure_factor(
    g: Tensor,
    r: Tensor,
    counts: Tensor,
    volume: Tensor,
    q: Tensor,
    weights: Tensor,
    rmax: float,
) -> Tensor:
    """Total Faber-Ziman S(q) ``(B, M)`` from partials ``g (B, S, S, R)``.

    ``counts (B, S)`` atoms of each species, ``volume (B,)`` Å^3, ``weights (S, M)``
    scattering weights at ``q (M,)`` (1/Å).
    """
    kernel = _lorch_transform(r, q, rmax)
    n_total = counts.sum(dim=1)
    rho = n_total / volume
    partial = rho[:, None, None, None] * torch.einsum("bstr,mr->bstm", g - 1.0, kernel)
    c = counts / n_total[:, None]
    cw = c[:, :, None] * weights[None]  # (B, S, M)
    numerator = torch.einsum("bsm,btm,bstm->bm", cw, cw, partial)
    return 1.0 + numerator / cw.sum(dim=1) ** 2


class ScatteringSetup:
    """A measured observable and how to compute it for a batch: the guidance target.

    Parameters
    ----------
    kind
        ``"structure_factor"`` (``x`` = q, 1/Å) or ``"rdf"`` (``x`` = r, Å).
    x, y
        Measured grid and values, 1-D, same length, finite.
    symbols
        Element of each species index used by the batch (e.g. the model's elements).
    weighting
        ``"xray"``, ``"neutron"`` or ``"number"`` (S(q) only; g(r) is the number-weighted
        total).
    sigma
        Gaussian smoothing of g(r), Å.
    dr
        g(r) grid spacing, Å.

    """

    def __init__(self, kind: str, x, y, symbols: Sequence[str], weighting: str = "xray",
                 sigma: float = 0.05, dr: float = 0.02) -> None:
        if kind not in ("structure_factor", "rdf"):
            raise AmdenError(f"unknown observable {kind!r}; use 'structure_factor' or 'rdf'")
        self.x, self.y = _check_curve(kind, x, y)
        self.kind = kind
        self.symbols = list(symbols)
        self.weighting = weighting
        self.sigma = float(sigma)
        self.dr = float(dr)
        self.weights = form_factors(self.symbols, self.x, weighting) if kind == (
            "structure_factor") else None

    def rmax(self, cell: np.ndarray) -> float:
        """Largest usable distance for ``cell`` (3, 3), Å, checked against the grid."""
        widths = 1.0 / np.linalg.norm(np.linalg.inv(cell).T, axis=1)
        limit = float(widths.min() / 2.0)
        if self.kind == "rdf":
            if self.x.max() > limit:
                raise AmdenError(
                    f"the measured g(r) reaches r = {self.x.max():g} Å but the cell allows "
                    f"r <= {limit:.3f} Å (half its smallest width); cut the data or use a "
                    "larger cell")
            return limit
        q_min = 2.0 * math.pi / limit
        if self.x.min() < q_min:
            raise AmdenError(
                f"q = {self.x.min():g} 1/Å is below the smallest resolvable q = 2 pi / rmax = "
                f"{q_min:.3f} 1/Å of this cell (rmax = {limit:.3f} Å, half its smallest width); "
                "drop the low-q points or use a larger cell")
        return limit

    def __call__(self, positions: Tensor, species: Tensor, cell: Tensor,
                 system_idx: Tensor) -> Tensor:
        """Computed observable ``(B, M)`` on the measured grid, differentiable."""
        rmax = self.rmax(cell[0].detach().cpu().double().numpy())
        n_species = len(self.symbols)
        if self.kind == "rdf":  # g(r) is needed only up to the last measured r
            rmax = min(rmax, float(self.x.max()) + 2 * self.dr + _KERNEL_WIDTHS * self.sigma)
        r, g = partial_rdfs(positions, species, cell, system_idx, n_species, rmax,
                            self.dr, self.sigma)
        dtype = positions.dtype
        counts = torch.zeros(cell.shape[0], n_species, dtype=dtype, device=positions.device)
        counts = counts.index_put((system_idx, species), torch.ones_like(species, dtype=dtype),
                                  accumulate=True)
        volume = torch.abs(torch.linalg.det(cell)).to(dtype)
        x = torch.as_tensor(self.x, dtype=dtype, device=positions.device)
        if self.kind == "rdf":
            c = counts / counts.sum(dim=1, keepdim=True)
            total = torch.einsum("bs,bt,bstr->br", c, c, g)
            return _interpolate(total, r, x)
        weights = torch.as_tensor(self.weights, dtype=dtype, device=positions.device)
        return weighted_structure_factor(g, r, counts, volume, x, weights, rmax)

    def misfit(self, computed: Tensor) -> Tensor:
        """Squared misfit per structure ``(B,)``: ``sum (computed - measured)^2``."""
        y = torch.as_tensor(self.y, dtype=computed.dtype, device=computed.device)
        return ((computed - y) ** 2).sum(dim=-1)

    def rfactor(self, computed: Tensor) -> np.ndarray:
        """R-factor per structure ``(B,)`` of the interference function (see :func:`rfactor`)."""
        return np.array([rfactor(row, self.y) for row in computed.detach().cpu().numpy()])


def _interpolate(values: Tensor, grid: Tensor, x: Tensor) -> Tensor:
    """Linear interpolation of ``values (B, R)`` on a uniform ``grid`` at points ``x``."""
    step = grid[1] - grid[0]
    position = ((x - grid[0]) / step).clamp(0, grid.numel() - 1.000001)
    lower = position.floor().long()
    frac = position - lower
    return values[:, lower] * (1 - frac) + values[:, lower + 1] * frac


def _check_curve(kind: str, x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    name = "q" if kind == "structure_factor" else "r"
    if x.ndim != 1 or y.shape != x.shape or x.size < 2:
        raise AmdenError(
            f"the measured {kind} needs 1-D arrays {name} and values of the same length (>= 2), "
            f"got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise AmdenError(f"the measured {kind} holds NaN or infinite values; remove those points")
    if (x <= 0).any():
        raise AmdenError(f"{name} must be positive, got a minimum of {x.min():g}")
    return x, y


def rfactor(computed, measured) -> float:
    """R-factor ``sqrt(sum (F_calc - F_meas)^2 / sum F_meas^2)`` (Wright's R_chi).

    ``F`` is the interference function: ``S(q) - 1`` or ``g(r) - 1``, so that the
    R-factor measures structure, not the constant 1. Arrays of the same shape.

    >>> rfactor([1.5, 0.5], [1.5, 0.5])
    0.0
    """
    computed = np.asarray(computed, dtype=float)
    measured = np.asarray(measured, dtype=float)
    if computed.shape != measured.shape:
        raise AmdenError(f"computed {computed.shape} and measured {measured.shape} differ in shape")
    if not (np.isfinite(computed).all() and np.isfinite(measured).all()):
        raise AmdenError("R-factor of NaN or infinite values; check both curves")
    reference = np.sum((measured - 1.0) ** 2)
    if reference == 0:
        raise AmdenError("the measured curve is 1 everywhere: the R-factor is undefined")
    return float(np.sqrt(np.sum((computed - measured) ** 2) / reference))


def _batch(images: list[Atoms]):
    symbols = sorted({s for atoms in images for s in atoms.get_chemical_symbols()},
                     key=lambda s: Atoms(s).numbers[0])
    index = {s: i for i, s in enumerate(symbols)}
    positions = torch.as_tensor(np.concatenate([a.positions for a in images]))
    species = torch.as_tensor([index[s] for a in images for s in a.get_chemical_symbols()])
    cell = torch.as_tensor(np.stack([a.cell.array for a in images]))
    system_idx = torch.repeat_interleave(torch.arange(len(images)),
                                         torch.as_tensor([len(a) for a in images]))
    return symbols, positions, species, cell, system_idx


def _rmax(images: list[Atoms], rmax: float | None) -> float:
    limit = largest_rmax(images)
    if rmax is None:
        return limit
    if not (math.isfinite(rmax) and 0 < rmax <= limit + 1e-12):
        raise AmdenError(f"rmax must be in (0, {limit:.4f}] Å (half the smallest cell width), "
                         f"got {rmax}")
    return float(rmax)


def pair_distribution(
    images: Images,
    rmax: float | None = None,
    dr: float = 0.02,
    sigma: float = 0.05,
    partial: bool = False,
) -> tuple[np.ndarray, np.ndarray | dict[tuple[str, str], np.ndarray]]:
    """Smoothed g(r) averaged over images (Gaussian of width ``sigma`` per distance).

    Returns ``(r, g)`` with ``r`` the grid (Å) and ``g`` the total g(r), or with
    ``partial`` a dict ``{("Si", "O"): g_SiO, ...}`` of Faber-Ziman partials.
    ``rmax`` defaults to half the smallest cell width of the images (its upper limit).
    """
    images = as_images(images)
    rmax = _rmax(images, rmax)
    symbols, positions, species, cell, system_idx = _batch(images)
    with torch.no_grad():
        r, g = partial_rdfs(positions, species, cell, system_idx, len(symbols), rmax, dr, sigma)
    counts = np.array([[np.sum(a.numbers == Atoms(s).numbers[0]) for s in symbols]
                       for a in images], dtype=float)
    if partial:
        return r.numpy(), {(a, b): g[:, i, j].mean(dim=0).numpy()
                           for i, a in enumerate(symbols) for j, b in enumerate(symbols)}
    c = torch.as_tensor(counts / counts.sum(axis=1, keepdims=True))
    return r.numpy(), torch.einsum("bs,bt,bstr->br", c, c, g).mean(dim=0).numpy()


def structure_factor(
    images: Images,
    q,
    weighting: str = "xray",
    rmax: float | None = None,
    dr: float = 0.02,
    sigma: float = 0.05,
) -> np.ndarray:
    """Faber-Ziman total S(q) with X-ray, neutron or unit weights, averaged over images.

    ``q`` (1/Å) must lie at or above ``2 pi / rmax``: below it, g(r) known only to
    ``rmax`` cannot resolve S(q).
    """
    images = as_images(images)
    rmax = _rmax(images, rmax)
    q = np.asarray(q, dtype=float)
    _check_curve("structure_factor", q, q)
    if q.min() < 2 * math.pi / rmax:
        raise AmdenError(
            f"q = {q.min():g} 1/Å is below 2 pi / rmax = {2 * math.pi / rmax:.3f} 1/Å "
            f"(rmax = {rmax:.3f} Å); drop the low-q points or use larger cells")
    symbols, positions, species, cell, system_idx = _batch(images)
    weights = torch.as_tensor(form_factors(symbols, q, weighting))
    with torch.no_grad():
        r, g = partial_rdfs(positions, species, cell, system_idx, len(symbols), rmax, dr, sigma)
        counts = torch.zeros(len(images), len(symbols), dtype=torch.float64)
        counts = counts.index_put((system_idx, species), torch.ones(len(species),
                                  dtype=torch.float64), accumulate=True)
        volume = torch.abs(torch.linalg.det(cell))
        s = weighted_structure_factor(g, r, counts, volume, torch.as_tensor(q), weights, rmax)
    return s.mean(dim=0).numpy()
