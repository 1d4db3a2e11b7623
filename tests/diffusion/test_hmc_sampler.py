"""HMC denoising sampler on an analytic energy model whose noised distribution is known."""

import math

import pytest
import torch

from ase_amden.diffusion import (
    ElementSchedule,
    GuidedDenoiser,
    HMCSampler,
    PositionSchedule,
    SamplerState,
    get_sampler,
    run_sampler,
)
from ase_amden.errors import AmdenError

F64 = torch.float64
MU = torch.tensor([30.0, 31.0, 29.0], dtype=F64)
S_X = 0.5
TARGET = torch.tensor([1.0, 0.0], dtype=F64)  # every atom's clean element channel


class GaussianEnergyModel(torch.nn.Module):
    """Exact noise energy of positions ~ N(MU, S_X^2) and elements = TARGET (kT = 1).

    ``E_hat = sum_i 0.5 |X_i - MU|^2 / (S_X^2 + sigma_x(t)^2)``, so ``exp(-E_hat)`` is the
    noised position distribution at ``t`` (valid far from the walls of a big cell).
    """

    def __init__(self):
        super().__init__()
        self.pos, self.el = PositionSchedule(1.5), ElementSchedule(1.5)
        self.energy_calls = 0

    def _variance(self, t, system_idx):
        return S_X**2 + self.pos.sigma(t[system_idx]).unsqueeze(-1) ** 2

    def energy(self, positions, elements, cell, system_idx, t, properties=None,
               property_mask=None, generator=None):
        self.energy_calls += 1
        per_atom = 0.5 * ((positions - MU) ** 2 / self._variance(t, system_idx)).sum(-1)
        return torch.zeros(cell.shape[0], dtype=F64).index_add(0, system_idx, per_atom)

    def forward(self, positions, elements, cell, system_idx, t, properties=None,
                property_mask=None, step_size=None):
        sigma = self.pos.sigma(t[system_idx]).unsqueeze(-1)
        eps_x = sigma * (positions - MU) / self._variance(t, system_idx)
        t_atom = t[system_idx].unsqueeze(-1)
        eps_e = (elements - self.el.alpha(t_atom) * TARGET) / self.el.sigma(t_atom)
        return eps_x, eps_e


def _batch(n_systems, n_per, t, generator, spread):
    """Big cells; positions N(MU, spread^2), elements at their exact marginal at t."""
    cell = (60.0 * torch.eye(3, dtype=F64)).expand(n_systems, 3, 3).clone()
    system_idx = torch.arange(n_systems).repeat_interleave(n_per)
    n = n_systems * n_per
    positions = MU + spread * torch.randn(n, 3, generator=generator, dtype=F64)
    el = ElementSchedule(1.5)
    elements = float(el.alpha(t)) * TARGET + float(el.sigma(t)) * torch.randn(
        n, 2, generator=generator, dtype=F64
    )
    return SamplerState(positions, elements, cell, system_idx)


def test_one_hmc_iteration_equilibrates_to_the_noised_distribution():
    """From a collapsed start (variance 0.01 Å^2) a few HMC iterations at t = 0.5 reach the
    known noised marginal N(MU, S_X^2 + sigma_x(0.5)^2)."""
    g = torch.Generator().manual_seed(0)
    state = _batch(400, 5, 0.5, g, spread=0.1)
    sampler = HMCSampler()
    denoise = GuidedDenoiser(GaussianEnergyModel())
    for _ in range(4):
        state = sampler.hmc_iteration(state, 0.5, denoise, g)
    n = state.positions.shape[0]
    expected = S_X**2 + 0.75**2
    assert float(state.positions.var(0).mean()) == pytest.approx(
        expected, rel=4 * math.sqrt(2 / (3 * n))
    )
    assert torch.allclose(state.positions.mean(0), MU, atol=4 * math.sqrt(expected / n))
    rate = state.diagnostics["hmc_acceptance"]
    assert rate.shape == (400,) and torch.equal(state.diagnostics["hmc_iterations"],
                                               torch.full((400,), 4))
    assert 0.5 < float(rate.mean()) <= 1.0 and bool(((rate >= 0) & (rate <= 1)).all())


def test_hmc_repairs_a_wrong_start_that_the_ode_keeps():
    """Start at t = 0.5 with the wrong (collapsed) distribution: the deterministic ode keeps
    the error to t = 0, HMC denoising (ode update) recovers the data variance S_X^2."""
    g = torch.Generator().manual_seed(1)
    start = _batch(400, 5, 0.5, g, spread=0.05)
    model = GaussianEnergyModel()
    final = {}
    for name in ("ode", "hmc"):
        options = {"update": "ode"} if name == "hmc" else {}
        sampler = get_sampler(name, t_start=0.5, **options)
        final[name] = run_sampler(sampler, start, GuidedDenoiser(model), 30, g)
    n = start.positions.shape[0]
    assert float(final["ode"].positions.var(0).mean()) < 0.3 * S_X**2
    var = float(final["hmc"].positions.var(0).mean())
    assert var == pytest.approx(S_X**2, rel=4 * math.sqrt(2 / (3 * n)) + 0.03)
    stats = final["hmc"].diagnostics
    assert torch.equal(stats["hmc_iterations"], torch.full((400,), 31))  # 0.5 ... 0.01: 31 times
    assert 0.0 < float(stats["hmc_acceptance"].min()) and float(
        stats["hmc_acceptance"].max()) <= 1.0
    assert torch.all(final["hmc"].elements.argmax(-1) == 0)


def test_hmc_with_sde_update_reproduces_the_data():
    g = torch.Generator().manual_seed(2)
    sx = math.sqrt(S_X**2 + (1.5 * 0.99) ** 2)
    start = _batch(20, 100, 0.99, g, spread=sx)
    model = GaussianEnergyModel()
    final = run_sampler(get_sampler("hmc"), start, GuidedDenoiser(model), 60, g)
    n = start.positions.shape[0]
    assert torch.allclose(final.positions.mean(0), MU, atol=4 * S_X / math.sqrt(n))
    assert float(final.positions.var(0).mean()) == pytest.approx(
        S_X**2, rel=4 * math.sqrt(2 / (3 * n)) + 0.03
    )
    # HMC only for t <= 0.5: 16 energy calls (start + 15 leapfrog) per iteration
    n_hmc = sum(1 for t in get_sampler("hmc").time_grid(60)[:-1] if t <= 0.5 + 1e-9)
    assert torch.equal(final.diagnostics["hmc_iterations"], torch.full((20,), n_hmc))
    assert model.energy_calls == 16 * n_hmc


def test_timestep_is_sigma_x_times_dt0(monkeypatch):
    seen = []
    import ase_amden.diffusion.hmc as hmc_module

    real = hmc_module.hmc_denoise_step

    def spy(*args, timestep, n_leapfrog, **kwargs):
        seen.append((timestep, n_leapfrog))
        return real(*args, timestep=timestep, n_leapfrog=n_leapfrog, **kwargs)

    monkeypatch.setattr(hmc_module, "hmc_denoise_step", spy)
    g = torch.Generator().manual_seed(3)
    state = _batch(2, 5, 0.3, g, spread=0.5)
    sampler = HMCSampler(dt0=0.2, n_leapfrog=3, t_max=0.3, t_start=0.5, t_end=0.1)
    run_sampler(sampler, state, GuidedDenoiser(GaussianEnergyModel()), 4, g)
    # grid 0.5, 0.4, 0.3, 0.2, 0.1, 0: HMC at 0.3, 0.2, 0.1 with dt = 1.5 t * 0.2
    assert [n for _, n in seen] == [3, 3, 3]
    assert [dt for dt, _ in seen] == pytest.approx([0.09, 0.06, 0.03])


def test_guided_or_bare_denoisers_are_refused():
    g = torch.Generator().manual_seed(4)
    state = _batch(1, 3, 0.3, g, spread=0.5)
    model = GaussianEnergyModel()
    with pytest.raises(TypeError, match="GuidedDenoiser"):
        HMCSampler().hmc_iteration(state, 0.3, model, g)
    guided = GuidedDenoiser(model, torch.zeros(1, 1, dtype=F64), torch.ones(1, 1, dtype=bool),
                            guidance=1.0)
    with pytest.raises(AmdenError, match="guidance=0"):
        HMCSampler().hmc_iteration(state, 0.3, guided, g)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"dt0": 0.0}, "dt0"), ({"n_leapfrog": 0}, "n_leapfrog"), ({"update": "euler"}, "update"),
     ({"t_max": 1.5}, "t_max")],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        HMCSampler(**options)
