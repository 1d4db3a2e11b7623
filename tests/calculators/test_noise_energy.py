import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.fd import calculate_numerical_forces
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS, FIRE
from scipy.spatial.transform import Rotation

from ase_amden.calculators import NoiseEnergyCalculator
from ase_amden.dynamics import HMC
from ase_amden.errors import CheckpointError, InvalidStructureError, UnknownNameError
from ase_amden.training import save_checkpoint


def test_forces_are_minus_numerical_gradient(energy_model, structure):
    structure.calc = NoiseEnergyCalculator(energy_model, t=0.1, targets={"density": 2.3})
    forces = structure.get_forces()
    assert np.abs(forces).max() > 1e-3  # a non-trivial landscape
    checked = [0, 4]  # one Si, one O: each displaced atom costs six evaluations
    numerical = calculate_numerical_forces(structure, eps=1e-5, iatoms=checked)
    np.testing.assert_allclose(forces[checked], numerical, atol=1e-8)
    assert structure.get_potential_energy(force_consistent=True) == pytest.approx(
        structure.get_potential_energy()
    )


def test_invariant_under_rotation_and_permutation(energy_model, structure):
    calc = NoiseEnergyCalculator(energy_model, t=0.2)
    structure.calc = calc
    energy, forces = structure.get_potential_energy(), structure.get_forces()

    rotation = Rotation.random(random_state=3).as_matrix()
    rotated = structure.copy()
    rotated.set_cell(structure.cell.array @ rotation.T)  # rows are lattice vectors
    rotated.positions = structure.positions @ rotation.T
    rotated.calc = calc
    assert rotated.get_potential_energy() == pytest.approx(energy, rel=1e-10)
    np.testing.assert_allclose(rotated.get_forces(), forces @ rotation.T, atol=1e-10)

    order = np.random.default_rng(1).permutation(len(structure))
    permuted = structure[order]
    permuted.calc = calc
    assert permuted.get_potential_energy() == pytest.approx(energy, rel=1e-10)
    np.testing.assert_allclose(permuted.get_forces(), forces[order], atol=1e-10)


def test_agrees_with_batched_torch_call(energy_model, make_structure):
    structures = [make_structure(seed=0), make_structure(n_si=3, n_o=3, seed=1)]
    t = 0.3
    calc = NoiseEnergyCalculator(energy_model, t=t, targets={"density": 2.35})
    expected = []
    for atoms in structures:
        atoms.calc = calc
        expected.append(atoms.get_potential_energy())

    positions = torch.tensor(np.concatenate([a.positions for a in structures]))
    index = torch.tensor([0 if s == "Si" else 1 for a in structures
                          for s in a.get_chemical_symbols()])
    elements = np.cos(np.pi * t / 2) * torch.nn.functional.one_hot(index, 3).double()
    cell = torch.tensor(np.stack([a.cell.array for a in structures]))
    system_idx = torch.tensor([i for i, a in enumerate(structures) for _ in a])
    properties = torch.full((2, 1), (2.35 - 2.2) / 0.1, dtype=torch.float64)
    mask = torch.ones(2, 1, dtype=torch.bool)
    batched = energy_model.model.energy(
        positions, elements, cell, system_idx, torch.full((2,), t, dtype=torch.float64),
        properties, mask,
    )
    np.testing.assert_allclose(batched.detach().numpy(), expected, rtol=1e-12)

    # targets matter, and a missing target is the masked (null) embedding
    unconditional = energy_model.model.energy(
        positions, elements, cell, system_idx, torch.full((2,), t, dtype=torch.float64),
        properties, torch.zeros(2, 1, dtype=torch.bool),
    )
    calc.set(targets=None)
    structures[0].calc = calc
    assert structures[0].get_potential_energy() == pytest.approx(float(unconditional[0].detach()))
    assert abs(float(unconditional[0].detach()) - expected[0]) > 1e-6


def test_generator_checkpoint_and_pretrained_give_same_energy(
    energy_model, structure, tmp_path, monkeypatch
):
    import ase_amden.generator
    from ase_amden.generator import AmorphousGenerator

    reference = NoiseEnergyCalculator(energy_model, t=0.1).get_potential_energy(structure)
    generator = AmorphousGenerator(energy_model.model, energy_model.card, device="cpu")
    assert NoiseEnergyCalculator(generator, t=0.1).get_potential_energy(
        structure
    ) == pytest.approx(reference, rel=1e-12)

    save_checkpoint(tmp_path / "tiny.pt", energy_model.model, energy_model.card)
    from_file = NoiseEnergyCalculator(tmp_path / "tiny.pt", t=0.1, device="cpu")
    assert from_file.get_potential_energy(structure) == pytest.approx(reference, rel=1e-12)

    monkeypatch.setattr(ase_amden.generator, "PRETRAINED_DIR", tmp_path)
    shipped = NoiseEnergyCalculator.pretrained("tiny", t=0.1, device="cpu")
    assert shipped.get_potential_energy(structure) == pytest.approx(reference, rel=1e-12)
    with pytest.raises(UnknownNameError, match="tiny"):
        NoiseEnergyCalculator.pretrained("no-such-model")


@pytest.mark.parametrize("optimizer", [BFGS, FIRE])
def test_optimizers_lower_the_energy(energy_model, structure, optimizer):
    structure.calc = NoiseEnergyCalculator(energy_model, t=0.1)
    start = structure.get_potential_energy()
    optimizer(structure, logfile=None).run(fmax=1e-3, steps=10)
    assert structure.get_potential_energy() < start


@pytest.mark.parametrize("integrator", ["verlet", "langevin", "hmc"])
def test_md_runs(energy_model, structure, integrator):
    structure.calc = NoiseEnergyCalculator(energy_model, t=0.1)
    if integrator == "verlet":
        dyn = VelocityVerlet(structure, 0.5 * units.fs)
    elif integrator == "langevin":
        dyn = Langevin(structure, 0.5 * units.fs, temperature_K=300, friction=0.01, fixcm=False,
                       rng=np.random.default_rng(0))
    else:
        structure.set_masses(np.ones(len(structure)))
        dyn = HMC(structure, 0.02, kT=1.0, n_leapfrog=3, rng=0)
    energies = []
    dyn.attach(lambda: energies.append(structure.get_total_energy()))
    dyn.run(4)
    assert len(energies) == 5
    assert np.isfinite(energies).all() and np.isfinite(structure.positions).all()
    if integrator == "verlet":
        assert np.ptp(energies) < 1e-2 * max(1.0, abs(energies[0]))  # NVE conserves energy
    if integrator == "hmc":
        assert 0.0 < dyn.acceptance_rate <= 1.0


def test_errors(energy_model, make_energy_model, structure):
    with pytest.raises(CheckpointError, match="energy-based checkpoint"):
        NoiseEnergyCalculator(make_energy_model(energy=False))
    with pytest.raises(UnknownNameError, match="density"):
        NoiseEnergyCalculator(energy_model, targets={"shear_modulus": 30.0})
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        NoiseEnergyCalculator(energy_model, t=0.0)
    calc = NoiseEnergyCalculator(energy_model)
    copper = structure.copy()
    copper.symbols[0] = "Cu"
    with pytest.raises(UnknownNameError, match=r"\['Cu'\]"):
        calc.get_potential_energy(copper)
    molecule = structure.copy()
    molecule.pbc = False
    with pytest.raises(InvalidStructureError, match="periodic"):
        calc.get_potential_energy(molecule)


def test_batched_hmc_denoising_matches_ase_hmc(energy_model, structure):
    """One iteration of hmc_denoise_step equals HMC on NoiseEnergyCalculator (unit masses)."""
    from ase_amden.dynamics import hmc_denoise_step

    t, timestep = 0.2, 0.05
    structure.set_masses(np.ones(len(structure)))
    start = torch.tensor(structure.positions)
    structure.calc = NoiseEnergyCalculator(energy_model, t=t)
    dyn = HMC(structure, timestep, kT=1.0, n_leapfrog=4, rng=torch.Generator().manual_seed(9))
    dyn.run(1)

    index = torch.tensor([0 if s == "Si" else 1 for s in structure.get_chemical_symbols()])
    result = hmc_denoise_step(
        energy_model.model, start,
        np.cos(np.pi * t / 2) * torch.nn.functional.one_hot(index, 3).double(),
        torch.tensor(structure.cell.array).unsqueeze(0),
        torch.zeros(len(structure), dtype=torch.long), torch.tensor([t], dtype=torch.float64),
        timestep=timestep, n_leapfrog=4,
        properties=torch.zeros(1, 1, dtype=torch.float64),
        property_mask=torch.zeros(1, 1, dtype=torch.bool),
        generator=torch.Generator().manual_seed(9),
    )
    assert bool(result.accepted[0]) == (dyn.n_accepted == 1)
    np.testing.assert_allclose(result.positions.numpy(), structure.get_positions(wrap=True),
                               atol=1e-10)
    assert float(result.energy[0]) == pytest.approx(structure.get_potential_energy(), rel=1e-10)
