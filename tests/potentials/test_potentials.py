import numpy as np
import pytest
from ase.build import bulk

from ase_amden.errors import UnknownNameError
from ase_amden.potentials import POTENTIALS, get_calculator


def test_sw_diamond_energy_per_atom():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.calc = get_calculator("sw-si")
    assert atoms.get_potential_energy() / len(atoms) == pytest.approx(-4.3366, abs=1e-4)


def test_forces_are_minus_numerical_gradient():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = get_calculator("sw-si")
    analytic = atoms.get_forces()
    from ase.calculators.fd import calculate_numerical_forces

    numeric = calculate_numerical_forces(atoms, eps=1e-4)
    np.testing.assert_allclose(analytic, numeric, atol=1e-5)


@pytest.mark.parametrize("name, symbols", [("tersoff-sio2", "SiO2"), ("eam-cuzr", "CuZr")])
def test_other_potentials_give_finite_energies(name, symbols):
    if name == "eam-cuzr":
        atoms = bulk("Cu", "bcc", a=3.2, cubic=True) * (2, 2, 2)
        atoms.symbols[::2] = "Zr"
    else:
        from ase.spacegroup import crystal

        atoms = crystal(["Si", "O"], basis=[(0, 0, 0), (0.125, 0.125, 0.125)],
                        spacegroup=227, cellpar=7.16)
        assert atoms.get_chemical_formula() == "O16Si8"
    atoms.calc = get_calculator(name)
    energy = atoms.get_potential_energy() / len(atoms)
    assert np.isfinite(energy) and energy < 0


def test_unknown_potential_lists_valid_names():
    with pytest.raises(UnknownNameError) as err:
        get_calculator("lennard-jones")
    for name in POTENTIALS:
        assert name in str(err.value)
