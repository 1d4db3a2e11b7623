"""Analytic denoisers for the sampler tests: noisy marginals are known, so eps is exact."""

from __future__ import annotations

import pytest
import torch

from ase_amden.diffusion import ElementSchedule, PositionSchedule


class GaussianToyDenoiser:
    """Exact noise prediction for positions ~ N(mu, s_x^2 I), elements ~ N(m, s_e^2 I).

    Valid while positions stay far from the cell boundary (a big cell), where the wrapped
    Gaussian is a Gaussian.
    """

    def __init__(self, mu, s_x, m, s_e, pos_schedule=None, el_schedule=None):
        self.mu = mu
        self.s_x = s_x
        self.m = m
        self.s_e = s_e
        self.pos = pos_schedule or PositionSchedule(1.5)
        self.el = el_schedule or ElementSchedule(1.5)
        self.calls = 0

    def marginal(self, t: float):
        """Mean and std of (positions, elements) at time t."""
        a, se = float(self.el.alpha(t)), float(self.el.sigma(t))
        sx = float(self.pos.sigma(t))
        return (
            (self.mu, (self.s_x**2 + sx**2) ** 0.5),
            (a * self.m, (a**2 * self.s_e**2 + se**2) ** 0.5),
        )

    def __call__(self, positions, elements, cell, system_idx, t, step_size=None):
        self.calls += 1
        t_atom = t[system_idx].unsqueeze(-1)
        sx = self.pos.sigma(t_atom)
        a, se = self.el.alpha(t_atom), self.el.sigma(t_atom)
        eps_x = sx * (positions - self.mu) / (self.s_x**2 + sx**2)
        eps_e = se * (elements - a * self.m) / (a**2 * self.s_e**2 + se**2)
        return eps_x, eps_e


class WrappedGaussianToyDenoiser:
    """Exact noise prediction for positions ~ wrapped N(mu, s^2) per coordinate in a cube.

    The cube edge ``L`` is small enough that the marginal at ``t = 0.99`` is uniform, so the
    sampler's own prior is the right start. Elements: a fixed one-hot ``target`` (exact eps).
    """

    def __init__(self, mu, s, edge, target, n_images=3):
        self.mu, self.s, self.edge, self.target = mu, s, edge, target
        self.pos = PositionSchedule(1.5)
        self.el = ElementSchedule(1.5)
        self.shifts = edge * torch.arange(-n_images, n_images + 1, dtype=torch.float64)

    def __call__(self, positions, elements, cell, system_idx, t, step_size=None):
        t_atom = t[system_idx].unsqueeze(-1)
        sigma = self.pos.sigma(t_atom)
        var = self.s**2 + sigma**2
        d = (positions - self.mu).unsqueeze(-1) + self.shifts  # (N, 3, K)
        w = torch.softmax(-(d**2) / (2 * var.unsqueeze(-1)), dim=-1)
        eps_x = sigma * (w * d).sum(-1) / var
        a, se = self.el.alpha(t_atom), self.el.sigma(t_atom)
        eps_e = (elements - a * self.target) / se
        return eps_x, eps_e


@pytest.fixture
def gaussian_toy():
    """Factory of :class:`GaussianToyDenoiser`."""
    return GaussianToyDenoiser


@pytest.fixture
def wrapped_gaussian_toy():
    """Factory of :class:`WrappedGaussianToyDenoiser`."""
    return WrappedGaussianToyDenoiser
