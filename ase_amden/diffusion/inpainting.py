"""Positional inpainting: generate atoms around atoms held fixed (RePaint, Lugmayr et al. 2022).

The fixed atoms of a template (ASE ``FixAtoms`` or a boolean mask) keep their elements and
positions: :func:`~ase_amden.diffusion.run_sampler` sets them to their known positions noised
to the current time before every step and to exactly the known positions at the end. This
module holds what the generator needs around that: the plan (which atoms, how many to add),
the starting positions of the free atoms (kept away from the fixed ones) and the check of the
seam afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms
from ase.constraints import FixAtoms
from ase.data import atomic_numbers
from ase.geometry import get_distances

from ase_amden.checks import min_distance_limits, pair_name
from ase_amden.errors import AmdenError, InvalidStructureError

__all__ = ["InpaintingPlan", "fixed_atoms_mask", "min_distances", "place_free_atoms",
           "plan_inpainting"]

#: Closest approach of a generated atom to a fixed one, for element pairs the model's training
#: data never showed, as a fraction of the sum of their covalent radii (Si-Si 1.78 Å, Si-O
#: 1.42 Å); pairs it showed use the closest distance of its training data
#: (``card.training["min_distances"]``: a-Si 2.17 Å, a-SiO2 O-Si 1.54 Å).
MIN_DISTANCE_FRACTION = 0.8


@dataclass
class InpaintingPlan:
    """What to hold and what to generate in one template.

    Attributes
    ----------
    cell
        ``(3, 3)`` template cell, rows are lattice vectors, Å.
    fixed_positions
        ``(F, 3)`` positions of the fixed atoms, Å, as given.
    fixed_symbols
        Their elements.
    free_symbols
        Elements of the atoms to generate.
    min_distance
        Closest allowed free-fixed distance, Å, or None for the closest distance of the
        pair in the training data (``training_min_distances``), else
        ``MIN_DISTANCE_FRACTION`` x the sum of the two atoms' covalent radii.
    training_min_distances
        Closest distance per element pair (``"O-Si"``) in the model's training data, Å.

    """

    cell: np.ndarray
    fixed_positions: np.ndarray
    fixed_symbols: list[str]
    free_symbols: list[str]
    min_distance: float | None
    training_min_distances: Mapping[str, float] = field(default_factory=dict)

    @property
    def n_fixed(self) -> int:
        """Number of fixed atoms ``F``."""
        return len(self.fixed_symbols)

    def thresholds(self) -> np.ndarray:
        """Closest allowed distance ``(n_free, F)`` of each free atom to each fixed atom, Å."""
        if self.min_distance is not None:
            return np.full((len(self.free_symbols), self.n_fixed), self.min_distance)
        limits = min_distance_limits(
            sorted(set(self.free_symbols) | set(self.fixed_symbols)),
            {"min_distances": self.training_min_distances},
            training_factor=1.0, covalent_factor=MIN_DISTANCE_FRACTION)
        free = [atomic_numbers[s] for s in self.free_symbols]
        fixed = [atomic_numbers[s] for s in self.fixed_symbols]
        return np.array([[limits[pair_name(a, b)] for b in fixed] for a in free]).reshape(
            len(free), len(fixed))

    def violations(self, free: np.ndarray) -> np.ndarray:
        """Boolean ``(n_free,)``: free atoms at ``free`` (Å) closer than allowed to a fixed one."""
        if self.n_fixed == 0:
            return np.zeros(len(free), dtype=bool)
        _, distances = get_distances(free, self.fixed_positions, cell=self.cell, pbc=True)
        return (distances < self.thresholds()[: len(free)]).any(axis=1)


def fixed_atoms_mask(template: Atoms, fixed_mask=None) -> np.ndarray:
    """Boolean ``(n,)`` mask of the template atoms to hold: ``fixed_mask`` or its FixAtoms."""
    if fixed_mask is not None:
        mask = np.asarray(fixed_mask)
        if mask.dtype != bool or mask.shape != (len(template),):
            raise AmdenError(
                f"fixed_mask must be a boolean array of shape ({len(template)},) (one entry per "
                f"template atom), got dtype {mask.dtype} and shape {mask.shape}")
        return mask
    mask = np.zeros(len(template), dtype=bool)
    for constraint in template.constraints:
        if isinstance(constraint, FixAtoms):
            mask[constraint.get_indices()] = True
    if not mask.any():
        raise AmdenError(
            "the template holds no fixed atoms: add ase.constraints.FixAtoms(indices=...) to "
            "template.constraints, or pass fixed_mask=")
    return mask


def plan_inpainting(template: Atoms, fixed_mask, elements: list[str], free_symbols,
                    density: float | None, min_distance: float | None,
                    training_min_distances: Mapping[str, float] | None = None) -> InpaintingPlan:
    """Check the template and count the atoms to generate.

    ``free_symbols`` (the generated atoms, from ``composition``/``n_atoms``) wins; else the
    number of free atoms is ``round(density V) - F`` of the model's single element.
    """
    if not isinstance(template, Atoms):
        raise AmdenError(f"template must be an ase.Atoms, got {type(template).__name__}")
    if template.cell.rank < 3 or abs(template.cell.volume) < 1e-6:
        raise InvalidStructureError(
            "the template has no cell (or a zero-volume one): give it the periodic cell to fill, "
            "e.g. template.cell = [20, 20, 30]; template.pbc = True")
    if not template.pbc.all():
        raise InvalidStructureError(
            f"the template must be periodic in all directions, got pbc={template.pbc.tolist()}; "
            "set template.pbc = True (add vacuum to the cell for a surface)")
    mask = fixed_atoms_mask(template, fixed_mask)
    fixed = template[mask]
    unknown = sorted(set(fixed.get_chemical_symbols()) - set(elements))
    if unknown:
        raise AmdenError(f"fixed atoms of element(s) {unknown} are not among the model's "
                         f"elements {elements}")
    if free_symbols is None:
        if len(elements) != 1:
            raise AmdenError(
                f"give composition= (the atoms to generate) for model with elements {elements}")
        n_free = round(density * template.cell.volume) - len(fixed)
        if n_free < 1:
            raise AmdenError(
                f"no room for generated atoms: density x cell volume = "
                f"{density * template.cell.volume:.1f} atoms, and {len(fixed)} are fixed; use a "
                "larger cell, a higher density or n_atoms=")
        free_symbols = [elements[0]] * n_free
    if min_distance is not None and not (np.isfinite(min_distance) and min_distance >= 0):
        raise AmdenError(f"min_distance must be a distance >= 0 in Å, got {min_distance}")
    return InpaintingPlan(np.array(template.cell.array), fixed.positions.copy(),
                          fixed.get_chemical_symbols(), list(free_symbols), min_distance,
                          dict(training_min_distances or {}))


def place_free_atoms(plan: InpaintingPlan, generators: Sequence[torch.Generator | None],
                     tries: int = 200) -> np.ndarray:
    """Uniform starting positions ``(B, n_free, 3)`` clear of the fixed atoms (``thresholds``).

    Structure ``b`` draws from ``generators[b]`` (one per structure, ``B`` of them).
    Each atom is redrawn until it is far enough (at most ``tries`` times; then it keeps its
    last draw and the final check reports it).
    """
    n_free = len(plan.free_symbols)
    out = np.empty((len(generators), n_free, 3))
    for b, generator in enumerate(generators):
        todo = np.arange(n_free)
        thresholds = plan.thresholds()
        for _ in range(tries):
            fractional = torch.rand((todo.size, 3), generator=generator,
                                    dtype=torch.float64).numpy()
            out[b, todo] = fractional @ plan.cell
            if plan.n_fixed == 0:
                break
            _, distances = get_distances(out[b, todo], plan.fixed_positions, cell=plan.cell,
                                         pbc=True)
            todo = todo[(distances < thresholds[todo]).any(axis=1)]
            if todo.size == 0:
                break
    return out


def min_distances(free: np.ndarray, fixed: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Periodic distance ``(n_free,)`` of each free atom to its nearest fixed atom, Å."""
    if len(fixed) == 0 or len(free) == 0:
        return np.full(len(free), np.inf)
    _, distances = get_distances(free, fixed, cell=cell, pbc=True)
    return distances.min(axis=1)


def push_free_atoms(free: np.ndarray, plan: InpaintingPlan, sweeps: int = 100) -> np.ndarray:
    """Move free atoms closer than allowed to a fixed atom radially out to the threshold.

    Returns the new ``(n_free, 3)`` positions, Å. Each sweep moves every offending atom
    away from the fixed atom it violates most; an atom wedged between fixed atoms may need
    several sweeps (``plan.violations`` tells what remains).
    """
    free = free.copy()
    if len(plan.fixed_positions) == 0:
        return free
    thresholds = plan.thresholds().T  # (F, n_free)
    columns = np.arange(len(free))
    for _ in range(sweeps):
        vectors, distances = get_distances(plan.fixed_positions, free, cell=plan.cell, pbc=True)
        worst = (distances - thresholds).argmin(axis=0)
        d = distances[worst, columns]
        limit = thresholds[worst, columns]
        close = d < limit
        if not close.any():
            break
        v = vectors[worst[close], columns[close]]
        d, limit = np.maximum(d[close], 1e-6)[:, None], limit[close][:, None]
        free[close] += v / d * (limit * (1 + 1e-6) - d)
    return free
