"""Restart sampling: its time grid, its forward jumps, and the target it keeps."""

import math

import pytest
import torch

from ase_amden.diffusion import ElementSchedule, PositionSchedule, SamplerState, get_sampler
from ase_amden.diffusion.restart import forward_jump
from ase_amden.diffusion.samplers import run_sampler

F64 = torch.float64
MU = torch.tensor([30.0, 31.0, 29.0], dtype=F64)
M = torch.tensor([0.8, -0.3], dtype=F64)
S_X, S_E = 0.5, 0.3


def test_grid_is_the_sde_pass_then_cycles_from_t_restart():
    sde = get_sampler("sde").time_grid(50)
    assert torch.equal(get_sampler("restart", restarts=0).time_grid(50), sde)
    grid = get_sampler("restart", restarts=3, t_restart=0.2).time_grid(50)
    n = math.ceil(50 * (0.2 - 0.01) / 0.98)
    assert len(grid) == len(sde) + 3 * (n + 1)
    assert torch.equal(grid[:51], sde[:51]) and grid[-1] == 0.0
    ups = [(float(a), float(b)) for a, b in zip(grid[:-1], grid[1:], strict=True) if b > a]
    assert ups == [(pytest.approx(0.01), pytest.approx(0.2))] * 3
    for bad in ({"restarts": -1}, {"restarts": 1.5}, {"t_restart": 0.995}, {"t_restart": 0.0},
                {"restart_steps": 0}, {"restart_steps": 2.5}):
        with pytest.raises(ValueError):
            get_sampler("restart", **bad)


def test_coarse_restart_passes_end_with_a_pass_at_the_full_density():
    grid = get_sampler("restart", restarts=3, t_restart=0.2, restart_steps=2).time_grid(50)
    n = math.ceil(50 * (0.2 - 0.01) / 0.98)
    assert len(grid) == 51 + 2 * 3 + (n + 1) + 1
    tops = [i for i in range(1, len(grid)) if grid[i] > grid[i - 1]]
    lengths = [b - a for a, b in zip(tops, [*tops[1:], len(grid) - 1], strict=True)]
    assert lengths == [3, 3, n + 1]  # two coarse passes, then one at the density of the first
    assert torch.allclose(grid[tops[0]:tops[0] + 3], torch.tensor([0.2, 0.105, 0.01], dtype=F64))


@pytest.mark.parametrize("schedule", [PositionSchedule(1.5), ElementSchedule(1.5)])
def test_forward_jump_adds_the_forward_process_noise(schedule):
    """From x at t with N(0, sigma(t)^2) noise, a jump gives the forward marginal at t'."""
    g = torch.Generator().manual_seed(1)
    n, t, t_next = 200_000, 0.1, 0.4
    x0 = torch.full((n, 1), 2.0, dtype=F64)
    xt = float(schedule.alpha(t)) * x0 + float(schedule.sigma(t)) * torch.randn(
        n, 1, generator=g, dtype=F64)
    jumped = forward_jump(schedule, xt, t, t_next, g, torch.zeros(n, dtype=torch.long))
    assert float(jumped.mean()) == pytest.approx(2.0 * float(schedule.alpha(t_next)), abs=0.01)
    assert float(jumped.std()) == pytest.approx(float(schedule.sigma(t_next)), rel=0.01)


@pytest.mark.parametrize("restart_steps", [None, 3])
def test_restarts_keep_the_gaussian_target(gaussian_toy, restart_steps):
    """With the exact score, restart cycles leave N(mu, s^2) data where the sde puts it."""
    toy = gaussian_toy(MU, S_X, M, S_E)
    sampler = get_sampler("restart", restarts=4, t_restart=0.3, restart_steps=restart_steps)
    n_systems, n_per = 4, 2000
    n = n_systems * n_per
    cell = (60.0 * torch.eye(3, dtype=F64)).expand(n_systems, 3, 3).clone()
    system_idx = torch.arange(n_systems).repeat_interleave(n_per)
    g = torch.Generator().manual_seed(0)
    (mx, sx), (me, se) = toy.marginal(sampler.t_start)
    x = mx + sx * torch.randn(n, 3, generator=g, dtype=F64)
    e = me + se * torch.randn(n, 2, generator=g, dtype=F64)
    grid = sampler.time_grid(60)
    final = run_sampler(sampler, SamplerState(x, e, cell, system_idx), toy, 60, g)
    jumps = int((grid[1:] > grid[:-1]).sum())
    assert jumps == 4 and toy.calls == len(grid) - 1 - jumps  # a jump calls no network
    assert torch.allclose(final.positions.mean(0), MU, atol=4 * S_X / math.sqrt(n))
    assert torch.allclose(final.elements.mean(0), M, atol=4 * S_E / math.sqrt(n))
    var_x = float(final.positions.var(0).mean())
    assert var_x == pytest.approx(S_X**2, rel=4 * math.sqrt(2 / (3 * n)) + 0.03)
