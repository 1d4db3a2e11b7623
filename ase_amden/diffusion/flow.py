"""Flow-matching sampler: Euler integration of a learned velocity (AMShortcut "material ODE").

Convention (that of :func:`ase_amden.training.flow_matching_loss`): flow time ``s = 1 - t``
runs from noise (``s = 0``, ``t = 1``: positions uniform in the cell, elements
``N(0, sigma_e_max^2)``) to data (``s = 1``, ``t = 0``) along ``x_s = (1 - s) x_noise + s x_data``
(minimum-image interpolation for positions); the network, called at ``t``, predicts the
velocity ``dx/ds``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ase_amden.diffusion.samplers import Sampler, register_sampler
from ase_amden.diffusion.schedules import NoiseSchedule
from ase_amden.random_streams import RandomStream, randn

__all__ = ["FlowSampler", "flow_noised_elements"]


def flow_noised_elements(
    elements: Tensor, t: float, sigma_max: float, generator: RandomStream,
    system_idx: Tensor | None = None,
) -> Tensor:
    """Put a known element channel on the flow path at ``t``: ``t E_noise + (1 - t) E``.

    ``E_noise ~ N(0, sigma_max^2)`` is drawn fresh; ``t = 1 - s`` is the diffusion time.
    """
    noise = randn(elements.shape, generator, dtype=elements.dtype, device=elements.device,
                  rows=system_idx)
    return t * sigma_max * noise + (1.0 - t) * elements


@register_sampler
class FlowSampler(Sampler):
    """Euler integration of a flow-matching model from ``t = 1`` (noise) to ``t = 0`` (data).

    One step from ``t`` to ``t' < t`` is ``x <- x + (t - t') v(x, t)`` on both channels
    (``ds = t - t'``); positions are wrapped after every step by
    :func:`~ase_amden.diffusion.run_sampler`. ``steps`` Euler steps make ``steps`` network
    calls. Needs a model trained with ``objective="flow"``.

    Parameters
    ----------
    pos_schedule, el_schedule
        Schedules of the model (only ``el_schedule.sigma_max``, the element noise scale at
        ``t = 1``, matters here: it sets the prior of the element channel).

    """

    name = "flow"
    objectives = ("flow",)
    supports_inpainting = False  # its noising path is not the position schedule
    supports_observables = False
    default_steps = 200

    def __init__(
        self,
        *,
        pos_schedule: NoiseSchedule | None = None,
        el_schedule: NoiseSchedule | None = None,
    ) -> None:
        super().__init__(
            pos_schedule=pos_schedule, el_schedule=el_schedule, t_start=1.0, t_end=0.0
        )

    def noised_known_elements(
        self, elements: Tensor, t: float, generator: RandomStream,
        system_idx: Tensor | None = None,
    ) -> Tensor:
        """Put a fixed element channel where the flow model expects it at ``t``."""
        return flow_noised_elements(
            elements, t, float(self.el_schedule.sigma(1.0)), generator, system_idx
        )

    def step(self, state, t, t_next, denoise, generator):
        """One Euler step of the learned velocity from ``t`` to ``t_next``."""
        tb = torch.full((state.n_systems,), t, dtype=state.positions.dtype,
                        device=state.positions.device)
        v_x, v_e = denoise(state.positions, state.elements, state.cell, state.system_idx, tb)
        ds = t - t_next
        return state.positions + ds * v_x, state.elements + ds * v_e

    def __repr__(self) -> str:
        return f"FlowSampler(pos_schedule={self.pos_schedule!r}, el_schedule={self.el_schedule!r})"
