import math

import numpy as np
import pytest
import torch
from scipy import stats

from ase_amden.diffusion import ElementSchedule, PositionSchedule, forward_noise
from ase_amden.models import minimum_image

TIMES = [0.0, 0.01, 0.25, 0.5, 0.8, 0.99]


@pytest.mark.parametrize("t", TIMES)
def test_position_schedule_is_variance_exploding(t):
    schedule = PositionSchedule(1.7)
    assert float(schedule.alpha(t)) == 1.0
    assert float(schedule.sigma(t)) == pytest.approx(1.7 * t, abs=1e-15)
    assert float(schedule.drift(t)) == 0.0
    assert float(schedule.diffusion(t)) == pytest.approx(math.sqrt(2 * 1.7**2 * t), abs=1e-15)


@pytest.mark.parametrize("t", TIMES)
def test_element_schedule_is_cosine(t):
    schedule = ElementSchedule(1.5)
    assert float(schedule.alpha(t)) == pytest.approx(math.cos(math.pi * t / 2), abs=1e-15)
    assert float(schedule.sigma(t)) == pytest.approx(1.5 * math.sin(math.pi * t / 2), abs=1e-15)
    assert float(schedule.drift(t)) == pytest.approx(-math.pi / 2 * math.tan(math.pi * t / 2))


@pytest.mark.parametrize("schedule", [PositionSchedule(1.5), ElementSchedule(1.5)])
@pytest.mark.parametrize("t", [0.05, 0.3, 0.6, 0.95])
def test_sde_coefficients_match_the_marginals(schedule, t):
    """f = d log(alpha)/dt and g^2 = d(sigma^2)/dt - 2 f sigma^2 (finite differences)."""
    h = 1e-6
    tt = torch.tensor([t - h, t + h], dtype=torch.float64)
    dlog_alpha = float(torch.diff(torch.log(schedule.alpha(tt)))) / (2 * h)
    dsigma2 = float(torch.diff(schedule.sigma(tt) ** 2)) / (2 * h)
    f = float(schedule.drift(t))
    assert f == pytest.approx(dlog_alpha, rel=1e-6, abs=1e-8)
    g2 = float(schedule.diffusion(t)) ** 2
    assert g2 == pytest.approx(dsigma2 - 2 * f * float(schedule.sigma(t)) ** 2, rel=1e-6)


def test_schedules_keep_tensor_shape_and_dtype():
    t = torch.rand(4, 1, dtype=torch.float32)
    for schedule in (PositionSchedule(), ElementSchedule()):
        for fn in (schedule.alpha, schedule.sigma, schedule.drift, schedule.diffusion):
            out = fn(t)
            assert out.shape == (4, 1) and out.dtype == torch.float32


def _batch(n_per=50, edges=(4.0, 5.0), n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    cell = torch.stack([e * torch.eye(3, dtype=torch.float64) for e in edges])
    system_idx = torch.arange(len(edges)).repeat_interleave(n_per)
    frac = torch.rand(len(system_idx), 3, generator=g, dtype=torch.float64)
    positions = torch.einsum("ni,nij->nj", frac, cell[system_idx])
    classes = torch.randint(n_classes, (len(system_idx),), generator=g)
    onehot = torch.nn.functional.one_hot(classes, n_classes).double()
    return positions, onehot, cell, system_idx


def test_forward_noise_follows_eq3():
    positions, onehot, cell, system_idx = _batch()
    t = torch.tensor([0.2, 0.7], dtype=torch.float64)
    pos_s, el_s = PositionSchedule(1.5), ElementSchedule(1.5)
    out = forward_noise(positions, onehot, cell, system_idx, t, pos_s, el_s,
                        generator=torch.Generator().manual_seed(1))
    t_atom = t[system_idx].unsqueeze(-1)
    # wrapped: inside the cell
    frac = torch.einsum("ni,nij->nj", out.positions, torch.linalg.inv(cell)[system_idx])
    assert (frac >= 0).all() and (frac < 1).all()
    # X_t = X + sigma eps up to a lattice vector
    shift = minimum_image(out.positions - positions - 1.5 * t_atom * out.eps_x, cell, system_idx)
    assert torch.allclose(shift, torch.zeros_like(shift), atol=1e-10)
    expected_e = torch.cos(math.pi * t_atom / 2) * onehot + 1.5 * torch.sin(
        math.pi * t_atom / 2) * out.eps_e
    assert torch.allclose(out.elements, expected_e, atol=1e-12)
    # the noise is standard normal
    assert abs(float(out.eps_x.std()) - 1.0) < 0.15
    # same generator seed, same draw
    again = forward_noise(positions, onehot, cell, system_idx, t, pos_s, el_s,
                          generator=torch.Generator().manual_seed(1))
    assert torch.equal(again.positions, out.positions)


def test_forward_noise_at_t_max_is_uniform_in_the_cell():
    """All atoms start at one point; at t = 0.999 fractional coordinates are uniform."""
    n = 3000
    edge = 3.0
    cell = edge * torch.eye(3, dtype=torch.float64).unsqueeze(0)
    system_idx = torch.zeros(n, dtype=torch.long)
    positions = torch.full((n, 3), 1.2, dtype=torch.float64)
    onehot = torch.zeros(n, 2, dtype=torch.float64)
    onehot[:, 0] = 1

    def fractional_at(t):
        out = forward_noise(positions, onehot, cell, system_idx,
                            torch.tensor([t], dtype=torch.float64), PositionSchedule(1.5),
                            ElementSchedule(1.5), generator=torch.Generator().manual_seed(3))
        return (out.positions / edge).flatten().numpy(), out

    frac, out = fractional_at(0.999)
    assert stats.kstest(frac, "uniform").pvalue > 1e-3
    # elements: the prior N(0, sigma_e(t_max)^2) (alpha_e(0.999) ~ 1.6e-3)
    assert np.std(out.elements.numpy()) == pytest.approx(1.5, rel=0.05)
    # a small time is clearly not uniform: the test can fail
    frac_small, _ = fractional_at(0.2)
    assert stats.kstest(frac_small, "uniform").pvalue < 1e-6
