"""HMC denoising: an HMC iteration on the noise energy before each late denoising step.

AMDEN's energy variant (AMDEN eq. 18-24, "Hamiltonian Monte Carlo denoising") corrects
the distribution at each noise level with Hamiltonian Monte Carlo on the learned noise energy
``E_hat(x, t, y)`` (``kT = 1``); the HMC algorithm itself is
:func:`ase_amden.dynamics.hmc_denoise_step`.
"""

from __future__ import annotations

import dataclasses

import torch

from ase_amden.diffusion.guidance import GuidedDenoiser
from ase_amden.diffusion.samplers import (
    DenoiseFn,
    ODESampler,
    Sampler,
    SamplerState,
    SDESampler,
    register_sampler,
)
from ase_amden.diffusion.schedules import NoiseSchedule
from ase_amden.dynamics.hmc_denoise import hmc_denoise_step
from ase_amden.errors import AmdenError
from ase_amden.random_streams import RandomStream

__all__ = ["HMCSampler"]

_UPDATES = {"sde": SDESampler, "ode": ODESampler}

# Grid times are computed in floating point: t = t_max on the grid counts as t <= t_max.
_TIME_TOLERANCE = 1e-9


@register_sampler
class HMCSampler(Sampler):
    """Denoising steps with one HMC iteration on the positions before each step at ``t <= t_max``.

    Each HMC iteration draws momenta ``p ~ N(0, I)``, runs ``n_leapfrog`` velocity-Verlet
    steps of size ``dt = sigma_x(t) * dt0`` on the noise energy ``E_hat(x, t, y)`` (the
    model's own, at the structure's current elements and targets) and accepts with
    ``min(1, exp(-(H_new - H_old)))``, per structure. The denoising step that follows is
    the ordinary one (``update``: ``"sde"``, AMDEN's default, or ``"ode"``). The AMDEN
    settings are the defaults: 2,000 steps (``default_steps``), ``t_max = 0.5``,
    ``n_leapfrog = 15``, ``dt0 = 0.4`` (Si, SiO2; use 0.2 for the multi-element glass),
    no guidance.

    The running per-structure acceptance rate is kept in
    ``state.diagnostics["hmc_acceptance"]`` (``(B,)``, over ``["hmc_iterations"]``
    iterations); :class:`~ase_amden.AmorphousGenerator` writes both into ``atoms.info``.
    Needs an energy-based model (``ModelCard.energy``) and a :class:`GuidedDenoiser` as
    ``denoise`` (it reaches the network's energy through it).

    Parameters
    ----------
    dt0
        Leapfrog step in units of the position noise ``sigma_x(t)``, ``> 0``.
    n_leapfrog
        Velocity-Verlet steps per HMC iteration, ``>= 1``.
    t_max
        HMC runs before every step that starts at ``t <= t_max``.
    update
        The denoising step: ``"sde"`` or ``"ode"``.
    pos_schedule, el_schedule, t_start, t_end
        As for :class:`~ase_amden.diffusion.Sampler`.

    """

    name = "hmc"
    default_steps = 2000
    supports_guidance = False
    supports_observables = False  # HMC samples the model energy itself

    def __init__(
        self,
        *,
        dt0: float = 0.4,
        n_leapfrog: int = 15,
        t_max: float = 0.5,
        update: str = "sde",
        pos_schedule: NoiseSchedule | None = None,
        el_schedule: NoiseSchedule | None = None,
        t_start: float = 0.99,
        t_end: float = 0.01,
    ) -> None:
        if not dt0 > 0:
            raise ValueError(f"dt0 must be > 0, got {dt0}")
        if int(n_leapfrog) != n_leapfrog or n_leapfrog < 1:
            raise ValueError(f"n_leapfrog must be a positive integer, got {n_leapfrog}")
        if not 0.0 <= t_max <= 1.0:
            raise ValueError(f"t_max must be in [0, 1], got {t_max}")
        if update not in _UPDATES:
            raise ValueError(f"update must be one of {sorted(_UPDATES)}, got {update!r}")
        super().__init__(
            pos_schedule=pos_schedule, el_schedule=el_schedule, t_start=t_start, t_end=t_end
        )
        self.dt0 = float(dt0)
        self.n_leapfrog = int(n_leapfrog)
        self.t_max = float(t_max)
        self.update = update
        self._denoising = _UPDATES[update](
            pos_schedule=self.pos_schedule, el_schedule=self.el_schedule,
            t_start=t_start, t_end=t_end,
        )

    @classmethod
    def incompatibility(cls, card) -> str | None:
        """HMC denoising needs a model with a noise energy."""
        if not card.energy:
            return (
                "HMC denoising needs the noise energy of an energy-based model, and this one "
                "is not (card.energy is False); train one with DenoiserConfig(energy=True) "
                "and ModelCard(energy=True), or use sampler 'sde'"
            )
        return super().incompatibility(card)

    def hmc_iteration(
        self,
        state: SamplerState,
        t: float,
        denoise: GuidedDenoiser,
        generator: RandomStream,
    ) -> SamplerState:
        """One HMC iteration on the positions at time ``t``; updates the acceptance rate."""
        if not isinstance(denoise, GuidedDenoiser):
            raise TypeError(
                "the hmc sampler reaches the network's noise energy through a GuidedDenoiser; "
                f"got {type(denoise).__name__}"
            )
        if denoise.is_guided:
            raise AmdenError(
                "HMC denoising samples the model's own noise energy and takes no "
                "classifier-free guidance; use guidance=0"
            )
        like = state.positions
        tb = torch.full((state.n_systems,), t, dtype=like.dtype, device=like.device)
        result = hmc_denoise_step(
            denoise.model, state.positions, state.elements, state.cell, state.system_idx, tb,
            timestep=float(self.pos_schedule.sigma(t)) * self.dt0,
            n_leapfrog=self.n_leapfrog,
            properties=denoise.properties,
            property_mask=denoise.property_mask,
            generator=generator,
        )
        stats = state.diagnostics
        count = stats.get("hmc_iterations", torch.zeros_like(tb, dtype=torch.long)) + 1
        rate = stats.get("hmc_acceptance", torch.zeros_like(tb))
        stats["hmc_iterations"] = count
        stats["hmc_acceptance"] = rate + (result.accepted.to(like.dtype) - rate) / count
        return dataclasses.replace(state, positions=result.positions)

    def step(
        self,
        state: SamplerState,
        t: float,
        t_next: float,
        denoise: DenoiseFn,
        generator: RandomStream,
    ):
        """HMC iteration (when ``t <= t_max``), then one denoising step to ``t_next``."""
        if t <= self.t_max + _TIME_TOLERANCE:
            state = self.hmc_iteration(state, t, denoise, generator)
        return self._denoising.step(state, t, t_next, denoise, generator)

    def __repr__(self) -> str:
        return (
            f"HMCSampler(dt0={self.dt0}, n_leapfrog={self.n_leapfrog}, t_max={self.t_max}, "
            f"update={self.update!r}, pos_schedule={self.pos_schedule!r}, "
            f"el_schedule={self.el_schedule!r}, t_start={self.t_start}, t_end={self.t_end})"
        )
