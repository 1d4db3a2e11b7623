"""Shortcut sampler on analytic shortcut fields: one step equals many on a linear problem."""

import pytest
import torch

from ase_amden.diffusion import (
    ElementSchedule,
    PositionSchedule,
    SamplerState,
    ShortcutSampler,
    get_sampler,
    run_sampler,
)
from ase_amden.models import minimum_image

F64 = torch.float64
MU = torch.tensor([30.0, 31.0, 29.0], dtype=F64)
M = torch.tensor([0.8, -0.3], dtype=F64)
S_X, S_E = 0.5, 0.3


class ExactShortcut:
    """A perfect eps shortcut model for Gaussian data: positions N(MU, S_X^2), elements
    N(M, S_E^2). For data this simple the probability-flow ODE is linear,
    ``x(t') = a(t') m + (x(t) - a(t) m) S(t') / S(t)`` with ``S^2 = a^2 s^2 + sigma^2``;
    given the step size d the model returns the noise that makes the DDIM update land
    exactly there (d = 0: the ordinary noise prediction).
    """

    def __init__(self):
        self.pos, self.el = PositionSchedule(1.5), ElementSchedule(1.5)
        self.step_sizes = []

    @staticmethod
    def _eps(schedule, x, mean, s, t, d):
        a, sig = schedule.alpha(t), schedule.sigma(t)
        spread = torch.sqrt(a**2 * s**2 + sig**2)
        if float(d.max()) == 0.0:
            return sig * (x - a * mean) / spread**2
        t2 = t - d
        a2, sig2 = schedule.alpha(t2), schedule.sigma(t2)
        target = a2 * mean + (x - a * mean) * torch.sqrt(a2**2 * s**2 + sig2**2) / spread
        return (target - a2 / a * x) / (sig2 - a2 * sig / a)

    def __call__(self, positions, elements, cell, system_idx, t, step_size=None):
        d = torch.zeros_like(t) if step_size is None else step_size
        self.step_sizes.append(d.tolist())
        t_atom, d_atom = t[system_idx].unsqueeze(-1), d[system_idx].unsqueeze(-1)
        return (
            self._eps(self.pos, positions, MU, S_X, t_atom, d_atom),
            self._eps(self.el, elements, M, S_E, t_atom, d_atom),
        )


def _start(n_systems=3, n_per=50, seed=0):
    cell = (60.0 * torch.eye(3, dtype=F64)).expand(n_systems, 3, 3).clone()
    system_idx = torch.arange(n_systems).repeat_interleave(n_per)
    g = torch.Generator().manual_seed(seed)
    n = n_systems * n_per
    x = MU + 1.6 * torch.randn(n, 3, generator=g, dtype=F64)
    e = M + 1.5 * torch.randn(n, 2, generator=g, dtype=F64)
    return SamplerState(x, e, cell, system_idx)


def test_one_step_and_many_steps_agree_and_hit_the_exact_map():
    start = _start()
    sampler = get_sampler("shortcut")
    assert sampler.t_start == 0.99 and sampler.time_grid(2).tolist() == [0.99, 0.495, 0.0]
    finals = {}
    for steps in (1, 3, 16):
        model = ExactShortcut()
        finals[steps] = run_sampler(sampler, start, model, steps)
        assert len(model.step_sizes) == steps
        assert model.step_sizes[0] == pytest.approx([0.99 / steps] * 3)
    pos, el = PositionSchedule(1.5), ElementSchedule(1.5)
    sx = (S_X**2 + float(pos.sigma(0.99)) ** 2) ** 0.5
    a, se = float(el.alpha(0.99)), float(el.sigma(0.99))
    exact_x = MU + (start.positions - MU) * S_X / sx
    exact_e = M + (start.elements - a * M) * S_E / (a**2 * S_E**2 + se**2) ** 0.5
    for final in finals.values():
        assert torch.allclose(final.positions, exact_x, atol=1e-9)
        assert torch.allclose(final.elements, exact_e, atol=1e-9)


def test_the_step_size_is_what_makes_one_step_exact():
    """The same field without the step size (the ode sampler, d = 0) is far off in one step."""
    start = _start(seed=1)
    shortcut = run_sampler(get_sampler("shortcut"), start, ExactShortcut(), 1)
    ode = run_sampler(get_sampler("ode", t_end=0.01), start, ExactShortcut(), 1)
    error = (ode.positions - shortcut.positions).abs().max()
    assert float(error) > 0.1


def test_flow_shortcut_moves_along_the_velocity():
    """objective="flow": x' = x + d v. With the exact velocity of a point target, one step of
    size 1 from the noise lands on it (periodic cell)."""
    x_star = torch.tensor([0.1, 3.9, 2.0], dtype=F64)
    seen = []

    def field(positions, elements, cell, system_idx, t, step_size=None):
        seen.append((float(t[0]), float(step_size[0])))
        t_atom = t[system_idx].unsqueeze(-1)
        return (minimum_image(x_star - positions, cell, system_idx) / t_atom,
                torch.zeros_like(elements))

    sampler = ShortcutSampler(objective="flow")
    cell = (4.0 * torch.eye(3, dtype=F64)).expand(2, 3, 3).clone()
    system_idx = torch.arange(2).repeat_interleave(20)
    g = torch.Generator().manual_seed(2)
    x, e = sampler.prior(cell, system_idx, 2, g)
    final = run_sampler(sampler, SamplerState(x, e, cell, system_idx), field, 1, g)
    assert seen == [(1.0, 1.0)]
    assert torch.allclose(final.positions, x_star.expand_as(x), atol=1e-12)


def test_options_are_checked():
    with pytest.raises(ValueError, match="'eps' or 'flow'"):
        ShortcutSampler(objective="score")
    with pytest.raises(ValueError, match="t_start = 1"):
        ShortcutSampler(objective="flow", t_start=0.9)


def test_halving_grid_takes_the_trained_step_sizes_and_stays_exact():
    sampler = ShortcutSampler(grid="halving")
    assert sampler.time_grid(5).tolist() == pytest.approx(
        [0.99, 0.495, 0.2475, 0.12375, 0.061875, 0.0])
    start = _start(seed=3)
    model = ExactShortcut()
    final = run_sampler(sampler, start, model, 4)
    sizes = [step[0] for step in model.step_sizes]
    assert sizes == pytest.approx([0.495, 0.2475, 0.12375, 0.12375])
    uniform = run_sampler(get_sampler("shortcut"), start, ExactShortcut(), 4)
    assert torch.allclose(final.positions, uniform.positions, atol=1e-9)  # both exact
    with pytest.raises(ValueError, match="grid must be one of"):
        ShortcutSampler(grid="spiral")
