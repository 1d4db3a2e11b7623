"""Shortcut sampler: few deterministic steps of a model that knows its step size (AMShortcut).

A shortcut model takes the step size ``d`` as an input and moves a sample by
``x_{t-d} = x_t - d u(x_t, t, d)``, trained so that two steps of size ``d`` equal one of
size ``2d`` (AMShortcut). Good structures come in 1-10 steps. Optionally the last part of
the path, where the local order is made, is taken in stochastic steps instead (``tail``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ase_amden.diffusion.flow import flow_noised_elements
from ase_amden.diffusion.samplers import (
    Sampler,
    ancestral_update,
    ddim_update,
    register_sampler,
)
from ase_amden.diffusion.schedules import NoiseSchedule
from ase_amden.random_streams import RandomStream

__all__ = ["ShortcutSampler"]

_OBJECTIVES = ("eps", "flow")
_GRIDS = ("uniform", "halving")


@register_sampler
class ShortcutSampler(Sampler):
    """Deterministic shortcut steps ``x_{t-d} = x_t - d u(x_t, t, d)``, AMShortcut.

    The times are ``steps + 1`` evenly spaced points from ``t_start`` to 0; each step calls
    the network once with ``step_size = d = t - t'``. How ``u`` comes from the network
    output is that of the shortcut loss (:func:`ase_amden.training.shortcut_loss`):

    * ``objective="eps"``: the probability-flow / DDIM update (AMDEN eq. 6-7 as an ODE) with the
      predicted noise, ``X' = X - sigma_x_max d eps_X`` and
      ``E' = alpha_e(t') E0 + sigma_e(t') eps_E``, ``E0 = (E - sigma_e(t) eps_E) / alpha_e(t)``;
    * ``objective="flow"``: ``u = -v``, i.e. ``x' = x + d v`` (flow time ``s = 1 - t``).

    Needs a model trained with the shortcut loss (``ModelCard.shortcut``).

    Parameters
    ----------
    objective
        ``ModelCard.objective`` of the model: ``"eps"`` or ``"flow"``.
    pos_schedule, el_schedule
        Schedules of the model.
    t_start
        First time (default 0.99 for ``"eps"``, where ``alpha_e > 0``; 1.0 for ``"flow"``,
        the noise end of the flow path).
    grid
        ``"uniform"``: ``steps`` equal steps; ``"halving"``: the times ``t_start 2^-k``,
        ``k < steps``, then 0, i.e. steps of ``t_start`` times 1/2, 1/4, ... (the step
        sizes the shortcut loss trains), the last two equal: few steps spent where the
        noise is large. Measured on ``a-Si-shortcut`` (pretrained README): better at 3-5
        steps, worse from 10.
    tail
        Time below which the sampler takes stochastic steps (0: none, the AMShortcut
        sampler). The first ``head_steps`` shortcut steps go evenly from ``t_start`` to
        ``tail``; the other ``steps - head_steps`` are ancestral steps
        (:func:`~ase_amden.diffusion.ancestral_update`) of the instantaneous prediction
        (step size 0) on the grid ``tail (1 - k/n)^2``, dense where the noise is small.
        With ``steps <= head_steps`` the grid is the even one, and only steps that start
        at or below ``tail`` are stochastic (none for one or two steps).
        Fresh noise lets later steps undo the errors of earlier ones, as the reverse SDE
        does against its ODE. ``"eps"`` models only.
    head_steps
        Shortcut steps before ``tail`` (used only when ``tail > 0``).

    Measured on ``a-SiO2-shortcut`` (8 held-out structures,
    ``benchmarks/results/steps_vs_quality_a-SiO2-shortcut_tail.md``): with ``tail=0.3``
    (0.45 Å of noise) 5 / 8 / 10 network calls give RDF RMSD 0.70 / 0.50 / 0.46, against
    1.22 / - / 0.83 without a tail and 0.48 for 200 reverse-SDE steps: the large shortcut
    steps lose little, the deterministic small ones lose much. On ``a-Si-shortcut`` the
    tail is worse than none (10 steps: 0.51 against 0.35), as that model's reverse SDE is
    worse than its ODE below 100 steps.

    """

    name = "shortcut"
    objectives = _OBJECTIVES
    supports_inpainting = False  # its noising path is not the position schedule
    supports_observables = False
    default_steps = 4

    def __init__(
        self,
        *,
        objective: str = "eps",
        pos_schedule: NoiseSchedule | None = None,
        el_schedule: NoiseSchedule | None = None,
        t_start: float | None = None,
        grid: str = "uniform",
        tail: float = 0.0,
        head_steps: int = 2,
    ) -> None:
        if grid not in _GRIDS:
            raise ValueError(f"grid must be one of {_GRIDS}, got {grid!r}")
        if objective not in _OBJECTIVES:
            raise ValueError(f"objective must be 'eps' or 'flow', got {objective!r}")
        if t_start is None:
            t_start = 1.0 if objective == "flow" else 0.99
        if objective == "flow" and t_start != 1.0:
            raise ValueError(
                f"a flow shortcut model starts from noise at t_start = 1, got {t_start}"
            )
        super().__init__(
            pos_schedule=pos_schedule, el_schedule=el_schedule, t_start=t_start, t_end=0.0
        )
        if tail:
            if not 0.0 < tail < self.t_start:
                raise ValueError(f"tail must lie between 0 and t_start={self.t_start}, "
                                 f"got {tail}")
            if objective == "flow":
                raise ValueError("a stochastic tail needs the diffusion's forward process, "
                                 "which a flow shortcut model does not have; use tail=0")
            if grid != "uniform":
                raise ValueError("tail sets its own grid; use it with grid='uniform'")
            if isinstance(head_steps, bool) or int(head_steps) != head_steps or head_steps < 1:
                raise ValueError(f"head_steps must be an integer >= 1, got {head_steps}")
        self.objective = objective
        self.grid = grid
        self.tail = float(tail)
        self.head_steps = int(head_steps)

    @classmethod
    def from_card(cls, card, **options) -> ShortcutSampler:
        """Build the sampler for a model: schedules and objective come from ``card``."""
        return super().from_card(card, objective=card.objective, **options)

    @classmethod
    def incompatibility(cls, card) -> str | None:
        """Shortcut sampling needs a model trained with the shortcut loss."""
        if not card.shortcut:
            return (
                "the model was trained without the shortcut loss (card.shortcut is False), "
                "so it does not know its step size; train it with shortcut=True, or sample it "
                "deterministically with 'ode' (or 'flow' for a flow model)"
            )
        return super().incompatibility(card)

    def time_grid(self, steps: int) -> torch.Tensor:
        """Decreasing times from ``t_start`` to 0.

        ``steps`` equal steps, halving ones, or shortcut steps to ``tail`` and a grid dense
        at small noise below it.
        """
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        n = steps - self.head_steps
        if self.tail and n >= 1:
            head = torch.linspace(self.t_start, self.tail, self.head_steps + 1,
                                  dtype=torch.float64)
            below = torch.linspace(1.0, 0.0, n + 1, dtype=torch.float64) ** 2 * self.tail
            return torch.cat([head, below[1:]])
        if self.grid == "uniform":
            return super().time_grid(steps)
        halves = self.t_start * 0.5 ** torch.arange(steps, dtype=torch.float64)
        return torch.cat([halves, halves.new_zeros(1)])

    def noised_known_elements(
        self, elements: Tensor, t: float, generator: RandomStream,
        system_idx: Tensor | None = None,
    ) -> Tensor:
        """Put a fixed element channel where the model expects it at ``t``."""
        if self.objective == "flow":
            return flow_noised_elements(
                elements, t, float(self.el_schedule.sigma(1.0)), generator, system_idx
            )
        return super().noised_known_elements(elements, t, generator, system_idx)

    def step(self, state, t, t_next, denoise, generator):
        """One shortcut step of size ``d = t - t_next``, or an ancestral step below ``tail``."""
        like = state.positions
        tb = torch.full((state.n_systems,), t, dtype=like.dtype, device=like.device)
        if t <= self.tail * (1.0 + 1e-9):
            eps_x, eps_e = denoise(state.positions, state.elements, state.cell,
                                   state.system_idx, tb, step_size=torch.zeros_like(tb))
            idx = state.system_idx
            return (
                ancestral_update(self.pos_schedule, state.positions, eps_x, t, t_next,
                                 generator, idx),
                ancestral_update(self.el_schedule, state.elements, eps_e, t, t_next,
                                 generator, idx),
            )
        d = t - t_next
        out_x, out_e = denoise(
            state.positions, state.elements, state.cell, state.system_idx, tb,
            step_size=torch.full_like(tb, d),
        )
        if self.objective == "flow":
            return state.positions + d * out_x, state.elements + d * out_e
        return (
            ddim_update(self.pos_schedule, state.positions, out_x, t, t_next),
            ddim_update(self.el_schedule, state.elements, out_e, t, t_next),
        )

    def __repr__(self) -> str:
        return (
            f"ShortcutSampler(objective={self.objective!r}, pos_schedule={self.pos_schedule!r}, "
            f"el_schedule={self.el_schedule!r}, t_start={self.t_start}, grid={self.grid!r}, "
            f"tail={self.tail}, head_steps={self.head_steps})"
        )
