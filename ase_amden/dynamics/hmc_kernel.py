"""One Hamiltonian Monte Carlo iteration for a batch of independent systems.

This is the single implementation of the HMC algorithm in ase_amden. The ASE face
(:class:`ase_amden.dynamics.HMC`) calls it with one system and numpy data converted
to float64 tensors at its edge; HMC denoising
(:func:`ase_amden.dynamics.hmc_denoise_step`) calls it with many structures
concatenated into one atom set, each atom tagged with the index of its system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ase_amden.random_streams import RandomStream, rand, randn

#: ``energy_and_forces(positions) -> (energy, forces)``: positions ``(N, 3)``,
#: energy ``(B,)`` (one value per system), forces ``(N, 3)`` = minus the gradient.
EnergyAndForces = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class HMCStepResult:
    """Outcome of one HMC iteration (see :func:`hmc_step`).

    Attributes
    ----------
    positions
        ``(N, 3)`` positions after the iteration: the proposal for accepted systems,
        the starting positions (bit for bit) for rejected ones.
    momenta
        ``(N, 3)`` momenta belonging to ``positions``: the final leapfrog momenta for
        accepted systems, the freshly drawn momenta for rejected ones.
    energy
        ``(B,)`` potential energy at ``positions``.
    forces
        ``(N, 3)`` forces at ``positions``.
    accepted
        ``(B,)`` bool, True where the proposal was accepted.
    proposed_energy
        ``(B,)`` potential energy at the end of the leapfrog trajectory.
    delta_h
        ``(B,)`` change of the Hamiltonian ``H_new - H_old`` along the trajectory
        (energy units; zero for an exact integrator).

    """

    positions: torch.Tensor
    momenta: torch.Tensor
    energy: torch.Tensor
    forces: torch.Tensor
    accepted: torch.Tensor
    proposed_energy: torch.Tensor
    delta_h: torch.Tensor

    @property
    def acceptance_rate(self) -> float:
        """Fraction of systems whose proposal was accepted."""
        return float(self.accepted.to(torch.float64).mean())


def _per_system(value: float | torch.Tensor, n_systems: int, like: torch.Tensor, name: str):
    """Broadcast a scalar or ``(B,)`` quantity to a ``(B,)`` tensor."""
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if tensor.ndim == 0:
        tensor = tensor.expand(n_systems)
    if tensor.shape != (n_systems,):
        raise ValueError(
            f"{name} must be a scalar or have shape ({n_systems},) (one per system), "
            f"got shape {tuple(tensor.shape)}"
        )
    return tensor


def _kinetic_energy(momenta, masses, system_idx, n_systems):
    """Per-system kinetic energy ``sum p^2 / 2m``, shape ``(B,)``."""
    per_atom = 0.5 * (momenta**2).sum(dim=1) / masses
    return torch.zeros(n_systems, dtype=momenta.dtype, device=momenta.device).index_add_(
        0, system_idx, per_atom
    )


def hmc_step(
    positions: torch.Tensor,
    energy_and_forces: EnergyAndForces,
    *,
    masses: float | torch.Tensor,
    kT: float | torch.Tensor,
    timestep: float | torch.Tensor,
    n_leapfrog: int = 15,
    system_idx: torch.Tensor | None = None,
    n_systems: int | None = None,
    generator: RandomStream = None,
    energy: torch.Tensor | None = None,
    forces: torch.Tensor | None = None,
) -> HMCStepResult:
    r"""One HMC iteration for a batch of independent systems.

    For every system: draw momenta :math:`p \sim N(0, m\,kT)`, integrate
    ``n_leapfrog`` velocity-Verlet steps on the potential, then accept the end point
    with probability :math:`\min(1, \exp(-(H_{new} - H_{old}) / kT))`, where
    :math:`H = E + \sum p^2 / 2m`. Rejected systems keep their starting positions.
    The chain leaves :math:`\exp(-E/kT)` invariant for any timestep; a timestep that
    is too large only lowers the acceptance rate.

    Units are whatever the caller uses consistently (ASE: Å, eV, amu, ASE time; HMC
    denoising: Å, noise-energy units with ``kT = 1``, unit masses).

    Parameters
    ----------
    positions
        ``(N, 3)`` atom positions of all systems, concatenated.
    energy_and_forces
        Callback ``positions (N, 3) -> (energy (B,), forces (N, 3))``. It must not
        depend on hidden state other than the positions it is given.
    masses
        Scalar or ``(N,)`` masses.
    kT
        Scalar or ``(B,)`` temperature in energy units.
    timestep
        Scalar or ``(B,)`` velocity-Verlet timestep.
    n_leapfrog
        Number of velocity-Verlet steps per proposal (>= 1).
    system_idx
        ``(N,)`` long, the system of each atom, values in ``[0, B)``. ``None``: one system.
    n_systems
        ``B``; ``None``: ``system_idx.max() + 1``.
    generator
        Source of the momenta and the acceptance draws; it must live on the device
        of ``positions``. ``None``: torch's global generator.
    energy, forces
        ``(B,)`` energy and ``(N, 3)`` forces at ``positions`` when already known
        (saves one call of ``energy_and_forces``); give both or neither.

    Returns
    -------
    HMCStepResult
        New positions and momenta, energies, forces, acceptance mask and ``delta_h``.

    """
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {tuple(positions.shape)}")
    if n_leapfrog < 1:
        raise ValueError(f"n_leapfrog must be at least 1, got {n_leapfrog}")
    if (energy is None) != (forces is None):
        raise ValueError("give both energy and forces of the starting positions, or neither")
    n_atoms = positions.shape[0]
    device = positions.device
    if system_idx is None:
        system_idx = torch.zeros(n_atoms, dtype=torch.long, device=device)
    if system_idx.shape != (n_atoms,):
        raise ValueError(f"system_idx must have shape ({n_atoms},), got {tuple(system_idx.shape)}")
    if n_systems is None:
        n_systems = int(system_idx.max()) + 1 if n_atoms else 0
    positions = positions.detach()
    kT = _per_system(kT, n_systems, positions, "kT")
    dt = _per_system(timestep, n_systems, positions, "timestep")[system_idx, None]
    masses = torch.as_tensor(masses, dtype=positions.dtype, device=device).expand(n_atoms)

    if energy is None:
        energy, forces = energy_and_forces(positions)
    energy = energy.detach()
    forces = forces.detach()

    like = {"dtype": positions.dtype, "device": device}
    noise = randn(positions.shape, generator, rows=system_idx, **like)
    momenta = noise * torch.sqrt(masses * kT[system_idx])[:, None]
    h_old = energy + _kinetic_energy(momenta, masses, system_idx, n_systems)

    x, p, f = positions, momenta, forces
    for _ in range(n_leapfrog):
        p = p + 0.5 * dt * f
        x = x + dt * p / masses[:, None]
        e, f = energy_and_forces(x)
        e, f = e.detach(), f.detach()
        p = p + 0.5 * dt * f
    h_new = e + _kinetic_energy(p, masses, system_idx, n_systems)

    delta_h = h_new - h_old
    uniform = rand((n_systems,), generator, **like)
    log_u = torch.log(uniform)
    accepted = log_u < -delta_h / kT  # NaN in delta_h compares False: rejected
    keep = accepted[system_idx, None]
    return HMCStepResult(
        positions=torch.where(keep, x, positions),
        momenta=torch.where(keep, p, momenta),
        energy=torch.where(accepted, e, energy),
        forces=torch.where(keep, f, forces),
        accepted=accepted,
        proposed_energy=e,
        delta_h=delta_h,
    )
