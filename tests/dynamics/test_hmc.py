import math

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import Trajectory
from ase.md import MDLogger

from ase_amden.dynamics import HMC, hmc_step
from ase_amden.errors import InvalidStructureError


def batch_mean_and_error(series, n_batches=20):
    """Mean of a correlated series and its standard error from batch means."""
    batches = np.array_split(np.asarray(series), n_batches)
    means = np.array([b.mean() for b in batches])
    return means.mean(), means.std(ddof=1) / math.sqrt(n_batches)


def test_harmonic_position_variance_is_kT_over_k(harmonic_atoms):
    k, kT = 2.0, 0.5
    atoms = harmonic_atoms(k=k)
    x0 = atoms.get_positions()
    dyn = HMC(atoms, 0.15, kT=kT, n_leapfrog=7, rng=2024)
    dyn.run(100)  # burn-in
    squares, kinetic = [], []

    def record():
        squares.append(((atoms.get_positions() - x0) ** 2).mean())
        kinetic.append((atoms.get_momenta() ** 2 / atoms.get_masses()[:, None]).mean())

    dyn.attach(record)
    dyn.run(1500)
    mean, err = batch_mean_and_error(squares[1:])
    assert err < 0.05 * kT / k  # the check below is a sharp one
    assert abs(mean - kT / k) < 4 * err
    # momenta of the sampled states are Maxwell-Boltzmann: <p^2/m> = kT per dof
    mean_p, err_p = batch_mean_and_error(kinetic[1:])
    assert abs(mean_p - kT) < 4 * err_p
    assert 0.8 < dyn.acceptance_rate <= 1.0


@pytest.mark.parametrize(
    "make_rng",
    [lambda: 11, lambda: np.random.default_rng(11), lambda: torch.Generator().manual_seed(11)],
    ids=["int", "numpy", "torch"],
)
def test_same_seed_same_chain(harmonic_atoms, make_rng):
    def chain(rng):
        atoms = harmonic_atoms()
        dyn = HMC(atoms, 0.5, kT=0.3, n_leapfrog=4, rng=rng)
        frames = []
        dyn.attach(lambda: frames.append(atoms.get_positions()))
        dyn.run(20)
        return np.array(frames), dyn.n_accepted

    first, n_first = chain(make_rng())
    second, n_second = chain(make_rng())
    np.testing.assert_array_equal(first, second)
    assert n_first == n_second
    other, _ = chain(12)
    assert not np.allclose(first[-1], other[-1])


def test_batched_kernel_reproduces_ase_path(harmonic_atoms):
    atoms = harmonic_atoms()
    x0 = atoms.get_positions()
    dyn = HMC(atoms, 0.3, kT=0.4, n_leapfrog=5, rng=torch.Generator().manual_seed(3))
    dyn.run(1)

    def energy_and_forces(x):
        d = x - torch.from_numpy(x0)
        return 0.5 * (d**2).sum().reshape(1), -d

    result = hmc_step(
        torch.from_numpy(x0), energy_and_forces, masses=1.0, kT=0.4, timestep=0.3,
        n_leapfrog=5, generator=torch.Generator().manual_seed(3),
    )
    np.testing.assert_allclose(atoms.get_positions(), result.positions.numpy(), atol=1e-12)
    assert dyn.n_accepted == int(result.accepted[0])


def test_logging_observers_and_trajectory(harmonic_atoms, tmp_path):
    atoms = harmonic_atoms()
    log, traj = tmp_path / "hmc.log", tmp_path / "hmc.traj"
    dyn = HMC(atoms, 0.2, temperature_K=500, n_leapfrog=3, rng=0, logfile=str(log),
              trajectory=str(traj))
    second_log = tmp_path / "second.log"
    dyn.attach(MDLogger(dyn, atoms, str(second_log)), interval=2)
    calls = []
    dyn.attach(lambda: calls.append(dyn.nsteps))
    dyn.run(6)
    dyn.close()
    assert calls == list(range(7))
    assert len(log.read_text().splitlines()) == 1 + 6  # header + one line per iteration
    assert len(second_log.read_text().splitlines()) == 1 + 4
    with Trajectory(str(traj)) as frames:
        assert len(frames) == 7
        np.testing.assert_allclose(frames[-1].get_positions(), atoms.get_positions())
    assert dyn.todict() == {
        "type": "molecular-dynamics", "md-type": "HMC", "timestep": 0.2,
        "temperature_K": pytest.approx(500), "kT": pytest.approx(500 * units.kB),
        "n_leapfrog": 3,
    }


def test_huge_timestep_rejects_and_restores_exactly(harmonic_atoms):
    atoms = harmonic_atoms()
    dyn = HMC(atoms, 1.9, kT=0.5, n_leapfrog=7, rng=5)
    states = []
    dyn.attach(lambda: states.append((atoms.get_positions(), atoms.get_potential_energy())))
    dyn.run(60)
    assert dyn.n_proposed == 60
    assert dyn.acceptance_rate < 0.2
    pairs = zip(states[:-1], states[1:], strict=True)
    unchanged = sum(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in pairs)
    assert unchanged == dyn.n_proposed - dyn.n_accepted


def test_bad_timestep_keeps_boltzmann_distribution():
    """Detailed balance: start exactly in equilibrium, stay there with a bad timestep.

    4000 independent 3D oscillators (k = 1, m = 1), half with a timestep near the
    stability limit and half beyond it; E/kT must stay Gamma(3/2)-distributed.
    """
    from scipy import stats

    n, kT = 4000, 0.5
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, dtype=torch.float64, generator=gen) * math.sqrt(kT)
    timestep = torch.where(torch.arange(n) % 2 == 0, 1.9, 3.0).to(torch.float64)

    def energy_and_forces(y):
        return 0.5 * (y**2).sum(dim=1), -y

    n_accepted = 0
    for _ in range(10):
        result = hmc_step(
            x, energy_and_forces, masses=1.0, kT=kT, timestep=timestep, n_leapfrog=7,
            system_idx=torch.arange(n), generator=gen,
        )
        x = result.positions
        n_accepted += int(result.accepted.sum())
    rate = n_accepted / (10 * n)
    assert 0.01 < rate < 0.2  # rarely accepted, but some moves happen
    energy = result.energy.numpy()
    np.testing.assert_allclose(energy, 0.5 * (x**2).sum(dim=1).numpy())
    assert stats.kstest(energy / kT, stats.gamma(1.5).cdf).pvalue > 1e-3
    assert abs((x**2).mean().item() - kT) < 4 * kT * math.sqrt(2 / (3 * n))


def test_per_system_accept_mask_is_independent():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, dtype=torch.float64, generator=gen)
    system_idx = torch.tensor([0, 0, 1, 1, 2, 2])

    def energy_and_forces(y):
        e = torch.zeros(3, dtype=y.dtype).index_add_(0, system_idx, 0.5 * (y**2).sum(dim=1))
        return e, -y

    # system 1 has an unstable timestep and must be rejected; 0 and 2 accepted
    result = hmc_step(
        x, energy_and_forces, masses=1.0, kT=1.0,
        timestep=torch.tensor([0.01, 5.0, 0.01], dtype=torch.float64),
        n_leapfrog=10, system_idx=system_idx, generator=gen,
    )
    assert result.accepted.tolist() == [True, False, True]
    assert torch.equal(result.positions[2:4], x[2:4])
    assert not torch.equal(result.positions[:2], x[:2])
    assert abs(result.delta_h[0]) < 1e-4


def test_emt_copper_at_300K():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.calc = EMT()
    e_min = atoms.get_potential_energy()
    dyn = HMC(atoms, 5 * units.fs, temperature_K=300, n_leapfrog=8, rng=np.random.default_rng(0))
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_potential_energy()))
    dyn.run(30)
    mean = np.mean(energies[10:])
    assert np.isfinite(mean)
    assert mean > e_min  # thermal motion lifts the energy above the perfect crystal
    assert 0.0 < dyn.acceptance_rate <= 1.0


def test_argument_errors(harmonic_atoms):
    from ase.constraints import FixAtoms

    atoms = harmonic_atoms()
    with pytest.raises(TypeError, match="exactly one"):
        HMC(atoms, 0.1)
    with pytest.raises(TypeError, match="exactly one"):
        HMC(atoms, 0.1, kT=1.0, temperature_K=300)
    with pytest.raises(ValueError, match="positive"):
        HMC(atoms, 0.1, kT=0.0)
    with pytest.raises(TypeError, match="rng"):
        HMC(atoms, 0.1, kT=1.0, rng="seed")
    atoms.set_constraint(FixAtoms([0]))
    with pytest.raises(InvalidStructureError, match="constraints"):
        HMC(atoms, 0.1, kT=1.0)
