"""Annealed-noise sampler of Yang and Schwalbe-Koda (npj Comput. Mater. 2025, ``langevin``).

Their generation (seeds/004, Methods, "Inference and generative denoising process") runs
3,000 small denoising steps; to each of the first 2,900 it adds "extra" per-atom,
per-coordinate Gaussian noise whose size falls linearly from 1.0 to zero, and the last 100
steps add none. The extra noise is an effective temperature that lets the structure leave
local minima of the learned score; without it their structures had too many outlier
environments. Their denoiser is a DDPM without a continuous time, so "1.0" has no unit of its
own there. Here it is made precise for the continuous-time model of AMDEN (eq. 3-7) as follows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ase_amden.diffusion.samplers import Sampler, ddim_update, register_sampler
from ase_amden.diffusion.schedules import NoiseSchedule
from ase_amden.random_streams import RandomStream, randn

__all__ = ["LangevinSampler"]


@register_sampler
class LangevinSampler(Sampler):
    r"""Probability-flow steps plus extra noise of linearly falling size (Yang, Schwalbe-Koda).

    Each step from ``t`` to ``t' = t - dt`` is the deterministic (DDIM) step of the ``ode``
    sampler followed by one Langevin step at the current noise level:

    .. math::

        x \leftarrow \mathrm{DDIM}(x; t \to t')
            + \tfrac{1}{2}\lambda^2 g(t)^2\,dt\; s(x, t) + \lambda\, g(t) \sqrt{dt}\; z,

    with the score ``s = -eps / sigma(t)``, ``z ~ N(0, I)`` and ``g`` the diffusion
    coefficient of the forward SDE (:meth:`NoiseSchedule.diffusion`). **The extra-noise
    scale** ``lambda`` is therefore measured in units of the reverse SDE's own noise per
    step, ``g(t) sqrt(dt)`` (for positions ``sqrt(2 t dt) sigma_x_max`` Å, i.e.
    ``sqrt(sigma_x(t)^2 - sigma_x(t')^2)``); the score term that comes with it keeps the
    noised marginals of the forward process unchanged for every ``lambda``, so the noise
    heats the structure without biasing what it converges to. ``lambda = 1`` is AMDEN's
    reverse SDE (``sde``), ``lambda = 0`` the probability-flow ODE (``ode``).

    ``lambda`` falls linearly with the step index from ``extra_noise`` at ``t_start`` to 0
    after the first ``1 - quiet_fraction`` of the steps; the rest are plain deterministic
    steps. The defaults reproduce the paper: 3,000 steps (``default_steps``), of which the
    first 2,900 carry extra noise starting at 1.0 and the last 100 (plus the final step to
    ``t = 0``) none. Both channels, positions and elements, get the extra noise.

    Parameters
    ----------
    extra_noise
        ``lambda`` at the first step (1.0 in the paper), ``>= 0``.
    quiet_fraction
        Fraction of the steps at the end without extra noise (1/30: 100 of 3,000).
    pos_schedule, el_schedule, t_start, t_end
        As for :class:`~ase_amden.diffusion.Sampler`.

    """

    name = "langevin"
    default_steps = 3000

    def __init__(
        self,
        *,
        extra_noise: float = 1.0,
        quiet_fraction: float = 1.0 / 30.0,
        pos_schedule: NoiseSchedule | None = None,
        el_schedule: NoiseSchedule | None = None,
        t_start: float = 0.99,
        t_end: float = 0.01,
    ) -> None:
        if not extra_noise >= 0:
            raise ValueError(f"extra_noise must be >= 0, got {extra_noise}")
        if not 0.0 <= quiet_fraction < 1.0:
            raise ValueError(f"quiet_fraction must be in [0, 1), got {quiet_fraction}")
        super().__init__(
            pos_schedule=pos_schedule, el_schedule=el_schedule, t_start=t_start, t_end=t_end
        )
        self.extra_noise = float(extra_noise)
        self.quiet_fraction = float(quiet_fraction)

    @property
    def t_quiet(self) -> float:
        """Time below which no extra noise is added."""
        return self.t_end + self.quiet_fraction * (self.t_start - self.t_end)

    def extra_noise_scale(self, t: float) -> float:
        """``lambda`` of the step that starts at ``t``: linear in ``t`` (so in the step index).

        >>> sampler = LangevinSampler()
        >>> sampler.extra_noise_scale(0.99), sampler.extra_noise_scale(0.02)
        (1.0, 0.0)
        """
        t_quiet = self.t_quiet
        if t <= t_quiet:
            return 0.0
        return self.extra_noise * min(1.0, (t - t_quiet) / (self.t_start - t_quiet))

    def _update(
        self,
        schedule: NoiseSchedule,
        x: Tensor,
        eps: Tensor,
        t: float,
        t_next: float,
        scale: float,
        generator: RandomStream,
        system_idx: Tensor,
    ) -> Tensor:
        x_next = ddim_update(schedule, x, eps, t, t_next)
        if scale == 0.0:
            return x_next
        g2_dt = float(schedule.diffusion(t)) ** 2 * (t - t_next)
        score = -eps / float(schedule.sigma(t))
        noise = randn(x.shape, generator, dtype=x.dtype, device=x.device, rows=system_idx)
        return x_next + 0.5 * scale**2 * g2_dt * score + scale * g2_dt**0.5 * noise

    def step(self, state, t, t_next, denoise, generator):
        """One probability-flow step plus the extra noise of time ``t``."""
        like = state.positions
        tb = torch.full((state.n_systems,), t, dtype=like.dtype, device=like.device)
        eps_x, eps_e = denoise(state.positions, state.elements, state.cell, state.system_idx, tb)
        scale = self.extra_noise_scale(t)
        return (
            self._update(self.pos_schedule, state.positions, eps_x, t, t_next, scale, generator,
                         state.system_idx),
            self._update(self.el_schedule, state.elements, eps_e, t, t_next, scale, generator,
                         state.system_idx),
        )

    def __repr__(self) -> str:
        return (
            f"LangevinSampler(extra_noise={self.extra_noise}, "
            f"quiet_fraction={self.quiet_fraction}, pos_schedule={self.pos_schedule!r}, "
            f"el_schedule={self.el_schedule!r}, t_start={self.t_start}, t_end={self.t_end})"
        )
