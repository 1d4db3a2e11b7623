import math

import torch

from ase_amden.dynamics import hmc_denoise_step


def cubic_minimum_image(d, cell, system_idx):
    length = cell[system_idx, 0, 0][:, None]
    return d - length * torch.round(d / length)


class PeriodicWell:
    """Stand-in for an energy model: E_hat = sum_i 0.5 |mic(x_i - site_i)|^2 / (s t) per system.

    Cells are cubic.
    """

    def __init__(self, sites, scale=0.5):
        self.sites = sites
        self.scale = scale

    def energy(self, positions, elements, cell, system_idx, t, properties, property_mask):
        d = cubic_minimum_image(positions - self.sites, cell, system_idx)
        per_atom = 0.5 * (d**2).sum(dim=1) / (self.scale * t[system_idx])
        return torch.zeros(cell.shape[0], dtype=d.dtype).index_add(0, system_idx, per_atom)


def batch(n_systems=3, n_atoms=4, length=5.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    system_idx = torch.arange(n_systems).repeat_interleave(n_atoms)
    cell = length * torch.eye(3, dtype=torch.float64).expand(n_systems, 3, 3).clone()
    sites = length * torch.rand(n_systems * n_atoms, 3, dtype=torch.float64, generator=gen)
    elements = torch.randn(n_systems * n_atoms, 2, dtype=torch.float64, generator=gen)
    return sites, elements, cell, system_idx


def test_one_iteration_per_structure_wrapped_and_consistent():
    sites, elements, cell, system_idx = batch()
    model = PeriodicWell(sites)
    t = torch.full((3,), 0.2, dtype=torch.float64)
    # start near the sites but outside the cell (unwrapped coordinates)
    start = sites + 5.0 + 0.1 * torch.randn(sites.shape, dtype=torch.float64,
                                            generator=torch.Generator().manual_seed(1))
    # structure 1 gets a timestep far beyond stability: it must be rejected
    timestep = torch.tensor([0.05, 5.0, 0.05], dtype=torch.float64)
    with torch.no_grad():
        result = hmc_denoise_step(
            model, start, elements, cell, system_idx, t, timestep=timestep, n_leapfrog=10,
            generator=torch.Generator().manual_seed(2),
        )
    assert result.accepted.tolist() == [True, False, True]
    assert 0.0 <= result.positions.min() and result.positions.max() < 5.0
    # the rejected structure is the start, wrapped
    rejected = system_idx == 1
    torch.testing.assert_close(result.positions[rejected], start[rejected] - 5.0)
    assert not torch.allclose(result.positions[~rejected], (start - 5.0)[~rejected])
    torch.testing.assert_close(
        result.energy,
        model.energy(result.positions, elements, cell, system_idx, t, None, None),
    )
    assert result.acceptance_rate == 2 / 3


def test_samples_the_noise_energy_boltzmann_distribution():
    """kT = 1 and unit masses: displacement variance per dof is s t (the well's 1/k)."""
    n_systems = 400
    sites, elements, cell, system_idx = batch(n_systems=n_systems, n_atoms=1, length=20.0)
    model = PeriodicWell(sites)
    t = torch.full((n_systems,), 0.4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    positions = sites.clone()
    displacements = []
    for step in range(60):
        result = hmc_denoise_step(
            model, positions, elements, cell, system_idx, t, timestep=0.3, n_leapfrog=3,
            generator=gen,
        )
        positions = result.positions
        if step >= 20:
            displacements.append(cubic_minimum_image(positions - sites, cell, system_idx))
    variance = torch.stack(displacements).square().mean().item()
    expected = 0.5 * 0.4
    # 40 correlated sweeps of 1200 dof: relative error well below 4 %
    assert abs(variance - expected) < 0.04 * expected
    assert 0.5 < result.acceptance_rate <= 1.0
    assert math.isfinite(float(result.delta_h.abs().max()))
