"""BMP-shrm (multi-element oxide glasses) through LAMMPS."""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.fd import calculate_numerical_forces
from ase.filters import FrechetCellFilter
from ase.neighborlist import neighbor_list
from ase.optimize import FIRE
from ase.spacegroup import crystal

from ase_amden.errors import UnknownNameError
from ase_amden.potentials import get_calculator
from ase_amden.potentials.bmp import BMPPotential


def cristobalite() -> Atoms:
    """Ideal beta-cristobalite (Fd-3m, a = 7.16 Å), Si8O16."""
    return crystal(["Si", "O"], basis=[(0, 0, 0), (0.125, 0.125, 0.125)], spacegroup=227,
                   cellpar=7.16)


def test_cristobalite_relaxes_to_known_geometry():
    atoms = cristobalite()
    atoms.rattle(0.05, seed=0)
    atoms.calc = get_calculator("bmp")
    FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=0.01, steps=500)
    i, j, d = neighbor_list("ijd", atoms, 2.0)
    si = atoms.numbers == 14
    # tetrahedral network: every Si has 4 O at the Si-O bond length of silica (1.61 Å)
    assert np.all(np.bincount(i, minlength=len(atoms))[si] == 4)
    assert d.mean() == pytest.approx(1.61, abs=0.03)
    density = atoms.get_masses().sum() / atoms.get_volume() * 1.66054
    assert density == pytest.approx(2.2, abs=0.15)  # high cristobalite, g/cm^3


def test_forces_are_minus_numerical_gradient_for_a_soda_lime_aluminosilicate():
    atoms = cristobalite()
    atoms.symbols[[0, 1]] = "Al"  # 2 Al (charge 1.8) + Na + Ca balance 2 Si (2.4)
    atoms += Atoms("NaCa", positions=[[1.79, 1.79, 5.37], [5.37, 5.37, 1.79]])
    atoms.rattle(0.05, seed=2)
    atoms.calc = get_calculator("bmp")
    analytic = atoms.get_forces()
    numeric = calculate_numerical_forces(atoms, eps=1e-4)
    np.testing.assert_allclose(analytic, numeric, atol=2e-3)
    assert np.abs(analytic).max() > 0.1  # not a trivially zero comparison


def test_charges_follow_a_change_of_species():
    atoms = cristobalite()
    atoms.symbols[0] = "Al"
    atoms += Atoms("Na", positions=[[1.79, 1.79, 5.37]])
    atoms.rattle(0.1, seed=4)  # sites 0 and 1 no longer equivalent
    calc = get_calculator("bmp")
    atoms.calc = calc
    before = atoms.get_potential_energy()
    swapped = atoms.copy()
    swapped.symbols[[0, 1]] = ["Si", "Al"]  # same count, other atom: types and charges move
    swapped.calc = calc
    reused = swapped.get_potential_energy()
    fresh = swapped.copy()
    fresh.calc = get_calculator("bmp")
    assert reused == pytest.approx(fresh.get_potential_energy(), abs=1e-8)
    assert abs(reused - before) > 0.01


def test_uncovered_element_and_bad_species_are_named():
    boron = cristobalite()
    boron.symbols[0] = "B"
    boron.calc = get_calculator("bmp")
    with pytest.raises(UnknownNameError, match="no parameters for \\['B'\\]"):
        boron.get_potential_energy()
    with pytest.raises(UnknownNameError, match="Fe2.*Fe3"):
        BMPPotential.for_elements({"Fe": "Fe4"})
    iron = BMPPotential.for_elements({"Fe": "Fe3"})
    assert "Fe" in iron.elements and "Fe" not in BMPPotential.for_elements().elements
