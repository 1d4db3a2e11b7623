"""Noise schedules of the forward process and their SDE coefficients (AMDEN eq. 3-7).

Both channels follow ``x_t = alpha(t) x_0 + sigma(t) eps`` with ``eps ~ N(0, I)``. The
matching forward SDE is ``dx = f(t) x dt + g(t) dW`` with ``f = d log(alpha)/dt`` and
``g^2 = d(sigma^2)/dt - 2 f sigma^2``; :meth:`NoiseSchedule.drift` returns ``f`` and
:meth:`NoiseSchedule.diffusion` returns ``g`` (AMDEN (6)-(7)).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ase_amden.models.geometry import wrap_positions

__all__ = [
    "CleanElementSchedule",
    "ElementSchedule",
    "NoiseSchedule",
    "NoisedBatch",
    "PositionSchedule",
    "forward_noise",
]


def _as_tensor(t: float | Tensor) -> Tensor:
    return t if isinstance(t, Tensor) else torch.tensor(float(t), dtype=torch.float64)


class NoiseSchedule(ABC):
    """Scale ``alpha(t)`` and noise level ``sigma(t)`` of one channel, ``t`` in [0, 1].

    Every method takes ``t`` as a float or a tensor of any shape and returns a tensor of
    that shape (float64 for a float).
    """

    @abstractmethod
    def alpha(self, t: float | Tensor) -> Tensor:
        """Signal scale ``alpha(t)``."""

    @abstractmethod
    def sigma(self, t: float | Tensor) -> Tensor:
        """Noise level ``sigma(t)`` (units of the channel)."""

    @abstractmethod
    def drift(self, t: float | Tensor) -> Tensor:
        """Forward-SDE drift coefficient ``f(t) = d log(alpha)/dt``, 1/time."""

    @abstractmethod
    def diffusion(self, t: float | Tensor) -> Tensor:
        """Forward-SDE diffusion coefficient ``g(t)`` (channel units / sqrt(time))."""

    def add_noise(self, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """Return ``alpha(t) x0 + sigma(t) eps``; ``t`` broadcasts against ``x0``."""
        return self.alpha(t) * x0 + self.sigma(t) * eps


@dataclass(frozen=True)
class PositionSchedule(NoiseSchedule):
    """Variance-exploding position schedule, AMDEN (4).

    ``alpha = 1``, ``sigma_x(t) = sigma_max * t`` (Å), ``f = 0``,
    ``g(t) = sqrt(2 sigma_max^2 t)``.

    Parameters
    ----------
    sigma_max
        Position noise at ``t = 1``, Å (1.5; 1.7 for the multi-element glass).

    >>> float(PositionSchedule(1.5).sigma(0.5))
    0.75

    """

    sigma_max: float = 1.5

    def alpha(self, t: float | Tensor) -> Tensor:
        """``1`` for every ``t``."""
        return torch.ones_like(_as_tensor(t))

    def sigma(self, t: float | Tensor) -> Tensor:
        """``sigma_max * t``, Å."""
        return self.sigma_max * _as_tensor(t)

    def drift(self, t: float | Tensor) -> Tensor:
        """``0``: the VE process has no drift."""
        return torch.zeros_like(_as_tensor(t))

    def diffusion(self, t: float | Tensor) -> Tensor:
        """``sqrt(2 sigma_max^2 t)``, Å per sqrt(time)."""
        return torch.sqrt(2.0 * self.sigma_max**2 * _as_tensor(t))


@dataclass(frozen=True)
class ElementSchedule(NoiseSchedule):
    """Cosine element schedule, AMDEN (5).

    ``alpha_e(t) = cos(pi t / 2)``, ``sigma_e(t) = sigma_max sin(pi t / 2)``,
    ``f = -(pi/2) tan(pi t / 2)``,
    ``g^2 = pi alpha_e sigma_e sigma_max + pi tan(pi t / 2) sigma_e^2`` (AMDEN (7)).

    Parameters
    ----------
    sigma_max
        Element noise at ``t = 1`` (dimensionless, 1.5).

    >>> round(float(ElementSchedule(1.5).alpha(1 / 3)), 6)
    0.866025

    """

    sigma_max: float = 1.5

    def alpha(self, t: float | Tensor) -> Tensor:
        """``cos(pi t / 2)``."""
        return torch.cos(0.5 * math.pi * _as_tensor(t))

    def sigma(self, t: float | Tensor) -> Tensor:
        """``sigma_max sin(pi t / 2)``."""
        return self.sigma_max * torch.sin(0.5 * math.pi * _as_tensor(t))

    def drift(self, t: float | Tensor) -> Tensor:
        """``-(pi/2) tan(pi t / 2)`` (diverges at ``t = 1``)."""
        return -0.5 * math.pi * torch.tan(0.5 * math.pi * _as_tensor(t))

    def diffusion(self, t: float | Tensor) -> Tensor:
        """``sqrt(pi alpha sigma sigma_max + pi tan(pi t/2) sigma^2)``."""
        t = _as_tensor(t)
        sigma = self.sigma(t)
        g2 = math.pi * self.alpha(t) * sigma * self.sigma_max + math.pi * torch.tan(
            0.5 * math.pi * t
        ) * sigma**2
        return torch.sqrt(g2)


@dataclass(frozen=True)
class CleanElementSchedule(NoiseSchedule):
    """The element channel of a fixed-composition (positions-only) model: never noised.

    ``alpha = 1``, ``sigma = 0``, ``f = g = 0``: the network always sees the clean one-hot
    of the given composition, and there is no element noise to predict.

    >>> float(CleanElementSchedule().sigma(0.7)), float(CleanElementSchedule().alpha(0.7))
    (0.0, 1.0)
    """

    def alpha(self, t: float | Tensor) -> Tensor:
        """``1`` for every ``t``."""
        return torch.ones_like(_as_tensor(t))

    def sigma(self, t: float | Tensor) -> Tensor:
        """``0`` for every ``t``."""
        return torch.zeros_like(_as_tensor(t))

    def drift(self, t: float | Tensor) -> Tensor:
        """``0``."""
        return torch.zeros_like(_as_tensor(t))

    def diffusion(self, t: float | Tensor) -> Tensor:
        """``0``."""
        return torch.zeros_like(_as_tensor(t))


class NoisedBatch(NamedTuple):
    """Output of :func:`forward_noise`; all per atom.

    Attributes
    ----------
    positions
        ``(N, 3)`` noisy positions ``X_t``, Å, wrapped into their cells.
    elements
        ``(N, C)`` noisy element channel ``E_t``.
    eps_x
        ``(N, 3)`` position noise drawn (the regression target of ``eps_X``).
    eps_e
        ``(N, C)`` element noise drawn (the regression target of ``eps_E``).

    """

    positions: Tensor
    elements: Tensor
    eps_x: Tensor
    eps_e: Tensor


def forward_noise(
    positions: Tensor,
    elements_onehot: Tensor,
    cell: Tensor,
    system_idx: Tensor,
    t_per_system: Tensor,
    pos_schedule: PositionSchedule,
    el_schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> NoisedBatch:
    """Draw ``x_t`` from ``q(x_t | x_0)`` for a batch of structures, AMDEN (3).

    Parameters
    ----------
    positions
        ``(N, 3)`` clean positions, Å.
    elements_onehot
        ``(N, C)`` clean one-hot element channel (ghosts are ordinary nodes).
    cell
        ``(B, 3, 3)`` cells, Å; rows are lattice vectors (ASE convention).
    system_idx
        ``(N,)`` long, structure of each atom.
    t_per_system
        ``(B,)`` diffusion time of each structure.
    pos_schedule, el_schedule
        Schedules of the two channels.
    generator
        Torch generator on the tensors' device, or None for the global one.

    Returns
    -------
    NoisedBatch
        ``X_t = wrap(X + sigma_x(t) eps_x)``, ``E_t = alpha_e E + sigma_e eps_e`` and the noise.

    """
    eps_x = torch.randn(
        positions.shape, generator=generator, dtype=positions.dtype, device=positions.device
    )
    eps_e = torch.randn(
        elements_onehot.shape,
        generator=generator,
        dtype=elements_onehot.dtype,
        device=elements_onehot.device,
    )
    t_atom = t_per_system[system_idx].unsqueeze(-1)
    noisy_x = pos_schedule.add_noise(positions, t_atom, eps_x)
    noisy_e = el_schedule.add_noise(elements_onehot, t_atom, eps_e)
    return NoisedBatch(wrap_positions(noisy_x, cell, system_idx), noisy_e, eps_x, eps_e)
