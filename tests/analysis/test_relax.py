import numpy as np
import pytest
from ase.build import bulk

from ase_amden.analysis import relax, relaxed_energies, relaxed_energy
from ase_amden.potentials import get_calculator

from .conftest import A_SI

SW_DIAMOND = -4.3366  # eV/atom, Stillinger-Weber diamond Si (2 x -2.1683)


def test_relaxed_energy_of_rattled_diamond(diamond):
    rattled = diamond.copy()
    rattled.rattle(0.05, seed=0)
    before = rattled.positions.copy()
    assert relaxed_energy(rattled, "sw-si") == pytest.approx(SW_DIAMOND, abs=1e-4)
    np.testing.assert_array_equal(rattled.positions, before)


def test_per_structure_energies_and_mean(diamond):
    calc = get_calculator("sw-si")
    small = bulk("Si", "diamond", a=A_SI, cubic=True)
    small.rattle(0.03, seed=2)
    energies = relaxed_energies([diamond, small], calc)
    assert energies.shape == (2,)
    np.testing.assert_allclose(energies, SW_DIAMOND, atol=1e-4)
    assert relaxed_energy([diamond, small], calc) == pytest.approx(energies.mean())


def test_cell_relaxation_recovers_lattice_constant():
    strained = bulk("Si", "diamond", a=1.02 * A_SI, cubic=True)
    calc = get_calculator("sw-si")
    fixed = relaxed_energy(strained, calc)
    assert fixed > SW_DIAMOND + 0.01
    relaxed = relax(strained, calc, fmax=1e-4, relax_cell=True)
    assert relaxed.cell.lengths() == pytest.approx([A_SI] * 3, abs=2e-3)
    assert relaxed_energy(strained, calc, relax_cell=True) == pytest.approx(SW_DIAMOND, abs=1e-4)


def test_unconverged_relaxation_warns(diamond):
    rattled = diamond.copy()
    rattled.rattle(0.1, seed=4)
    with pytest.warns(RuntimeWarning, match="did not reach fmax"):
        relaxed_energy(rattled, "sw-si", fmax=1e-6, steps=2)
