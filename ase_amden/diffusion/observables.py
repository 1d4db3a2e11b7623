"""Guidance of a sampler by a measured observable: S(q) or g(r) (SPEC section 6 extension).

At every network call the clean structure predicted by the network,
``x0 = x - sigma(t) eps`` (variance-exploding positions, ``alpha = 1``), is moved down the
gradient of the misfit ``E = N sum (F_calc - F_meas)^2 / sum (F_meas - 1)^2`` (``N`` atoms,
``F`` the computed and measured S(q) or g(r)): ``x0' = x0 - eta(t) grad E`` with
``eta(t) = strength (1 - t)`` (Å^2), and the noise prediction is rebuilt from it,
``eps' = (x - x0') / sigma(t)``. A reverse step moves ``x`` towards ``x0`` by a fraction
``~ 2 dt / t``, so the pull grows as ``t -> 0`` and vanishes at the noisy start where ``x0``
means little. Each atom's shift is capped at ``max_shift`` per call.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ase_amden.analysis.scattering import ScatteringSetup
from ase_amden.diffusion.schedules import NoiseSchedule

__all__ = ["ObservableGuidance"]


class ObservableGuidance:
    """A ``DenoiseFn`` whose position output is steered towards a measured observable.

    Parameters
    ----------
    denoise
        The wrapped ``DenoiseFn`` (its ``properties`` and ``property_mask`` stay reachable).
    setup
        The measured curve and how to compute it.
    schedule
        Position schedule of the model (``sigma(t)``, Å).
    strength
        ``eta`` at ``t = 0``, Å^2.
    max_shift
        Largest guidance shift of one atom's predicted position per call, Å.

    """

    def __init__(self, denoise, setup: ScatteringSetup, schedule: NoiseSchedule,
                 strength: float = 0.05, max_shift: float = 0.1) -> None:
        self.denoise = denoise
        self.setup = setup
        self.schedule = schedule
        self.strength = float(strength)
        self.max_shift = float(max_shift)
        #: ``(N,)`` species index of each atom of the current batch (set by the caller).
        self.species: Tensor | None = None

    def misfit_gradient(self, positions: Tensor, cell: Tensor, system_idx: Tensor) -> Tensor:
        """Gradient ``(N, 3)`` of the misfit ``E`` with respect to ``positions``, 1/Å."""
        with torch.enable_grad():
            x = positions.detach().requires_grad_(True)
            computed = self.setup(x, self.species, cell, system_idx)
            y = torch.as_tensor(self.setup.y, dtype=x.dtype, device=x.device)
            reference = ((y - 1.0) ** 2).sum()
            n_atoms = torch.bincount(system_idx, minlength=cell.shape[0]).to(x.dtype)
            energy = (n_atoms * ((computed - y) ** 2).sum(dim=-1) / reference).sum()
            (grad,) = torch.autograd.grad(energy, x)
        return grad

    def __call__(self, positions, elements, cell, system_idx, t, step_size=None):
        """Noise prediction with the position channel steered by the observable."""
        eps_x, eps_e = self.denoise(positions, elements, cell, system_idx, t, step_size)
        time = float(t[0])
        sigma = float(self.schedule.sigma(time))
        x0 = positions - sigma * eps_x
        shift = self.strength * (1.0 - time) * self.misfit_gradient(x0, cell, system_idx)
        norm = torch.linalg.norm(shift, dim=-1, keepdim=True)
        shift = shift * torch.clamp(self.max_shift / norm.clamp(min=1e-12), max=1.0)
        return (positions - (x0 - shift)) / sigma, eps_e

    def __getattr__(self, name):
        # properties, property_mask, ... of the wrapped denoiser
        return getattr(self.__dict__["denoise"], name)
