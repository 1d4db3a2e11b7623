"""Local relaxation with any ASE calculator and the energies it reaches."""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.filters import FrechetCellFilter
from ase.optimize import LBFGS
from ase.optimize.optimize import Optimizer

from ..structures import Images, as_images
from .symmetry import flag_crystalline

#: Default largest number of optimizer steps (AMShortcut B.6 allows 1500).
MAX_STEPS = 1500


def as_calculator(calculator: Calculator | str) -> Calculator:
    """Return a calculator object as is, or one of ``ase_amden.potentials`` by name."""
    if isinstance(calculator, str):
        from ..potentials import get_calculator

        return get_calculator(calculator)
    return calculator


def relax(
    atoms: Atoms,
    calculator: Calculator | str,
    fmax: float = 0.01,
    steps: int = MAX_STEPS,
    relax_cell: bool = False,
    optimizer: type[Optimizer] = LBFGS,
) -> Atoms:
    """Relax a copy of ``atoms`` locally; the input is left unchanged.

    Parameters
    ----------
    atoms
        Periodic structure.
    calculator
        ASE calculator, or a potential name of :func:`ase_amden.potentials.get_calculator`.
    fmax
        Force tolerance, eV/Å (with ``relax_cell`` also applied to the cell degrees of
        freedom of :class:`ase.filters.FrechetCellFilter`, i.e. stress times volume).
    steps
        Largest number of optimizer steps; a RuntimeWarning is issued if not converged.
    relax_cell
        Also relax cell shape and volume (to zero stress).
    optimizer
        ASE optimizer class; LBFGS by default (no dense Hessian, fine for large cells).

    Returns
    -------
    ase.Atoms
        The relaxed copy, with the calculator attached; ``info["crystalline"]``,
        ``["space_group"]`` and ``["space_group_number"]`` say whether it crystallized
        (:func:`ase_amden.analysis.symmetry.flag_crystalline`).

    """
    relaxed = atoms.copy()
    relaxed.calc = as_calculator(calculator)
    target = FrechetCellFilter(relaxed) if relax_cell else relaxed
    converged = optimizer(target, logfile=None).run(fmax=fmax, steps=steps)
    if not converged:
        warnings.warn(
            f"relaxation of {relaxed.get_chemical_formula()} did not reach fmax={fmax} eV/Å "
            f"in {steps} steps; raise steps or check the structure",
            RuntimeWarning,
            stacklevel=2,
        )
    return flag_crystalline(relaxed)


def relaxed_energies(
    images: Images,
    calculator: Calculator | str,
    fmax: float = 0.01,
    steps: int = MAX_STEPS,
    relax_cell: bool = False,
) -> np.ndarray:
    """Potential energy per atom of every structure after local relaxation.

    Parameters are those of :func:`relax`.

    Returns
    -------
    numpy.ndarray, shape (n_images,)
        Energies in eV/atom.

    """
    items = as_images(images)
    calc = as_calculator(calculator)
    return np.array(
        [
            relax(atoms, calc, fmax, steps, relax_cell).get_potential_energy() / len(atoms)
            for atoms in items
        ]
    )


def relaxed_energy(
    images: Images,
    calculator: Calculator | str,
    fmax: float = 0.01,
    steps: int = MAX_STEPS,
    relax_cell: bool = False,
) -> float:
    """Potential energy per atom after local relaxation, averaged over images.

    Positions only by default (fixed cell); ``relax_cell=True`` also relaxes the cell.
    See :func:`relax` for the parameters.

    Returns
    -------
    float
        Mean energy, eV/atom.

    """
    return float(np.mean(relaxed_energies(images, calculator, fmax, steps, relax_cell)))
