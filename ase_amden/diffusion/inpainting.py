"""Positional inpainting: generate atoms around atoms held fixed (RePaint, Lugmayr et al. 2022).

The fixed atoms of a template (ASE ``FixAtoms`` or a boolean mask) keep their elements and
positions: :func:`~ase_amden.diffusion.run_sampler` sets them to their known positions noised
to the current time before every step and to exactly the known positions at the end. This
module holds what the generator needs around that: the plan (which atoms, how many to add),
the starting positions of the free atoms (kept away from the fixed ones) and the check of the
seam afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.constraints import FixAtoms
from ase.data import atomic_numbers, covalent_radii
from ase.geometry import get_distances

from ase_amden.errors import AmdenError, InvalidStructureError

__all__ = ["InpaintingPlan", "fixed_atoms_mask", "min_distances", "place_free_atoms",
           "plan_inpainting"]

#: Default closest approach of a generated atom to a fixed one, as a fraction of the sum of
#: covalent radii (the model cards store no minimum distance of their data; 0.75 keeps
#: Si-Si >= 1.67 Å and Si-O >= 1.33 Å, below the shortest bonds of the training glasses).
MIN_DISTANCE_FRACTION = 0.75


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
        Closest allowed free-fixed distance, Å.

    """

    cell: np.ndarray
    fixed_positions: np.ndarray
    fixed_symbols: list[str]
    free_symbols: list[str]
    min_distance: float

    @property
    def n_fixed(self) -> int:
        """Number of fixed atoms ``F``."""
        return len(self.fixed_symbols)


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
                    density: float | None, min_distance: float | None) -> InpaintingPlan:
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
    if min_distance is None:
        radius = max(covalent_radii[atomic_numbers[s]] for s in set(elements))
        min_distance = MIN_DISTANCE_FRACTION * 2 * radius
    return InpaintingPlan(np.array(template.cell.array), fixed.positions.copy(),
                          fixed.get_chemical_symbols(), list(free_symbols), float(min_distance))


def place_free_atoms(plan: InpaintingPlan, n_systems: int, generator: torch.Generator | None,
                     tries: int = 200) -> np.ndarray:
    """Uniform starting positions ``(B, n_free, 3)`` at least ``min_distance`` from fixed atoms.

    Each atom is redrawn until it is far enough (at most ``tries`` times; then it keeps its
    last draw and the final check reports it).
    """
    n_free = len(plan.free_symbols)
    out = np.empty((n_systems, n_free, 3))
    for b in range(n_systems):
        todo = np.arange(n_free)
        for _ in range(tries):
            fractional = torch.rand((todo.size, 3), generator=generator,
                                    dtype=torch.float64).numpy()
            out[b, todo] = fractional @ plan.cell
            too_close = min_distances(out[b, todo], plan.fixed_positions, plan.cell) < (
                plan.min_distance)
            todo = todo[too_close]
            if todo.size == 0:
                break
    return out


def min_distances(free: np.ndarray, fixed: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Periodic distance ``(n_free,)`` of each free atom to its nearest fixed atom, Å."""
    if len(fixed) == 0 or len(free) == 0:
        return np.full(len(free), np.inf)
    _, distances = get_distances(free, fixed, cell=cell, pbc=True)
    return distances.min(axis=1)


def push_free_atoms(free: np.ndarray, plan: InpaintingPlan, sweeps: int = 10) -> np.ndarray:
    """Move free atoms closer than ``min_distance`` to a fixed atom radially out to it.

    Returns the new ``(n_free, 3)`` positions, Å; a few sweeps settle atoms near several
    fixed ones.
    """
    free = free.copy()
    if len(plan.fixed_positions) == 0:
        return free
    for _ in range(sweeps):
        vectors, distances = get_distances(plan.fixed_positions, free, cell=plan.cell, pbc=True)
        nearest = distances.argmin(axis=0)
        columns = np.arange(len(free))
        d = distances[nearest, columns]
        close = d < plan.min_distance
        if not close.any():
            break
        v = vectors[nearest[close], columns[close]]
        d = np.maximum(d[close], 1e-6)[:, None]
        free[close] += v / d * (plan.min_distance * (1 + 1e-6) - d)
    return free
