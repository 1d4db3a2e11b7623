"""Flow sampler: Euler integration of analytic velocity fields with known end points."""

import math

import pytest
import torch

from ase_amden.diffusion import FlowSampler, SamplerState, get_sampler, run_sampler
from ase_amden.models import minimum_image

F64 = torch.float64
SIGMA_E = 1.5


class AnalyticFlow:
    """Exact marginal velocity for positions -> the point ``x_star`` (per structure, periodic)
    and elements -> N(m, s_e^2) from noise N(0, SIGMA_E^2), on the path
    ``x_s = (1 - s) x_noise + s x_data`` with ``s = 1 - t``.
    """

    def __init__(self, x_star, m, s_e):
        self.x_star, self.m, self.s_e = x_star, m, s_e
        self.times = []

    def __call__(self, positions, elements, cell, system_idx, t, step_size=None):
        self.times.append(float(t[0]))
        t_atom = t[system_idx].unsqueeze(-1)
        s = 1.0 - t_atom
        v_x = minimum_image(self.x_star - positions, cell, system_idx) / t_atom
        var = (1 - s) ** 2 * SIGMA_E**2 + s**2 * self.s_e**2
        cov = s * self.s_e**2 - (1 - s) * SIGMA_E**2
        v_e = self.m + cov / var * (elements - s * self.m)
        return v_x, v_e


def test_time_grid_runs_from_noise_to_data():
    grid = FlowSampler().time_grid(4)
    assert grid.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_flow_reaches_the_known_targets():
    """Positions land exactly on the target point (through the periodic boundary); the
    element channel reaches the mean and variance of its Gaussian data."""
    edge, n_systems, n_per = 5.0, 4, 1000
    cell = (edge * torch.eye(3, dtype=F64)).expand(n_systems, 3, 3).clone()
    system_idx = torch.arange(n_systems).repeat_interleave(n_per)
    x_star = torch.tensor([4.9, 0.05, 2.5], dtype=F64)  # near two faces of the cell
    m, s_e = torch.tensor([0.8, -0.3, 0.1], dtype=F64), 0.3
    field = AnalyticFlow(x_star, m, s_e)
    sampler = get_sampler("flow")
    g = torch.Generator().manual_seed(0)
    x, e = sampler.prior(cell, system_idx, 3, g)
    assert float(e.std()) == pytest.approx(SIGMA_E, rel=0.03)  # N(0, sigma_e_max^2) at t = 1
    final = run_sampler(sampler, SamplerState(x, e, cell, system_idx), field, 100, g)
    assert len(field.times) == 100 and field.times[0] == 1.0
    assert field.times[-1] == pytest.approx(0.01)
    assert torch.allclose(final.positions, x_star.expand_as(final.positions), atol=1e-9)
    n = e.shape[0]
    assert torch.allclose(final.elements.mean(0), m, atol=4 * s_e / math.sqrt(n) + 0.01)
    assert float(final.elements.var(0).mean()) == pytest.approx(s_e**2, rel=0.06)


def test_fixed_elements_sit_on_the_flow_path():
    sampler = FlowSampler()
    fixed = torch.nn.functional.one_hot(torch.arange(6000) % 3, 3).to(F64)
    g = torch.Generator().manual_seed(1)
    noised = sampler.noised_known_elements(fixed, 0.25, g)
    residual = noised - 0.75 * fixed  # t * noise with noise ~ N(0, SIGMA_E^2)
    assert float(residual.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(residual.std()) == pytest.approx(0.25 * SIGMA_E, rel=0.03)
    assert torch.equal(sampler.noised_known_elements(fixed, 0.0, g), fixed)

