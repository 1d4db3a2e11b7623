"""The self-description every trained model carries (stored in its checkpoint)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ase_amden.errors import AmdenError, UnknownNameError, unknown_name

if TYPE_CHECKING:
    from ase_amden.diffusion.schedules import NoiseSchedule, PositionSchedule

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
    property_log10
        Per property, True where the network sees ``log10(y)`` (e.g. ``cooling_rate``,
        whose values span decades); such values must be positive.
    property_mean, property_std
        Normalisation applied to each property (after ``log10`` where
        :attr:`property_log10` says so) before it enters the network:
        ``y_norm = (y - mean) / std``.
    property_range
        Per property, ``[min, max]`` of the training values on the network's scale
        (after ``log10``); a target outside it is an extrapolation and warns.
    sigma_x_max
        Largest position noise, Å (AMDEN eq. 3-5).
    sigma_e_max
        Largest element noise (dimensionless).
    t_min, t_max
        Training time range.
    objective
        ``"eps"`` (noise prediction: sde, ode, langevin samplers; hmc when
        ``energy``) or ``"flow"`` (velocity prediction: flow sampler); a
        ``shortcut`` model of either objective also takes the shortcut sampler.
    energy
        True for the energy-based variant (AMDEN eq. 18-24).
    shortcut
        True when trained with the shortcut loss (step-size input).
    sampling
        The sampler this model is meant for and its settings, used when the caller names
        none: ``{"sampler": "langevin", "steps": 400, "options": {"extra_noise": 1.0}}``
        (empty: AMDEN's ``sde`` with its default steps); ``"targets"`` (e.g.
        ``{"cooling_rate": 1.0}``) are the property targets used when the caller gives none.
    fixed_composition
        True for a positions-only model: the element channel is never noised or
        generated; the composition is always given (the network sees its clean
        one-hot).
    data_hash
        SHA-256 of the training data (positions, numbers, cells, properties).
    training
        Training hyperparameters and history (free-form).
    package_version
        ``ase_amden.__version__`` that wrote the checkpoint.
    quality
        Measured quality, ``{metric: value}`` (e.g. ``{"rdf_rmsd": 0.35}``), shown by
        ``ase-amden models``; empty when not measured.

    """

    name: str
    elements: list[str]
    model_config: dict[str, Any]
    rho_max: float | None = None
    property_names: list[str] = field(default_factory=list)
    property_units: list[str] = field(default_factory=list)
    property_mean: list[float] = field(default_factory=list)
    property_std: list[float] = field(default_factory=list)
    property_log10: list[bool] = field(default_factory=list)
    property_range: list[list[float]] = field(default_factory=list)
    sigma_x_max: float = 1.5
    sigma_e_max: float = 1.5
    t_min: float = 1e-3
    t_max: float = 0.999
    objective: str = "eps"
    energy: bool = False
    shortcut: bool = False
    fixed_composition: bool = False
    sampling: dict[str, Any] = field(default_factory=dict)
    data_hash: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    package_version: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
    format: int = CHECKPOINT_FORMAT

    @property
    def n_classes(self) -> int:
        """Width of the element channel: the elements plus the ghost class."""
        return len(self.elements) + 1

    @property
    def ghost_index(self) -> int:
        """Index of the ghost class in the element channel."""
        return len(self.elements)

    def position_schedule(self) -> PositionSchedule:
        """The position noise schedule the model was trained with."""
        from ase_amden.diffusion.schedules import PositionSchedule

        return PositionSchedule(self.sigma_x_max)

    def element_schedule(self) -> NoiseSchedule:
        """The element-channel schedule: AMDEN's cosine one, or none for fixed composition."""
        from ase_amden.diffusion.schedules import CleanElementSchedule, ElementSchedule

        if self.fixed_composition:
            return CleanElementSchedule()
        return ElementSchedule(self.sigma_e_max)

    def is_log10(self, i: int) -> bool:
        """Whether property ``i`` enters the network as ``log10`` of its value."""
        return bool(self.property_log10[i]) if self.property_log10 else False

    def network_scale(self, i: int, value: float) -> float:
        """Property ``i``'s value on the network's scale (``log10`` where the card says).

        Raises :class:`~ase_amden.errors.AmdenError` for a non-finite value, or a value
        ``<= 0`` of a ``log10`` property.
        """
        name = self.property_names[i]
        value = float(value)
        if not math.isfinite(value):
            raise AmdenError(f"target {name!r} must be finite, got {value}")
        if self.is_log10(i):
            if value <= 0:
                unit = self.property_units[i] if self.property_units else ""
                raise AmdenError(
                    f"target {name!r} must be positive (model {self.name!r} conditions on its "
                    f"log10), got {value} {unit}".rstrip()
                )
            return math.log10(value)
        return value

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
            For a value that is not finite (or not positive, for a ``log10`` property).

        Warns
        -----
        UserWarning
            For a value outside the training range (:attr:`property_range`; for cards
            without it, the mean +- 3 standard deviations): the model extrapolates.

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
            i = names.index(name)
            scaled = self.network_scale(i, value)
            self._warn_outside_range(i, value, scaled)
            values[i] = (scaled - self.property_mean[i]) / self.property_std[i]
            mask[i] = True
        return values, mask

    def _warn_outside_range(self, i: int, value: float, scaled: float) -> None:
        if self.property_range:
            low, high = self.property_range[i]
        elif self.property_std:  # cards written before ranges were stored: mean +- 3 std
            low = self.property_mean[i] - 3 * self.property_std[i]
            high = self.property_mean[i] + 3 * self.property_std[i]
        else:
            return
        if low <= scaled <= high:
            return
        if self.is_log10(i):
            low, high = 10.0**low, 10.0**high
        unit = self.property_units[i] if self.property_units else ""
        warnings.warn(
            f"target {self.property_names[i]}={value:g} {unit} is outside the range model "
            f"{self.name!r} was trained on ({low:g} to {high:g} {unit}): the model "
            "extrapolates; check the result",
            UserWarning,
            stacklevel=3,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as stored in checkpoints and JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return cls(**data)
