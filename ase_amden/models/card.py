"""The self-description every trained model carries (stored in its checkpoint)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ase_amden.errors import AmdenError, UnknownNameError, unknown_name

#: Version of the checkpoint layout; a checkpoint with another value is refused.
CHECKPOINT_FORMAT = 1


@dataclass
class ModelCard:
    """Everything needed to use a trained model without its training script.

    Attributes
    ----------
    name
        Short model name, e.g. ``"a-Si"``.
    elements
        Element vocabulary (chemical symbols). The element channel has
        ``len(elements) + 1`` classes; the last one is the ghost.
    model_config
        Keyword arguments of :class:`ase_amden.models.DenoiserConfig`.
    rho_max
        Ghost density, atoms/Å^3 (``None``: the model was trained without ghosts).
    property_names, property_units
        Names and units of the conditioning properties, in model order.
    property_mean, property_std
        Normalisation applied to each property before it enters the network
        (``y_norm = (y - mean) / std``), in the units above.
    sigma_x_max
        Largest position noise, Å (SPEC section 3).
    sigma_e_max
        Largest element noise (dimensionless).
    t_min, t_max
        Training time range.
    objective
        ``"eps"`` (noise prediction: sde, ode, langevin samplers; hmc when
        ``energy``) or ``"flow"`` (velocity prediction: flow sampler); a
        ``shortcut`` model of either objective also takes the shortcut sampler.
    energy
        True for the energy-based variant (SPEC section 4).
    shortcut
        True when trained with the shortcut loss (step-size input).
    data_hash
        SHA-256 of the training data (positions, numbers, cells, properties).
    training
        Training hyperparameters and history (free-form).
    package_version
        ``ase_amden.__version__`` that wrote the checkpoint.

    """

    name: str
    elements: list[str]
    model_config: dict[str, Any]
    rho_max: float | None = None
    property_names: list[str] = field(default_factory=list)
    property_units: list[str] = field(default_factory=list)
    property_mean: list[float] = field(default_factory=list)
    property_std: list[float] = field(default_factory=list)
    sigma_x_max: float = 1.5
    sigma_e_max: float = 1.5
    t_min: float = 1e-3
    t_max: float = 0.999
    objective: str = "eps"
    energy: bool = False
    shortcut: bool = False
    data_hash: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    package_version: str = ""
    format: int = CHECKPOINT_FORMAT

    @property
    def n_classes(self) -> int:
        """Width of the element channel: the elements plus the ghost class."""
        return len(self.elements) + 1

    @property
    def ghost_index(self) -> int:
        """Index of the ghost class in the element channel."""
        return len(self.elements)

    def normalise_targets(
        self, targets: Mapping[str, float] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalise target properties the way the network saw them in training.

        Parameters
        ----------
        targets
            ``{name: value}`` in the units of :attr:`property_units`; any subset of
            :attr:`property_names` (None: no targets).

        Returns
        -------
        values, mask
            ``(P,)`` float64 ``(y - mean) / std`` in model order (0 where not given) and
            ``(P,)`` bool, True where a target is given (``P = len(property_names)``).

        Raises
        ------
        UnknownNameError
            For a name that is not a property of the model (the message lists them).
        AmdenError
            For a value that is not finite.

        Examples
        --------
        >>> card = ModelCard(name="toy", elements=["Si"], model_config={},
        ...                  property_names=["shear_modulus", "ring_size"],
        ...                  property_mean=[30.0, 6.0], property_std=[2.0, 0.5])
        >>> values, mask = card.normalise_targets({"shear_modulus": 34.0})
        >>> values.tolist(), mask.tolist()
        ([2.0, 0.0], [True, False])

        """
        targets = dict(targets or {})
        names = list(self.property_names)
        values = np.zeros(len(names))
        mask = np.zeros(len(names), dtype=bool)
        for name, value in targets.items():
            if name not in names:
                if not names:
                    raise UnknownNameError(
                        f"unknown target {name!r}: model {self.name!r} was trained without "
                        "properties and cannot be conditioned; give no targets"
                    )
                raise unknown_name("target property", name, names)
            value = float(value)
            if not math.isfinite(value):
                raise AmdenError(f"target {name!r} must be finite, got {value}")
            i = names.index(name)
            values[i] = (value - self.property_mean[i]) / self.property_std[i]
            mask[i] = True
        return values, mask

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as stored in checkpoints and JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return cls(**data)
