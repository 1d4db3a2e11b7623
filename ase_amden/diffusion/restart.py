"""Restart sampling (Xu et al., NeurIPS 2023): the reverse SDE, then noise-and-denoise cycles.

After AMDEN's reverse SDE has reached ``t_end``, the structure is noised forward again to
``t_restart`` with the forward process itself and denoised back with the reverse SDE, several
times. Each cycle re-draws the noise of the levels at which a model still resolves the local
structure: errors made at the noisy start (a wrong coordination left by an inaccurate score
at 0.5-1 Å) get further chances to be undone, while the forward noise contracts the
accumulated discretisation and score errors (Xu et al., Theorem 1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ase_amden.diffusion.samplers import SDESampler, _randn_like, register_sampler
from ase_amden.diffusion.schedules import NoiseSchedule

__all__ = ["RestartSampler"]


def forward_jump(schedule: NoiseSchedule, x: Tensor, t: float, t_next: float, generator,
                 system_idx: Tensor) -> Tensor:
    """Noise ``x`` from time ``t`` to a later ``t_next`` with the forward process.

    ``x' = (alpha'/alpha) x + sqrt(sigma'^2 - (alpha'/alpha)^2 sigma^2) z``: the marginal at
    ``t_next`` given the clean structure is then that of the forward process.
    """
    ratio = float(schedule.alpha(t_next) / schedule.alpha(t))
    variance = float(schedule.sigma(t_next)) ** 2 - (ratio * float(schedule.sigma(t))) ** 2
    return ratio * x + math.sqrt(max(variance, 0.0)) * _randn_like(x, generator, system_idx)


def _count(name: str, value, minimum: int) -> int:
    """``value`` as an int; ValueError naming ``name`` unless a whole number >= ``minimum``."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


@register_sampler
class RestartSampler(SDESampler):
    """AMDEN's reverse SDE followed by ``restarts`` forward-noise / reverse-SDE cycles.

    The time grid is the ``sde`` grid from ``t_start`` to ``t_end``, then for each restart a
    jump up to ``t_restart`` and the ``sde`` grid from there to ``t_end``, then the final
    step to 0. The last restart pass runs at the step density of the first pass
    (``ceil(steps (t_restart - t_end) / (t_start - t_end))`` steps); the others take
    ``restart_steps`` steps, the same density if it is not given. Network calls: ``steps + 1``
    plus the steps of the restart passes.

    Coarse passes explore more structures per network call and the fine last pass repairs the
    local order they leave: on the DM2 silica model (648 atoms, about 1,300 network calls),
    300 passes of 4 steps end with more 4-fold Si and a wider Si-O-Si angle than 48 passes at
    the full density.

    Parameters
    ----------
    restarts
        Number of cycles (0: exactly the ``sde`` sampler).
    t_restart
        Time noised back to (0.2: 0.3 Å for a model with ``sigma_x_max`` 1.5 Å); between
        ``t_end`` and ``t_start``.
    restart_steps
        Steps of every restart pass but the last (``None``: the density of the first pass).
    pos_schedule, el_schedule, t_start, t_end
        As for :class:`~ase_amden.diffusion.Sampler`.

    """

    name = "restart"

    def __init__(self, *, restarts: int = 8, t_restart: float = 0.2,
                 restart_steps: int | None = None,
                 pos_schedule: NoiseSchedule | None = None,
                 el_schedule: NoiseSchedule | None = None,
                 t_start: float = 0.99, t_end: float = 0.01) -> None:
        super().__init__(pos_schedule=pos_schedule, el_schedule=el_schedule, t_start=t_start,
                         t_end=t_end)
        if not self.t_end < t_restart < self.t_start:
            raise ValueError(f"t_restart must lie between t_end={self.t_end} and "
                             f"t_start={self.t_start}, got {t_restart}")
        self.restarts = _count("restarts", restarts, 0)
        self.t_restart = float(t_restart)
        self.restart_steps = None if restart_steps is None else _count("restart_steps",
                                                                       restart_steps, 1)

    def time_grid(self, steps: int) -> Tensor:
        """Times visited: the ``sde`` pass, then ``restarts`` jumps up and passes down."""
        main = super().time_grid(steps)
        if self.restarts == 0:
            return main
        down = main[:steps + 1]  # t_start ... t_end, without the final step to 0
        tail = main[steps + 1:]
        n = math.ceil(steps * (self.t_restart - self.t_end) / (self.t_start - self.t_end))
        last = torch.linspace(self.t_restart, self.t_end, n + 1, dtype=torch.float64)
        coarse = last if self.restart_steps is None else torch.linspace(
            self.t_restart, self.t_end, self.restart_steps + 1, dtype=torch.float64)
        return torch.cat([down, *([coarse] * (self.restarts - 1)), last, tail])

    def step(self, state, t, t_next, denoise, generator):
        """A reverse-SDE step, or a forward jump where the grid goes up (no network call)."""
        if t_next <= t:
            return super().step(state, t, t_next, denoise, generator)
        idx = state.system_idx
        return (forward_jump(self.pos_schedule, state.positions, t, t_next, generator, idx),
                forward_jump(self.el_schedule, state.elements, t, t_next, generator, idx))
