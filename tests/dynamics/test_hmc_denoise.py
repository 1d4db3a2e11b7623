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

    def energy(self, positions, elements, cell, system_idx, t, properties, property_mask,
               generator=None):
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


def test_random_null_embedding_is_one_draw_per_iteration():
    """With a random null embedding, every energy call of one proposal sees the same draw.

    A tiny timestep then conserves H (|dH| ~ 0); fresh draws per call would make
    dH of order the energy differences between draws. The same seed repeats the step.
    """
    from dataclasses import asdict

    from ase_amden.dynamics import hmc_denoise_step
    from ase_amden.models import Denoiser, DenoiserConfig

    config = DenoiserConfig(n_classes=2, property_names=("density",), hidden=12, n_layers=1,
                            n_vector=2, cutoff=3.0, time_dim=4, property_dim=4, energy=True,
                            null_embedding="random")
    torch.manual_seed(0)
    model = Denoiser(config).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    assert asdict(config)["null_embedding"] == "random"
    start = torch.Generator().manual_seed(1)
    positions = torch.rand(6, 3, dtype=torch.float64, generator=start) * 4
    elements = torch.nn.functional.one_hot(torch.zeros(6, dtype=torch.long), 2).double()
    cell = torch.eye(3, dtype=torch.float64).unsqueeze(0) * 4.0
    system_idx = torch.zeros(6, dtype=torch.long)
    t = torch.tensor([0.3], dtype=torch.float64)
    args = dict(timestep=1e-4, n_leapfrog=5, properties=torch.zeros(1, 1, dtype=torch.float64),
                property_mask=torch.zeros(1, 1, dtype=torch.bool))
    draws = [model.energy(positions, elements, cell, system_idx, t, args["properties"],
                          args["property_mask"]).detach() for _ in range(2)]
    assert abs(float(draws[0] - draws[1])) > 1e-3  # the null really is random per call
    runs = [hmc_denoise_step(model, positions, elements, cell, system_idx, t, **args,
                             generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert abs(float(runs[0].delta_h[0])) < 1e-6
    torch.testing.assert_close(runs[0].positions, runs[1].positions)
