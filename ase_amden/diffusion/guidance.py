"""Classifier-free guidance around the network call (AMDEN eq. 16).

``eps' = (1 + w) eps(x, y) - w eps(x, null)``; the unconditional call uses the null property
embedding (``property_mask`` all False).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ase_amden.random_streams import RandomStream

__all__ = ["GuidedDenoiser", "combine_guidance"]


def combine_guidance(conditional: Tensor, unconditional: Tensor, guidance: float) -> Tensor:
    """Return ``(1 + w) conditional - w unconditional`` for guidance weight ``w``.

    >>> import torch
    >>> combine_guidance(torch.tensor([2.0]), torch.tensor([1.0]), 1.0)
    tensor([3.])
    """
    return (1.0 + guidance) * conditional - guidance * unconditional


class GuidedDenoiser:
    """A :class:`~ase_amden.models.Denoiser` with targets and guidance bound: a ``DenoiseFn``.

    With guidance on, the conditional and unconditional passes go through the network as one
    batch of doubled size (the copies are separate systems, so they do not interact). A
    self-conditioning model (``model.config.self_condition``) is given the clean positions
    implied by its previous prediction, from the second call on.

    Parameters
    ----------
    model
        The denoiser (``forward(positions, elements, cell, system_idx, t, properties,
        property_mask, step_size)``).
    properties
        ``(B, P)`` normalised target values, or None for an unconditional model/call.
    property_mask
        ``(B, P)`` bool, True where a target is given; None means none is given.
    guidance
        Guidance weight ``w >= 0``; 0 is the plain conditional prediction.
    shortcut
        True for shortcut models: a missing ``step_size`` is passed as 0 (the ordinary
        prediction). Other models get no step size.
    generator
        Passed to the model for its ``"random"`` null embedding (None: not passed).

    """

    def __init__(
        self,
        model: nn.Module,
        properties: Tensor | None = None,
        property_mask: Tensor | None = None,
        guidance: float = 0.0,
        *,
        shortcut: bool = False,
        generator: RandomStream = None,
    ) -> None:
        if guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {guidance}")
        self.model = model
        self.properties = properties
        self.property_mask = property_mask
        self.guidance = float(guidance)
        self.shortcut = shortcut
        self.generator = generator
        #: Largest absolute position output so far (NaN stays NaN); checked after sampling.
        self.largest_output = 0.0
        config = getattr(model, "config", None)
        self.self_condition = bool(getattr(config, "self_condition", False))
        #: Clean positions implied by the last prediction (self-conditioning models), Å.
        self.previous_clean: Tensor | None = None

    @property
    def is_guided(self) -> bool:
        """True when an unconditional pass is needed (``w > 0`` and some target given)."""
        return (
            self.guidance > 0
            and self.property_mask is not None
            and bool(self.property_mask.any())
        )

    def __call__(
        self,
        positions: Tensor,
        elements: Tensor,
        cell: Tensor,
        system_idx: Tensor,
        t: Tensor,
        step_size: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Guided noise prediction ``(eps_x (N, 3), eps_e (N, C))``."""
        if self.shortcut and step_size is None:
            step_size = torch.zeros_like(t)
        if not self.shortcut:
            step_size = None
        previous = self.previous_clean
        if previous is not None and previous.shape != positions.shape:
            previous = None
        if not self.is_guided:
            out = self._model(
                positions, elements, cell, system_idx, t, self.properties, self.property_mask,
                step_size, previous,
            )
        else:
            out = self._doubled_call(positions, elements, cell, system_idx, t, step_size,
                                     previous)
        if self.self_condition:
            self.previous_clean = self.model.clean_estimate(positions, out[0].detach(),
                                                            system_idx, t)
        if out[0].numel():
            largest = float(out[0].detach().abs().max())
            self.largest_output = (largest if not largest <= self.largest_output
                                   else self.largest_output)
        return out

    def _model(self, positions, elements, cell, system_idx, t, properties, mask, step_size,
               previous=None):
        extra = {} if self.generator is None else {"generator": self.generator}
        if previous is not None:
            extra["previous_clean"] = previous
        return self.model(
            positions, elements, cell, system_idx, t,
            properties=properties, property_mask=mask, step_size=step_size, **extra,
        )

    def _doubled_call(self, positions, elements, cell, system_idx, t, step_size, previous):
        n, b = positions.shape[0], cell.shape[0]
        mask = self.property_mask
        out_x, out_e = self._model(
            torch.cat([positions, positions]),
            torch.cat([elements, elements]),
            torch.cat([cell, cell]),
            torch.cat([system_idx, system_idx + b]),
            torch.cat([t, t]),
            torch.cat([self.properties, self.properties]),
            torch.cat([mask, torch.zeros_like(mask)]),
            None if step_size is None else torch.cat([step_size, step_size]),
            None if previous is None else torch.cat([previous, previous]),
        )
        return (
            combine_guidance(out_x[:n], out_x[n:], self.guidance),
            combine_guidance(out_e[:n], out_e[n:], self.guidance),
        )
