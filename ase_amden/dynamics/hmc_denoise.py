"""Batched HMC on the noise energy of an energy-based denoiser (HMC denoising, AMDEN eq. 18-24)."""

from __future__ import annotations

from dataclasses import replace

import torch

from ase_amden.dynamics.hmc_kernel import HMCStepResult, hmc_step
from ase_amden.models.geometry import wrap_positions
from ase_amden.random_streams import RandomStream, SystemStreams


def hmc_denoise_step(
    model: torch.nn.Module,
    positions: torch.Tensor,
    elements: torch.Tensor,
    cell: torch.Tensor,
    system_idx: torch.Tensor,
    t: torch.Tensor,
    *,
    timestep: float | torch.Tensor,
    n_leapfrog: int = 15,
    properties: torch.Tensor | None = None,
    property_mask: torch.Tensor | None = None,
    generator: RandomStream = None,
) -> HMCStepResult:
    r"""One HMC iteration on the positions of a batch of structures at fixed ``t``.

    Samples :math:`\exp(-\hat E(x, t, y))` (``kT = 1``, unit masses, momenta
    :math:`p \sim N(0, I)`) with the noise energy :math:`\hat E` of an energy-based
    :class:`~ase_amden.models.Denoiser`; forces are :math:`-\nabla_X \hat E` by
    autograd. Elements, cells, ``t`` and targets are held fixed. Every structure is
    accepted or rejected on its own. The returned positions are wrapped into their
    cells. Works under :func:`torch.no_grad` (gradients are enabled inside).

    AMDEN uses, before each denoising step with ``t <= 0.5``,
    ``timestep = sigma_x(t) * dt0`` with ``dt0 = 0.4`` (Si, SiO2) or ``0.2``
    (multi-element glass) and ``n_leapfrog = 15``, e.g.
    ``timestep = PositionSchedule(card.sigma_x_max).sigma(t) * dt0``.

    Parameters
    ----------
    model
        Energy-based denoiser (``model.config.energy`` True) providing
        ``model.energy(positions, elements, cell, system_idx, t, properties,
        property_mask) -> (B,)``.
    positions
        ``(N, 3)`` noisy positions of all structures, Å, in the model's dtype/device.
    elements
        ``(N, n_classes)`` noisy element channel.
    cell
        ``(B, 3, 3)`` cells, rows are lattice vectors, Å.
    system_idx
        ``(N,)`` long, structure of each atom, values in ``[0, B)``.
    t
        ``(B,)`` diffusion time of each structure, ``0 < t <= 1``.
    timestep
        Scalar or ``(B,)`` velocity-Verlet timestep, Å (unit mass, noise-energy units).
    n_leapfrog
        Velocity-Verlet steps per proposal.
    properties, property_mask
        ``(B, P)`` normalised targets and their mask, as for the model (``None``:
        unconditional).
    generator
        torch generator on the device of ``positions`` (``None``: torch's global one).
        It also fixes the draw of a ``"random"`` null embedding: one draw per
        iteration, the same for every energy call in it, so the Hamiltonian is one
        function during the proposal.

    Returns
    -------
    HMCStepResult
        ``positions`` (wrapped), ``momenta``, ``energy`` (noise energy per structure),
        ``forces``, ``accepted`` ``(B,)`` bool (``result.acceptance_rate`` is the
        accepted fraction), ``proposed_energy``, ``delta_h``.

    """
    n_systems = cell.shape[0]
    random_null = getattr(getattr(model, "config", None), "null_embedding", "") == "random"
    if random_null:  # one null embedding per iteration: the same draw at every leapfrog step
        if isinstance(generator, SystemStreams):
            null_seeds = generator.draw_seeds()
        else:
            null_seed = int(torch.randint(2**62, (1,), generator=generator,
                                          device=positions.device))

    def null_draw() -> RandomStream:
        if not random_null:
            return None
        if isinstance(generator, SystemStreams):
            return SystemStreams(null_seeds, positions.device)
        return torch.Generator(device=positions.device).manual_seed(null_seed)

    def energy_and_forces(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            energy = model.energy(
                x, elements, cell, system_idx, t, properties, property_mask, generator=null_draw()
            )
            (gradient,) = torch.autograd.grad(energy.sum(), x)
        return energy.detach(), -gradient

    result = hmc_step(
        positions,
        energy_and_forces,
        masses=1.0,
        kT=1.0,
        timestep=timestep,
        n_leapfrog=n_leapfrog,
        system_idx=system_idx,
        n_systems=n_systems,
        generator=generator,
    )
    return replace(result, positions=wrap_positions(result.positions, cell, system_idx))
