import math

import pytest
import torch

from ase_amden.diffusion import (
    SAMPLERS,
    Sampler,
    SamplerState,
    get_sampler,
    register_sampler,
    run_sampler,
)
from ase_amden.errors import SamplingError, UnknownNameError
from ase_amden.models import minimum_image

F64 = torch.float64


def test_registry_and_unknown_name():
    assert {"sde", "ode"} <= set(SAMPLERS)
    with pytest.raises(UnknownNameError, match="'ode'.*'sde'"):
        get_sampler("euler")


def test_time_grid_is_amden():
    grid = get_sampler("sde").time_grid(200)
    assert len(grid) == 202
    assert grid[0] == pytest.approx(0.99) and grid[-2] == pytest.approx(0.01) and grid[-1] == 0
    assert torch.allclose(torch.diff(grid[:-1]), torch.full((200,), -0.98 / 200, dtype=F64))
    with pytest.raises(ValueError, match="at least 1"):
        get_sampler("sde").time_grid(0)


def _big_cell_batch(n_systems, n_per, edge=60.0):
    cell = (edge * torch.eye(3, dtype=F64)).expand(n_systems, 3, 3).clone()
    return cell, torch.arange(n_systems).repeat_interleave(n_per)


def _exact_start(toy, sampler, n, n_classes, generator):
    (mx, sx), (me, se) = toy.marginal(sampler.t_start)
    x = mx + sx * torch.randn(n, 3, generator=generator, dtype=F64)
    e = me + se * torch.randn(n, n_classes, generator=generator, dtype=F64)
    return x, e


MU = torch.tensor([30.0, 31.0, 29.0], dtype=F64)
M = torch.tensor([0.8, -0.3], dtype=F64)
S_X, S_E = 0.5, 0.3


def test_sde_reproduces_gaussian_target(gaussian_toy):
    """Reverse SDE with the exact score of N(mu, s^2) data gives back its mean and variance."""
    toy = gaussian_toy(MU, S_X, M, S_E)
    sampler = get_sampler("sde")
    n_systems, n_per = 4, 2000
    n = n_systems * n_per
    cell, system_idx = _big_cell_batch(n_systems, n_per)
    g = torch.Generator().manual_seed(0)
    x, e = _exact_start(toy, sampler, n, 2, g)
    final = run_sampler(sampler, SamplerState(x, e, cell, system_idx), toy, 60, g)
    assert toy.calls == 61
    # statistical errors: mean s/sqrt(n), variance s^2 sqrt(2/n) (pooled over components),
    # plus a small allowance for the Euler-Maruyama bias at 60 steps
    assert torch.allclose(final.positions.mean(0), MU, atol=4 * S_X / math.sqrt(n))
    assert torch.allclose(final.elements.mean(0), M, atol=4 * S_E / math.sqrt(n))
    var_x = float(final.positions.var(0).mean())
    var_e = float(final.elements.var(0).mean())
    assert var_x == pytest.approx(S_X**2, rel=4 * math.sqrt(2 / (3 * n)) + 0.02)
    assert var_e == pytest.approx(S_E**2, rel=4 * math.sqrt(2 / (2 * n)) + 0.03)


def test_ode_converges_to_the_exact_transport_map(gaussian_toy):
    """For Gaussian data the probability-flow map is x0 = mu + (x_t - mu) s / sqrt(s^2 + sigma^2);
    the ode sampler approaches it at first order in the step size.
    """
    toy = gaussian_toy(MU, S_X, M, S_E)
    sampler = get_sampler("ode")
    cell, system_idx = _big_cell_batch(2, 150)
    x, e = _exact_start(toy, sampler, 300, 2, torch.Generator().manual_seed(1))
    (_, sx), (me, se) = toy.marginal(sampler.t_start)
    exact_x = MU + (x - MU) * S_X / sx
    exact_e = M + (e - me) * S_E / se
    errors = []
    for steps in (50, 100, 200):
        final = run_sampler(sampler, SamplerState(x, e, cell, system_idx), toy, steps)
        errors.append((float((final.positions - exact_x).abs().max()) / S_X,
                       float((final.elements - exact_e).abs().max()) / S_E))
    assert errors[-1][0] < 0.03 and errors[-1][1] < 0.08
    for coarse, fine in zip(errors[:-1], errors[1:], strict=True):
        for channel in range(2):
            assert 1.6 < coarse[channel] / fine[channel] < 2.5


@pytest.mark.parametrize("name", ["sde", "ode"])
def test_sampler_from_uniform_prior_in_a_periodic_cell(name, wrapped_gaussian_toy):
    """Wrapped Gaussian data in a small cell: the prior (uniform), the periodic score and the
    wrapping after each step must work together to give back mean and variance.
    """
    edge, s = 2.0, 0.2
    mu = torch.tensor([0.7, 1.9, 0.1], dtype=F64)  # the last two straddle the boundary
    target = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    toy = wrapped_gaussian_toy(mu, s, edge, target)
    sampler = get_sampler(name)
    n_systems, n_per = 3, 500
    cell = (edge * torch.eye(3, dtype=F64)).expand(n_systems, 3, 3).clone()
    system_idx = torch.arange(n_systems).repeat_interleave(n_per)
    g = torch.Generator().manual_seed(5)
    x, e = sampler.prior(cell, system_idx, 3, g)
    assert float(e.std()) == pytest.approx(1.5 * math.sin(0.99 * math.pi / 2), rel=0.05)
    final = run_sampler(sampler, SamplerState(x, e, cell, system_idx), toy, 40, g)
    frac = final.positions / edge
    assert (frac >= 0).all() and (frac < 1).all()
    d = minimum_image(final.positions - mu, cell, system_idx)
    n = len(d)
    assert torch.allclose(d.mean(0), torch.zeros(3, dtype=F64), atol=4 * s / math.sqrt(n))
    assert float(d.var(0).mean()) == pytest.approx(s**2, rel=4 * math.sqrt(2 / (3 * n)) + 0.03)
    assert torch.all(final.elements.argmax(-1) == 0)


def test_fixed_elements_are_held_and_seen_noised():
    seen = {}

    def denoise(positions, elements, cell, system_idx, t, step_size=None):
        seen.setdefault(round(float(t[0]), 4), elements.clone())
        return torch.zeros_like(positions), torch.ones_like(elements)

    n = 4000
    cell, system_idx = _big_cell_batch(1, n, edge=10.0)
    fixed = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).to(F64)
    sampler = get_sampler("sde")
    g = torch.Generator().manual_seed(0)
    x, e = sampler.prior(cell, system_idx, 3, g)
    final = run_sampler(sampler, SamplerState(x, e, cell, system_idx, fixed), denoise, 4, g)
    assert torch.equal(final.elements, fixed)
    # at each t the network sees alpha(t) * one-hot + sigma(t) * noise
    for t, elements in seen.items():
        alpha = math.cos(math.pi * t / 2)
        sigma = 1.5 * math.sin(math.pi * t / 2)
        residual = elements - alpha * fixed
        tolerance = 4 * sigma / math.sqrt(3 * n) + 1e-12
        assert float(residual.mean()) == pytest.approx(0.0, abs=tolerance)
        if sigma > 0:
            assert float(residual.std()) == pytest.approx(sigma, rel=0.05)


def test_nan_raises_sampling_error_with_step_and_time():
    def denoise(positions, elements, cell, system_idx, t, step_size=None):
        bad = float(t[0]) < 0.5
        eps = torch.full_like(positions, math.nan) if bad else torch.zeros_like(positions)
        return eps, torch.zeros_like(elements)

    cell, system_idx = _big_cell_batch(1, 5, edge=5.0)
    sampler = get_sampler("ode")
    x, e = sampler.prior(cell, system_idx, 2, None)
    with pytest.raises(SamplingError, match=r"step 7 of 11 \(t = 0\.4020"):
        run_sampler(sampler, SamplerState(x, e, cell, system_idx), denoise, 10)


def test_a_new_sampler_plugs_in_without_touching_the_others():
    @register_sampler
    class Stay(Sampler):
        name = "test-stay"

        def step(self, state, t, t_next, denoise, generator):
            return state.positions + 7.5, state.elements

    try:
        sampler = get_sampler("test-stay", t_start=0.5)
        assert sampler.t_start == 0.5
        cell, system_idx = _big_cell_batch(1, 3, edge=5.0)
        x = torch.full((3, 3), 1.0, dtype=F64)
        e = torch.zeros(3, 2, dtype=F64)
        calls = []
        final = run_sampler(sampler, SamplerState(x, e, cell, system_idx), None, 2,
                            callback=calls.append)
        # 3 steps of +7.5 Å, wrapped into the 5 Å cell after each
        assert torch.allclose(final.positions, torch.full((3, 3), 3.5, dtype=F64))
        assert calls == [1, 1, 1]
    finally:
        del SAMPLERS["test-stay"]


def test_state_validates_shapes():
    with pytest.raises(ValueError, match=r"elements must be \(N=2, C\)"):
        SamplerState(torch.zeros(2, 3), torch.zeros(3, 2), torch.eye(3)[None],
                     torch.zeros(2, dtype=torch.long))
