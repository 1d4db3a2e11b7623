"""Langevin sampler (Yang and Schwalbe-Koda): extra-noise schedule and known Gaussian targets."""

import math

import pytest
import torch

from ase_amden.diffusion import LangevinSampler, SamplerState, get_sampler, run_sampler

F64 = torch.float64
MU = torch.tensor([30.0, 31.0, 29.0], dtype=F64)
M = torch.tensor([0.8, -0.3], dtype=F64)
S_X, S_E = 0.5, 0.3


def test_extra_noise_falls_linearly_over_2900_of_3000_steps():
    sampler = LangevinSampler()
    assert sampler.default_steps == 3000
    grid = sampler.time_grid(sampler.default_steps)[:-1].tolist()
    scales = [sampler.extra_noise_scale(t) for t in grid]
    noisy = [s for s in scales if s > 1e-9]
    assert len(scales) == 3001 and len(noisy) == 2900
    assert scales[0] == 1.0
    steps = torch.diff(torch.tensor(noisy, dtype=F64))
    assert torch.allclose(steps, torch.full_like(steps, -1.0 / 2900), atol=1e-12)
    assert max(scales[2900:]) < 1e-9
    assert LangevinSampler(extra_noise=0.5).extra_noise_scale(grid[0]) == 0.5


def test_no_extra_noise_is_the_ode_sampler(gaussian_toy):
    toy = gaussian_toy(MU, S_X, M, S_E)
    cell = (60.0 * torch.eye(3, dtype=F64)).expand(1, 3, 3).clone()
    system_idx = torch.zeros(20, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    start = SamplerState(MU + torch.randn(20, 3, generator=g, dtype=F64),
                         torch.randn(20, 2, generator=g, dtype=F64), cell, system_idx)
    quiet = run_sampler(LangevinSampler(extra_noise=0.0), start, toy, 10, g)
    ode = run_sampler(get_sampler("ode"), start, toy, 10)
    assert torch.allclose(quiet.positions, ode.positions, atol=1e-12)
    assert torch.allclose(quiet.elements, ode.elements, atol=1e-12)


@pytest.mark.parametrize("extra_noise", [1.0, 0.5])
def test_langevin_reaches_the_gaussian_data(gaussian_toy, extra_noise):
    """With the exact score of N(mu, s^2) data the extra noise heats the structures but
    leaves the distribution they converge to unchanged."""
    toy = gaussian_toy(MU, S_X, M, S_E)
    sampler = LangevinSampler(extra_noise=extra_noise)
    n_systems, n_per = 4, 1000
    n = n_systems * n_per
    cell = (60.0 * torch.eye(3, dtype=F64)).expand(n_systems, 3, 3).clone()
    system_idx = torch.arange(n_systems).repeat_interleave(n_per)
    g = torch.Generator().manual_seed(1)
    (mx, sx), (me, se) = toy.marginal(sampler.t_start)
    x = mx + sx * torch.randn(n, 3, generator=g, dtype=F64)
    e = me + se * torch.randn(n, 2, generator=g, dtype=F64)
    final = run_sampler(sampler, SamplerState(x, e, cell, system_idx), toy, 150, g)
    assert torch.allclose(final.positions.mean(0), MU, atol=4 * S_X / math.sqrt(n))
    assert torch.allclose(final.elements.mean(0), M, atol=4 * S_E / math.sqrt(n))
    var_x = float(final.positions.var(0).mean())
    var_e = float(final.elements.var(0).mean())
    assert var_x == pytest.approx(S_X**2, rel=4 * math.sqrt(2 / (3 * n)) + 0.02)
    assert var_e == pytest.approx(S_E**2, rel=4 * math.sqrt(2 / (2 * n)) + 0.03)


@pytest.mark.parametrize(("options", "message"),
                         [({"extra_noise": -1.0}, "extra_noise"),
                          ({"quiet_fraction": 1.0}, "quiet_fraction")])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        LangevinSampler(**options)
