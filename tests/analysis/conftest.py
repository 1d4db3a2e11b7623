import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal

A_SI = 5.431  # Å, diamond Si (also the Stillinger-Weber equilibrium lattice constant)


@pytest.fixture
def diamond() -> Atoms:
    """Diamond Si, cubic 8-atom cell repeated 2x2x2 (64 atoms, 10.862 Å)."""
    return bulk("Si", "diamond", a=A_SI, cubic=True).repeat(2)


def cristobalite_cell() -> Atoms:
    """Ideal beta-cristobalite SiO2 (Fd-3m, a = 7.16 Å, Si-O 1.55 Å, Si-O-Si 180 deg), 24 atoms."""
    return crystal(
        ["Si", "O"],
        basis=[(0.0, 0.0, 0.0), (0.125, 0.125, 0.125)],
        spacegroup=227,
        cellpar=[7.16, 7.16, 7.16, 90, 90, 90],
    )


@pytest.fixture
def cristobalite() -> Atoms:
    """Beta-cristobalite repeated 2x2x2 (192 atoms, 14.32 Å)."""
    return cristobalite_cell().repeat(2)


def ideal_gas(n_atoms: int, length: float, seed: int) -> Atoms:
    rng = np.random.default_rng(seed)
    return Atoms(
        "Si" * n_atoms,
        positions=rng.uniform(0.0, length, size=(n_atoms, 3)),
        cell=[length] * 3,
        pbc=True,
    )


@pytest.fixture
def gas() -> list[Atoms]:
    """Five uncorrelated uniform random configurations, 400 atoms in a 12 Å cube each."""
    return [ideal_gas(400, 12.0, seed) for seed in range(5)]
