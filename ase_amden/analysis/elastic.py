"""Elastic constants by finite differences of the stress, and isotropic moduli."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.optimize import LBFGS
from ase.optimize.optimize import Optimizer
from ase.units import GPa
from matscipy.elasticity import Voigt_6_to_full_3x3_strain

from ..structures import as_images
from .relax import MAX_STEPS, as_calculator, relax


def elastic_tensor(
    atoms: Atoms,
    calculator: Calculator | str,
    strain: float = 0.01,
    relax_ions: bool = True,
    fmax: float = 1e-3,
    steps: int = MAX_STEPS,
    optimizer: type[Optimizer] = LBFGS,
) -> np.ndarray:
    """Elastic stiffness tensor C (6x6 Voigt, GPa) by central differences of the stress.

    For each Voigt strain component k (xx, yy, zz, yz, xz, xy; shear as engineering strain
    gamma = 2 eps_ij) the cell is deformed by +-``strain`` (cell rows are lattice vectors,
    so the new cell is ``cell @ (I + eps).T``, atoms scaled with it); with ``relax_ions``
    the positions are relaxed at fixed cell; column k of C is
    (sigma(+strain) - sigma(-strain)) / (2 strain). The result is symmetrised,
    (C + C.T) / 2. The reference cell should be at zero stress (relax it first,
    e.g. ``relax(atoms, calc, relax_cell=True)``); the input is left unchanged.

    Parameters
    ----------
    atoms
        Periodic structure.
    calculator
        ASE calculator with stress, or a potential name (``"sw-si"``).
    strain
        Strain amplitude (dimensionless).
    relax_ions
        Relax positions in the reference and every strained cell (relaxed-ion constants);
        False gives clamped-ion constants.
    fmax
        Force tolerance of the ionic relaxations, eV/Å.
    steps
        Largest number of optimizer steps per relaxation.
    optimizer
        ASE optimizer class for the fixed-cell relaxations.

    Returns
    -------
    numpy.ndarray, shape (6, 6)
        C_ij in GPa, Voigt order xx, yy, zz, yz, xz, xy (ASE's stress order).

    Examples
    --------
    >>> from ase.build import bulk
    >>> C = elastic_tensor(bulk("Si", "diamond", a=5.431, cubic=True), "sw-si")
    >>> [round(float(C[0, 0])), round(float(C[0, 1])), round(float(C[3, 3]))]
    [151, 76, 56]

    """
    (reference,) = as_images(atoms)
    if strain <= 0:
        raise ValueError(f"strain must be positive, got {strain}")
    calc = as_calculator(calculator)
    if relax_ions:
        reference = relax(reference, calc, fmax, steps, optimizer=optimizer)
    cell = np.array(reference.cell)
    C = np.zeros((6, 6))
    for k in range(6):
        stresses = []
        for sign in (1.0, -1.0):
            voigt = np.zeros(6)
            voigt[k] = sign * strain
            deformation = np.eye(3) + Voigt_6_to_full_3x3_strain(voigt)
            strained = reference.copy()
            strained.set_cell(cell @ deformation.T, scale_atoms=True)
            if relax_ions:
                strained = relax(strained, calc, fmax, steps, optimizer=optimizer)
            else:
                strained.calc = calc
            stresses.append(strained.get_stress(voigt=True))
        C[:, k] = (stresses[0] - stresses[1]) / (2.0 * strain) / GPa
    return 0.5 * (C + C.T)


def isotropic_moduli(C: np.ndarray, average: str = "hill") -> dict[str, float]:
    """Isotropic bulk, shear and Young's moduli and Poisson's ratio of a stiffness tensor.

    Voigt (uniform strain) and Reuss (uniform stress) bounds:
    K_V = (C11+C22+C33 + 2(C12+C23+C13)) / 9,
    G_V = (C11+C22+C33 - (C12+C23+C13) + 3(C44+C55+C66)) / 15,
    1/K_R = S11+S22+S33 + 2(S12+S23+S13),
    15/G_R = 4(S11+S22+S33) - 4(S12+S23+S13) + 3(S44+S55+S66), S = C^-1;
    Hill is their mean. Then E = 9KG/(3K+G) and nu = (3K-2G)/(2(3K+G)).
    For an isotropic tensor all three averages coincide.

    Parameters
    ----------
    C
        Stiffness tensor, shape (6, 6), Voigt notation (any pressure unit, GPa here).
    average
        ``"hill"`` (default), ``"voigt"`` or ``"reuss"``.

    Returns
    -------
    dict
        ``K``, ``G``, ``E`` (units of C) and ``nu`` (dimensionless).

    Examples
    --------
    >>> lam, mu = 50.0, 30.0  # Lame constants of an isotropic solid, GPa
    >>> C = np.diag([lam + 2 * mu] * 3 + [mu] * 3)
    >>> C[:3, :3] += lam * (1 - np.eye(3))
    >>> {k: round(v, 4) for k, v in isotropic_moduli(C).items()}
    {'K': 70.0, 'G': 30.0, 'E': 78.75, 'nu': 0.3125}

    """
    C = np.asarray(C, dtype=float)
    if C.shape != (6, 6):
        raise ValueError(f"C must be a 6x6 Voigt matrix, got shape {C.shape}")
    S = np.linalg.inv(C)
    diag, off, shear = (0, 1, 2), ((0, 1), (1, 2), (0, 2)), (3, 4, 5)
    K_V = (sum(C[i, i] for i in diag) + 2 * sum(C[p] for p in off)) / 9
    G_V = sum(C[i, i] for i in diag) - sum(C[p] for p in off) + 3 * sum(C[i, i] for i in shear)
    G_V /= 15
    K_R = 1.0 / (sum(S[i, i] for i in diag) + 2 * sum(S[p] for p in off))
    G_R = 15.0 / (
        4 * sum(S[i, i] for i in diag)
        - 4 * sum(S[p] for p in off)
        + 3 * sum(S[i, i] for i in shear)
    )
    bounds = {"voigt": (K_V, G_V), "reuss": (K_R, G_R), "hill": ((K_V + K_R) / 2, (G_V + G_R) / 2)}
    if average not in bounds:
        raise ValueError(f"average must be 'hill', 'voigt' or 'reuss', got {average!r}")
    K, G = bounds[average]
    return {
        "K": float(K),
        "G": float(G),
        "E": float(9 * K * G / (3 * K + G)),
        "nu": float((3 * K - 2 * G) / (2 * (3 * K + G))),
    }
