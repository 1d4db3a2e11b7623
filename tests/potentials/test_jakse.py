"""The Jakse silica potential against the DM2 glasses that were made with it."""

from pathlib import Path

import numpy as np
import pytest
from ase.calculators.fd import calculate_numerical_forces
from ase.spacegroup import crystal
from ase.units import GPa, kB

from ase_amden.data import AmorphousDataset
from ase_amden.potentials import get_calculator

DM2 = Path(__file__).resolve().parents[2] / "datasets" / "dm2-a-SiO2.h5"


def test_dm2_glasses_sit_at_zero_pressure_and_order_by_cooling_rate():
    # The glasses were relaxed at 300 K and 0 GPa with this potential: their virial
    # pressure must balance the kinetic N kB T / V. A 3 % change of one C term moves it
    # by ~2 GPa. Slower cooling must also give a lower energy.
    dataset = AmorphousDataset(DM2)
    rates = dataset.properties("cooling_rate")
    energy, virial, kinetic = {}, [], []
    for rate in (0.1, 100.0):
        for i in np.flatnonzero(rates == rate)[:3]:
            atoms = dataset[int(i)]
            atoms.calc = get_calculator("jakse-sio2")
            energy.setdefault(rate, []).append(atoms.get_potential_energy() / len(atoms))
            virial.append(-atoms.get_stress()[:3].mean() / GPa)
            kinetic.append(len(atoms) * kB * 300.0 / atoms.get_volume() / GPa)
    assert np.mean(virial) == pytest.approx(-np.mean(kinetic), abs=0.25)  # ~ -0.28 GPa
    assert max(energy[0.1]) < min(energy[100.0]) - 0.02  # eV/atom
    assert np.mean(energy[0.1]) == pytest.approx(-18.46, abs=0.02)


def test_forces_are_minus_numerical_gradient():
    atoms = crystal(["Si", "O"], basis=[(0, 0, 0), (0.125, 0.125, 0.125)], spacegroup=227,
                    cellpar=7.16)
    atoms.rattle(0.08, seed=3)
    atoms.calc = get_calculator("jakse-sio2")
    analytic = atoms.get_forces()
    numeric = calculate_numerical_forces(atoms, eps=1e-4)
    np.testing.assert_allclose(analytic, numeric, atol=2e-3)
    assert np.abs(analytic).max() > 0.5  # not a trivially zero comparison
