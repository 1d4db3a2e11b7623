"""The self-description every trained model carries (stored in its checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
        ``"eps"`` (noise prediction, sde/ode/langevin/hmc samplers) or
        ``"flow"`` (velocity prediction, flow sampler).
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

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as stored in checkpoints and JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return cls(**data)
