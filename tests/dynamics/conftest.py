import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes


class HarmonicCalculator(Calculator):
    """E = 0.5 k sum_i |x_i - x0_i|^2 (eV, Å); forces -k (x - x0)."""

    implemented_properties = ["energy", "free_energy", "forces"]
    default_parameters = {"k": 1.0}

    def __init__(self, x0, **kwargs):
        super().__init__(**kwargs)
        self.x0 = np.array(x0, dtype=float)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        d = self.atoms.get_positions() - self.x0
        k = self.parameters.k
        self.results["energy"] = self.results["free_energy"] = 0.5 * k * float((d**2).sum())
        self.results["forces"] = -k * d


@pytest.fixture
def harmonic_atoms():
    """Four unit-mass atoms in a harmonic well (k = 1 eV/Å^2, angular frequency 1/ASE time)."""

    def make(k=1.0):
        x0 = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
        atoms = Atoms("H4", positions=x0, masses=np.ones(4))
        atoms.calc = HarmonicCalculator(x0, k=k)
        return atoms

    return make
