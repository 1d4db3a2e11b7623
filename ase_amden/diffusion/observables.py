"""Guidance of a sampler by a measured observable, S(q) or g(r), as by a target property.

At every network call the clean structure predicted by the network,
``x0 = x - sigma(t) eps`` (variance-exploding positions, ``alpha = 1``), is moved down the
misfit ``E = N sum (F_calc - F_meas)^2 / sum (F_meas - 1)^2`` (``N`` atoms, ``F`` the
computed and measured S(q) or g(r)) by a few gradient steps with backtracking (a step is
kept only where it lowers ``E`` of its structure; each atom moves at most ``max_shift`` per
step), giving ``x0*``. The guided prediction is ``x0' = x0 + (1 - t) (x0* - x0)`` (the weight
schedule: nothing at the noisy start, full strength as ``t -> 0``) and the noise prediction
is rebuilt from it, ``eps' = (x - x0') / sigma(t)``. A reverse step moves ``x`` towards
``x0'`` by a fraction ``~ 2 dt / t``, so the pull is strongest at the end.
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
        First gradient step size, Å^2 (adapted per structure by backtracking).
    iterations
        Gradient steps per network call.
    max_shift
        Largest move of one atom per gradient step, Å.

    """

    def __init__(self, denoise, setup: ScatteringSetup, schedule: NoiseSchedule,
                 strength: float = 0.05, max_shift: float = 0.1, iterations: int = 4) -> None:
        self.denoise = denoise
        self.setup = setup
        self.schedule = schedule
        self.strength = float(strength)
        self.max_shift = float(max_shift)
        self.iterations = int(iterations)
        #: ``(N,)`` species index of each atom of the current batch (set by the caller).
        self.species: Tensor | None = None

    def misfit(self, positions: Tensor, cell: Tensor, system_idx: Tensor) -> Tensor:
        """Misfit ``E`` per structure ``(B,)``, differentiable."""
        computed = self.setup(positions, self.species, cell, system_idx)
        y = torch.as_tensor(self.setup.y, dtype=positions.dtype, device=positions.device)
        reference = ((y - 1.0) ** 2).sum()
        n_atoms = torch.bincount(system_idx, minlength=cell.shape[0]).to(positions.dtype)
        return n_atoms * ((computed - y) ** 2).sum(dim=-1) / reference

    def misfit_gradient(self, positions: Tensor, cell: Tensor, system_idx: Tensor) -> Tensor:
        """Gradient ``(N, 3)`` of the summed misfit with respect to ``positions``, 1/Å."""
        with torch.enable_grad():
            x = positions.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.misfit(x, cell, system_idx).sum(), x)
        return grad

    def descend(self, positions: Tensor, cell: Tensor, system_idx: Tensor) -> Tensor:
        """``positions`` after ``iterations`` backtracking gradient steps on the misfit, Å."""
        x = positions.detach()
        step = torch.full((cell.shape[0],), self.strength, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            energy = self.misfit(x, cell, system_idx)
        for _ in range(self.iterations):
            shift = step[system_idx, None] * self.misfit_gradient(x, cell, system_idx)
            norm = torch.linalg.norm(shift, dim=-1, keepdim=True).clamp(min=1e-12)
            trial = x - shift * torch.clamp(self.max_shift / norm, max=1.0)
            with torch.no_grad():
                trial_energy = self.misfit(trial, cell, system_idx)
            better = trial_energy < energy
            x = torch.where(better[system_idx, None], trial, x)
            energy = torch.where(better, trial_energy, energy)
            step = torch.where(better, step * 1.5, step * 0.5)
        return x

    def __call__(self, positions, elements, cell, system_idx, t, step_size=None):
        """Noise prediction with the position channel steered by the observable."""
        eps_x, eps_e = self.denoise(positions, elements, cell, system_idx, t, step_size)
        time = float(t[0])
        sigma = float(self.schedule.sigma(time))
        x0 = positions - sigma * eps_x
        guided = x0 + (1.0 - time) * (self.descend(x0, cell, system_idx) - x0)
        return (positions - guided) / sigma, eps_e

    def __getattr__(self, name):
        # properties, property_mask, ... of the wrapped denoiser
        return getattr(self.__dict__["denoise"], name)
