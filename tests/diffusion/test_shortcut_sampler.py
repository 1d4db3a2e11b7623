"""Shortcut sampler on analytic shortcut fields: one step equals many on a linear problem."""

import pytest
import torch

from ase_amden.diffusion import (
    ElementSchedule,
    PositionSchedule,
    SamplerState,
    ShortcutSampler,
    ancestral_update,
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


@pytest.mark.parametrize("schedule", [PositionSchedule(1.5), ElementSchedule(1.5)])
def test_ancestral_step_keeps_the_forward_marginal_of_a_point_mass(schedule):
    """Data at one point x0 with the exact noise: any ancestral step lands exactly on the
    forward marginal N(alpha(t') x0, sigma(t')^2) of its target time."""
    g = torch.Generator().manual_seed(4)
    x0, t, t_next = 0.7, 0.8, 0.3
    x = float(schedule.alpha(t)) * x0 + float(schedule.sigma(t)) * torch.randn(
        200_000, 1, generator=g, dtype=F64)
    eps = (x - float(schedule.alpha(t)) * x0) / float(schedule.sigma(t))
    out = ancestral_update(schedule, x, eps, t, t_next, g)
    assert float(out.mean()) == pytest.approx(float(schedule.alpha(t_next)) * x0, abs=0.01)
    assert float(out.std()) == pytest.approx(float(schedule.sigma(t_next)), rel=0.01)
    # The step to t = 0 is the clean prediction itself.
    assert torch.allclose(ancestral_update(schedule, x, eps, t, 0.0, g),
                          torch.full_like(x, x0), atol=1e-12)


def _marginal_start(n_systems, n_per, seed, t=0.99):
    """A batch drawn from the exact marginal of the Gaussian data at ``t``."""
    state = _start(n_systems, n_per, seed)
    g = torch.Generator().manual_seed(seed + 100)
    pos, el = PositionSchedule(1.5), ElementSchedule(1.5)
    a, se = float(el.alpha(t)), float(el.sigma(t))
    x = MU + (S_X**2 + float(pos.sigma(t)) ** 2) ** 0.5 * torch.randn(
        state.positions.shape, generator=g, dtype=F64)
    e = a * M + (a**2 * S_E**2 + se**2) ** 0.5 * torch.randn(
        state.elements.shape, generator=g, dtype=F64)
    return SamplerState(x, e, state.cell, state.system_idx)


def test_tail_takes_shortcut_steps_then_samples_the_data_distribution():
    """Two shortcut steps to the tail, then stochastic steps of the d = 0 prediction: with
    an exact model the final positions and elements follow the data distribution (the
    ancestral steps lose variance in O(step); 2 % on the element channel at 160 steps)."""
    sampler = ShortcutSampler(tail=0.3)
    assert sampler.time_grid(4).tolist() == pytest.approx([0.99, 0.645, 0.3, 0.075, 0.0])
    start = _marginal_start(n_systems=3, n_per=3000, seed=5)
    model = ExactShortcut()
    final = run_sampler(sampler, start, model, 162, torch.Generator().manual_seed(6))
    sizes = [step[0] for step in model.step_sizes]
    assert sizes[:2] == pytest.approx([0.345, 0.345]) and set(sizes[2:]) == {0.0}
    assert len(sizes) == 162
    assert torch.allclose(final.positions.mean(0), MU, atol=0.02)
    assert torch.allclose(final.positions.std(0), torch.full((3,), S_X, dtype=F64), rtol=0.03)
    assert torch.allclose(final.elements.mean(0), M, atol=0.02)
    assert torch.allclose(final.elements.std(0), torch.full((2,), S_E, dtype=F64), rtol=0.03)
    # The tail re-draws noise: two seeds give different structures from one start.
    again = run_sampler(sampler, start, ExactShortcut(), 162, torch.Generator().manual_seed(7))
    assert float((again.positions - final.positions).abs().max()) > 0.1


def test_tail_options_are_checked():
    with pytest.raises(ValueError, match="tail must lie between"):
        ShortcutSampler(tail=1.0)
    with pytest.raises(ValueError, match="flow shortcut model"):
        ShortcutSampler(objective="flow", tail=0.3)
    with pytest.raises(ValueError, match="grid='uniform'"):
        ShortcutSampler(tail=0.3, grid="halving")
    with pytest.raises(ValueError, match="head_steps must be"):
        ShortcutSampler(tail=0.3, head_steps=0)



def test_tail_sampler_takes_one_and_two_steps_as_plain_shortcut_steps():
    start = _start(seed=8)
    for steps in (1, 2):
        model = ExactShortcut()
        final = run_sampler(ShortcutSampler(tail=0.3), start, model, steps)
        plain = run_sampler(ShortcutSampler(), start, ExactShortcut(), steps)
        assert all(size[0] > 0.0 for size in model.step_sizes)
        assert torch.equal(final.positions, plain.positions)
