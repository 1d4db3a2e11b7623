"""The noise energy of an energy-based diffusion model as an ASE calculator."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ase_amden.errors import (
    CheckpointError,
    InvalidStructureError,
    SamplingError,
    UnknownNameError,
)
from ase_amden.models.card import ModelCard


class NoiseEnergyCalculator(Calculator):
    r"""ASE calculator for the noise energy :math:`\hat E(x, t, y)` (AMDEN, eq. 18-24).

    The energy is the noise energy of an energy-based denoiser at a fixed diffusion
    time ``t`` and targets ``y``; the forces are :math:`-\nabla_X \hat E` and the stress
    :math:`\sigma = V^{-1} \partial \hat E / \partial \varepsilon` (ASE's sign convention,
    Voigt order xx, yy, zz, yz, xz, xy; positions and cell strained together), both exact
    by autograd through the cell in the periodic graph. :math:`\hat E` is dimensionless
    ("noise energy units", its Boltzmann distribution has ``kT = 1``); ASE treats it as
    eV, so every ASE optimizer and MD class works on it, and
    :class:`ase_amden.dynamics.HMC` with ``kT=1`` samples the model's distribution at
    time ``t``. ``free_energy`` equals ``energy``.

    The element channel fed to the network is the one-hot vector of each atom's
    element scaled by ``alpha_e(t) = cos(pi t / 2)``: the mean of the noised element
    channel at time ``t``. Structures must be periodic in all three directions (the
    cell follows ASE's convention, rows are lattice vectors).

    Parameters
    ----------
    model
        An energy-based :class:`~ase_amden.AmorphousGenerator` (or any object with
        ``.model``, an energy :class:`~ase_amden.models.Denoiser`, and ``.card``, its
        :class:`~ase_amden.models.ModelCard`, e.g. a loaded checkpoint), or the path
        of a checkpoint of an energy-based model.
    t
        Diffusion time, ``0 < t <= 1``. Small ``t`` gives the landscape of nearly
        clean structures.
    targets
        Target properties ``{name: value}`` in the units of ``card.property_units``;
        properties not given are left to the model (null embedding).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``. ``"auto"`` keeps a given model on its
        device and puts a model loaded from a file on CUDA when available. A given
        model is never moved: a copy is made when it lives elsewhere.
    dtype
        ``"float64"`` or ``"float32"`` to evaluate the network in that precision (a copy of
        a given model is made), e.g. float64 for finite-difference checks or tight
        relaxations; None keeps the model's own.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator` (e.g. ``label``).

    Raises
    ------
    CheckpointError
        If the model is not an energy-based one.
    UnknownNameError
        If a target is not a property of the model.

    Examples
    --------
    >>> from ase.optimize import BFGS
    >>> calc = NoiseEnergyCalculator("a-Si-energy.pt", t=0.05)  # doctest: +SKIP
    >>> atoms.calc = calc  # doctest: +SKIP
    >>> BFGS(atoms).run(fmax=0.05)  # doctest: +SKIP

    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    default_parameters: dict[str, Any] = {"t": 0.05, "targets": None}

    def __init__(
        self,
        model: Any,
        *,
        t: float = 0.05,
        targets: Mapping[str, float] | None = None,
        device: str = "auto",
        dtype: str | None = None,
        **kwargs,
    ):
        # imported here: training imports heavier modules than a calculator needs
        from ase_amden.training.distributed import resolve_device

        if dtype not in (None, "float32", "float64"):
            raise ValueError(f"dtype must be 'float32', 'float64' or None, got {dtype!r}")
        self.checkpoint: str | None = None
        if isinstance(model, (str, os.PathLike)):
            from ase_amden.training import load_checkpoint

            loaded = load_checkpoint(model, device=resolve_device(device))
            network, card = loaded.model, loaded.card
            self.checkpoint = os.fspath(model)
        else:
            network, card = model.model, model.card
            current = next(network.parameters()).device
            wanted = current if device == "auto" else resolve_device(device)
            if wanted != current:
                network = copy.deepcopy(network).to(wanted)
        if dtype is not None and next(network.parameters()).dtype != getattr(torch, dtype):
            network = copy.deepcopy(network).to(getattr(torch, dtype))
        if not (card.energy and getattr(network.config, "energy", False)):
            raise CheckpointError(
                f"model {card.name!r} is not energy-based, so it has no noise energy; use an "
                "energy-based checkpoint (trained with ModelCard.energy = True and "
                "DenoiserConfig(energy=True))"
            )
        self.model: torch.nn.Module = network
        self.card: ModelCard = card
        self.device = next(network.parameters()).device
        self.dtype = next(network.parameters()).dtype
        Calculator.__init__(self, t=t, targets=targets, **kwargs)
        self._check_time(t)
        self._normalised_targets(targets)

    def set(self, **kwargs) -> dict[str, Any]:
        """Set ``t`` and/or ``targets``; a change clears the results (a new landscape)."""
        if "t" in kwargs:
            self._check_time(kwargs["t"])
        if "targets" in kwargs:
            self._normalised_targets(kwargs["targets"])
        changed = Calculator.set(self, **kwargs)
        if changed:
            self.reset()
        return changed

    def todict(self, skip_default: bool = False) -> dict[str, Any]:
        """Parameters and the model they apply to.

        ``t``, ``targets``, ``model`` (card name), ``model_hash`` (weights), ``checkpoint``
        (path, when loaded from one) and ``dtype``.
        """
        from ase_amden.provenance import weights_hash

        if getattr(self, "_model_hash", None) is None:
            self._model_hash = weights_hash(self.model)
        return {
            **Calculator.todict(self, skip_default=skip_default),
            "model": self.card.name, "model_hash": self._model_hash,
            "checkpoint": self.checkpoint, "dtype": str(self.dtype).removeprefix("torch."),
        }

    @classmethod
    def pretrained(
        cls,
        name: str,
        t: float = 0.05,
        *,
        targets: Mapping[str, float] | None = None,
        device: str = "auto",
    ) -> NoiseEnergyCalculator:
        """Build a calculator for a pretrained energy-based model shipped with ase_amden.

        Parameters
        ----------
        name
            Name of the pretrained model (see
            :meth:`ase_amden.AmorphousGenerator.pretrained`).
        t, targets, device
            As for the constructor.

        Returns
        -------
        NoiseEnergyCalculator

        """
        from ase_amden.generator import AmorphousGenerator

        generator = AmorphousGenerator.pretrained(name, device=device)
        return cls(generator, t=t, targets=targets, device=device)

    @staticmethod
    def _check_time(t: float) -> None:
        if not 0.0 < float(t) <= 1.0:
            raise ValueError(
                f"the diffusion time t must be in (0, 1] (the noise energy diverges at t = 0), "
                f"got {t}"
            )

    def _normalised_targets(
        self, targets: Mapping[str, float] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(1, P)`` normalised target values and ``(1, P)`` bool mask."""
        values, mask = self.card.normalise_targets(targets)
        return (
            torch.as_tensor(values, dtype=self.dtype, device=self.device).unsqueeze(0),
            torch.as_tensor(mask, device=self.device).unsqueeze(0),
        )

    def _element_channel(self, atoms: Atoms, t: float) -> torch.Tensor:
        """``(N, n_classes)`` one-hot element vectors scaled by ``alpha_e(t)``."""
        vocabulary = {symbol: i for i, symbol in enumerate(self.card.elements)}
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(vocabulary))
        if unknown:
            raise UnknownNameError(
                f"model {self.card.name!r} knows the elements {self.card.elements}, but the "
                f"structure contains {unknown}; use a model trained on these elements"
            )
        index = torch.tensor([vocabulary[s] for s in symbols], device=self.device)
        one_hot = torch.nn.functional.one_hot(index, self.card.n_classes).to(self.dtype)
        alpha = float(self.card.element_schedule().alpha(t))
        return alpha * one_hot

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | tuple[str, ...] = ("energy",),
        system_changes: list[str] = all_changes,
    ) -> None:
        """Compute the noise energy and its exact forces and stress for ``atoms``."""
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        if len(atoms) == 0:
            raise InvalidStructureError("the structure has no atoms")
        if not atoms.pbc.all() or atoms.cell.volume <= 0:
            raise InvalidStructureError(
                "the noise energy is defined for periodic structures: give the atoms a cell "
                "and set atoms.pbc = True"
            )
        t = float(self.parameters.t)
        self._check_time(t)
        properties_tensor, mask = self._normalised_targets(self.parameters.targets)
        options = {"dtype": self.dtype, "device": self.device}
        positions = torch.tensor(atoms.get_positions(), **options).requires_grad_(True)
        cell = torch.tensor(np.asarray(atoms.get_cell()), **options).unsqueeze(0)
        strain = torch.zeros((3, 3), **options).requires_grad_(True)
        system_idx = torch.zeros(len(atoms), dtype=torch.long, device=self.device)
        time = torch.full((1,), t, **options)
        elements = self._element_channel(atoms, t)
        # A "random" null embedding is drawn from a fixed seed, so that the energy is
        # one function of the positions (as optimizers and MD need).
        null_draw = torch.Generator(device=self.device).manual_seed(0)
        with torch.enable_grad():
            # Positions and cell deformed by the symmetric strain (rows are vectors).
            deform = torch.eye(3, **options) + 0.5 * (strain + strain.T)
            energy = self.model.energy(
                positions @ deform, elements, cell @ deform, system_idx, time,
                properties_tensor, mask, generator=null_draw,
            )
            gradient, d_strain = torch.autograd.grad(energy.sum(), (positions, strain))
        value = float(energy.detach()[0])
        if not (np.isfinite(value) and bool(torch.isfinite(gradient).all())):
            raise SamplingError(
                f"the noise energy or its forces are not finite (energy {value}) at t={t}; "
                "check the positions for overlapping atoms, or use a larger t"
            )
        self.results["energy"] = value
        self.results["free_energy"] = value
        self.results["forces"] = -gradient.detach().cpu().numpy().astype(np.float64)
        stress = d_strain.detach().cpu().numpy().astype(np.float64) / atoms.get_volume()
        self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
