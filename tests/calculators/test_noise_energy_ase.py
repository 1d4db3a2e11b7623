"""NoiseEnergyCalculator follows ASE: set() resets, todict() names the model, stress, dtype."""

import numpy as np
import pytest
import torch
from ase.stress import full_3x3_to_voigt_6_stress

from ase_amden.calculators import NoiseEnergyCalculator
from ase_amden.training import save_checkpoint


def test_set_t_gives_the_energy_of_the_new_time(energy_model, structure):
    calc = NoiseEnergyCalculator(energy_model, t=0.1)
    structure.calc = calc
    at_01 = structure.get_potential_energy()
    calc.set(t=0.5)
    at_05 = structure.get_potential_energy()
    assert at_05 != pytest.approx(at_01)
    fresh = structure.copy()
    fresh.calc = NoiseEnergyCalculator(energy_model, t=0.5)
    assert at_05 == pytest.approx(fresh.get_potential_energy(), abs=1e-12)
    calc.set(targets={"density": 2.5})
    assert structure.get_potential_energy() != pytest.approx(at_05)
    with pytest.raises(ValueError, match=r"t must be in \(0, 1\]"):
        calc.set(t=0.0)


def test_todict_records_the_model_and_time(energy_model, tmp_path):
    path = save_checkpoint(tmp_path / "tiny.pt", energy_model.model, energy_model.card)
    params = NoiseEnergyCalculator(str(path), t=0.3, device="cpu").todict()
    assert params["t"] == 0.3 and params["model"] == "tiny-sio2"
    assert params["checkpoint"] == str(path) and params["dtype"] == "float64"
    given = NoiseEnergyCalculator(energy_model, t=0.3).todict()
    assert given["checkpoint"] is None and given["model_hash"] == params["model_hash"]


def test_float64_option_copies_a_float32_model(energy_model, structure):
    energy_model.model.float()
    calc32 = NoiseEnergyCalculator(energy_model, t=0.2)
    calc64 = NoiseEnergyCalculator(energy_model, t=0.2, dtype="float64")
    assert calc32.dtype == torch.float32 and calc64.dtype == torch.float64
    assert next(energy_model.model.parameters()).dtype == torch.float32  # not changed
    e32 = calc32.get_potential_energy(structure)
    e64 = calc64.get_potential_energy(structure)
    assert e64 == pytest.approx(e32, rel=1e-5) and e64 != e32
    with pytest.raises(ValueError, match="dtype"):
        NoiseEnergyCalculator(energy_model, dtype="float16")


def numerical_stress(atoms, d=1e-6):
    """Central differences of the energy over symmetric strains, / volume (as ASE's)."""
    cell, volume = atoms.cell.array.copy(), atoms.get_volume()
    stress = np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[i, j] += sign * d / (1 if i == j else 2)
                strain[j, i] += 0 if i == j else sign * d / 2
                strained = atoms.copy()
                strained.calc = atoms.calc
                strained.set_cell(cell @ strain, scale_atoms=True)
                energies.append(strained.get_potential_energy())
            stress[i, j] = stress[j, i] = (energies[0] - energies[1]) / (2 * d * volume)
    return full_3x3_to_voigt_6_stress(stress)


def test_stress_is_the_strain_derivative_with_ase_sign(energy_model, structure):
    structure.set_cell(structure.cell.array + [[0.0, 0.3, 0.1], [0.0, 0.0, 0.2], [0.0, 0.0, 0.0]],
                       scale_atoms=True)  # triclinic: shear components count
    structure.calc = NoiseEnergyCalculator(energy_model, t=0.1)
    stress = structure.get_stress()
    assert stress.shape == (6,) and np.abs(stress).max() > 1e-3
    numerical = numerical_stress(structure)
    np.testing.assert_allclose(stress, numerical, atol=1e-7)
    # ASE's sign: sigma = dE/de / V, so stretching along x by a small e changes E by V s_xx e
    volume = structure.get_volume()
    energy = structure.get_potential_energy()
    stretched = structure.copy()
    stretched.set_cell(stretched.cell.array @ np.diag([1.0 + 1e-6, 1.0, 1.0]), scale_atoms=True)
    stretched.calc = structure.calc
    change = stretched.get_potential_energy() - energy
    assert change == pytest.approx(volume * stress[0] * 1e-6, rel=1e-3)
