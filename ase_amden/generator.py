"""The public face of a trained model: ``AmorphousGenerator.generate() -> list[ase.Atoms]``.

Cells follow ASE's convention throughout: rows are lattice vectors, Å.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.cell import Cell
from ase.data import atomic_masses, atomic_numbers
from ase.formula import Formula
from torch import nn
from tqdm.auto import tqdm

from ase_amden.diffusion.ghosts import node_count
from ase_amden.diffusion.guidance import GuidedDenoiser
from ase_amden.diffusion.rng import RandomLike, seed_from, torch_generator
from ase_amden.diffusion.samplers import SAMPLERS, Sampler, SamplerState, run_sampler
from ase_amden.errors import AmdenError, InvalidStructureError, UnknownNameError, unknown_name
from ase_amden.models.card import ModelCard
from ase_amden.training.batching import AMU_PER_A3_TO_G_PER_CM3

__all__ = ["DEFAULT_MODEL", "PRETRAINED_DIR", "AmorphousGenerator"]

#: Folder of the shipped models, ``<name>.pt`` each.
PRETRAINED_DIR = Path(__file__).parent / "pretrained"
#: The shipped model used when none is named (amorphous Si, 1 K/ps melt-quench data).
DEFAULT_MODEL = "a-Si"

CellLike = Atoms | Cell | np.ndarray | Sequence[float] | Sequence[Sequence[float]] | float
CompositionLike = Mapping[str, int] | str | Sequence[str]

# Smallest cell volume accepted, Å^3.
_MIN_VOLUME = 1e-6


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _parse_cell(cell: CellLike) -> np.ndarray:
    """``(3, 3)`` cell (rows = lattice vectors, Å) from any accepted form, validated."""
    if isinstance(cell, Atoms):
        if not cell.pbc.all():
            raise InvalidStructureError(
                f"the cell must be periodic in all three directions, got pbc={cell.pbc.tolist()}; "
                "set atoms.pbc = True"
            )
        cell = cell.cell
    array = np.asarray(cell.array if isinstance(cell, Cell) else cell, dtype=float)
    if array.ndim == 0:
        array = np.eye(3) * float(array)
    elif array.shape == (3,):
        array = np.diag(array)
    elif array.shape != (3, 3):
        raise InvalidStructureError(
            f"cell must be an edge length, 3 lengths or a 3x3 matrix, got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise InvalidStructureError(f"cell has non-finite entries: {array.tolist()}")
    zero_rows = [i for i in range(3) if np.linalg.norm(array[i]) == 0.0]
    if zero_rows:
        raise InvalidStructureError(
            f"the cell is not periodic along lattice vector(s) {zero_rows} (zero length); "
            "generation needs a fully periodic cell with three nonzero lattice vectors"
        )
    if abs(np.linalg.det(array)) < _MIN_VOLUME:
        raise InvalidStructureError(
            f"the cell has zero volume (its lattice vectors are coplanar): {array.tolist()}; "
            "give three independent lattice vectors"
        )
    return array


def _composition_symbols(composition: CompositionLike, n_atoms: int | None) -> list[str]:
    """Symbols, one per atom, of a composition given as counts, formula or list."""
    if isinstance(composition, str):
        counts = Formula(composition).count()
        unit = sum(counts.values())
        if n_atoms is not None:
            if unit == 0 or n_atoms % unit:
                raise AmdenError(
                    f"n_atoms={n_atoms} is not a whole number of formula units of "
                    f"{composition!r} ({unit} atoms each); give a multiple of {unit}, or "
                    "give composition as counts, e.g. {'Si': 64, 'O': 128}"
                )
            counts = {symbol: count * (n_atoms // unit) for symbol, count in counts.items()}
    elif isinstance(composition, Mapping):
        counts = dict(composition)
        bad = {s: c for s, c in counts.items() if int(c) != c or c < 0}
        if bad:
            raise AmdenError(f"composition counts must be non-negative integers, got {bad}")
    else:
        symbols = list(composition)
        counts = {symbol: symbols.count(symbol) for symbol in dict.fromkeys(symbols)}
    symbols = [symbol for symbol, count in counts.items() for _ in range(int(count))]
    if not symbols:
        raise AmdenError(f"composition {composition!r} holds no atoms")
    if n_atoms is not None and len(symbols) != n_atoms:
        raise AmdenError(
            f"composition {composition!r} has {len(symbols)} atoms but n_atoms={n_atoms}; "
            "give one or make them agree"
        )
    return symbols


class AmorphousGenerator:
    """Generate amorphous structures with a trained denoiser.

    Parameters
    ----------
    model
        The denoiser (:class:`ase_amden.models.Denoiser`); it is put in eval mode on ``device``.
        Its dtype is kept.
    card
        The model card: element vocabulary, property normalisation, noise scales, ``rho_max``.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or a ``torch.device``.

    Examples
    --------
    >>> from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
    >>> from dataclasses import asdict
    >>> config = DenoiserConfig(n_classes=2, hidden=8, n_layers=1, n_vector=2, cutoff=3.0)
    >>> card = ModelCard(name="toy", elements=["Si"], model_config=asdict(config))
    >>> generator = AmorphousGenerator(Denoiser(config), card, device="cpu")
    >>> atoms = generator.generate(cell=6.0, n_atoms=4, steps=2, seed=0, progress=False)[0]
    >>> len(atoms), atoms.info["sampler"]
    (4, 'sde')

    """

    def __init__(self, model: nn.Module, card: ModelCard, device: str | torch.device = "auto"):
        self.device = _resolve_device(device)
        self.model = model.to(self.device).eval()
        self.card = card
        self.dtype = next(model.parameters()).dtype

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "auto"
    ) -> AmorphousGenerator:
        """Load a generator from a checkpoint written by ``ase_amden.training.save_checkpoint``.

        Raises :class:`~ase_amden.errors.CheckpointError` for a file that is not a checkpoint of
        this format.
        """
        from ase_amden.training import load_checkpoint

        resolved = _resolve_device(device)
        loaded = load_checkpoint(path, device=resolved)
        return cls(loaded.model, loaded.card, device=resolved)

    @staticmethod
    def available_pretrained() -> list[str]:
        """Names of the pretrained models shipped in :data:`PRETRAINED_DIR`."""
        return sorted(path.stem for path in PRETRAINED_DIR.glob("*.pt"))

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL,
                   device: str | torch.device = "auto") -> AmorphousGenerator:
        """Load the shipped model ``name`` (``ase_amden/pretrained/<name>.pt``).

        Without a name, the default model :data:`DEFAULT_MODEL` (``"a-Si"``).

        Raises :class:`~ase_amden.errors.UnknownNameError` listing the available names.
        """
        available = cls.available_pretrained()
        if name not in available:
            if not available:
                raise UnknownNameError(
                    f"unknown pretrained model {name!r}: no pretrained models are installed in "
                    f"{PRETRAINED_DIR}; train one and use AmorphousGenerator.from_checkpoint(path)"
                )
            raise unknown_name("pretrained model", name, available)
        return cls.from_checkpoint(PRETRAINED_DIR / f"{name}.pt", device=device)

    def __repr__(self) -> str:
        return f"AmorphousGenerator(model={self.card.name!r}, device={str(self.device)!r})"

    # ------------------------------------------------------------------ generation

    def generate(
        self,
        count: int = 1,
        *,
        cell: CellLike | None = None,
        n_atoms: int | None = None,
        density: float | None = None,
        composition: CompositionLike | None = None,
        targets: Mapping[str, float] | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        sampler_options: Mapping[str, Any] | None = None,
        guidance: float = 0.0,
        batch_size: int | None = None,
        seed: RandomLike = None,
        progress: bool = True,
    ) -> list[Atoms]:
        """Generate ``count`` structures.

        The cell is ``cell`` if given, else a cube holding ``n_atoms`` at ``density``; missing
        values come from the model's training data (``card.training["default_n_atoms"]``,
        ``["default_number_density"]``). Models with ghost atoms (``card.rho_max`` set) fill the
        cell with ``floor(rho_max V)`` nodes and remove those that end as ghosts, so the network
        decides the number of atoms; ``n_atoms`` and ``density`` then only size the cell.
        A ``composition`` fixes the atoms and their elements exactly: the element channel is
        not generated (inpainting) and no ghosts are used.

        Parameters
        ----------
        count
            Number of structures.
        cell
            Edge length (cube), 3 edge lengths (orthorhombic), a 3x3 matrix (rows = lattice
            vectors), an ``ase.cell.Cell`` or an ``ase.Atoms`` (its cell), Å.
        n_atoms
            Number of atoms (models without ghosts, or to size the cell).
        density
            Number density, atoms/Å^3 (sizes the cell; at most ``card.rho_max``).
        composition
            Counts ``{"Si": 64, "O": 128}``, a formula ``"Si64O128"`` (or ``"SiO2"`` with
            ``n_atoms`` a multiple of 3), or a list of symbols.
        targets
            Target property values in the units of ``card.property_units``; properties not
            named are left free (null embedding).
        sampler
            Name of a registered sampler (``ase_amden.diffusion.SAMPLERS``): ``"sde"``
            (AMDEN), ``"ode"``, ``"langevin"`` (Yang and Schwalbe-Koda) for noise-prediction
            models; ``"hmc"`` for energy-based ones; ``"flow"`` for flow-matching models;
            ``"shortcut"`` for shortcut models. None: the sampler the model card names
            (``card.sampling``), else ``"sde"``.
        steps
            Number of sampler steps (``>= 1``); None uses the card's steps for its own
            sampler, else the sampler's default (``Sampler.default_steps``): 200 for sde,
            ode and flow, 2,000 for hmc, 4 for shortcut, 3,000 for langevin.
        sampler_options
            Keyword options of the sampler class (added to the card's options when the
            sampler is the card's), e.g. ``{"dt0": 0.2}`` for hmc
            (:class:`~ase_amden.diffusion.HMCSampler`: ``dt0``, ``n_leapfrog``, ``t_max``,
            ``update``) or ``{"extra_noise": 0.5}`` for langevin
            (:class:`~ase_amden.diffusion.LangevinSampler`); stored in
            ``atoms.info["sampler_options"]`` when given.
        guidance
            Classifier-free guidance weight ``w >= 0`` (not with ``"hmc"``).
        batch_size
            Most structures passed through the network together (default: all ``count``):
            each step builds one graph of the whole batch and makes one network call. On
            the CPU the network uses torch's threads (all cores unless ``OMP_NUM_THREADS``
            or ``torch.set_num_threads`` say otherwise; ``generate`` leaves them as set).
        seed
            int, numpy/torch generator or None; the int seed used is stored in ``atoms.info``
            and reproduces the structures (on the same device and batch size).
        progress
            Show a progress bar over the steps.

        Returns
        -------
        list[ase.Atoms]
            Periodic structures; ``atoms.info`` holds ``model``, ``sampler``, ``steps``,
            ``seed``, ``targets``, ``guidance``, and what the sampler reports per structure
            (hmc: ``hmc_acceptance``, the fraction of accepted HMC proposals, and
            ``hmc_iterations``).

        Raises
        ------
        AmdenError
            For invalid arguments (the message says which and what is valid).
        SamplingError
            If NaN appears during sampling (the message names the step and time).

        """
        card = self.card
        if int(count) != count or count < 1:
            raise AmdenError(f"count must be a positive integer, got {count}")
        if not (math.isfinite(guidance) and guidance >= 0):
            raise AmdenError(f"guidance must be a finite number >= 0, got {guidance}")
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise AmdenError(f"batch_size must be a positive integer or None, got {batch_size}")
        sampler, steps, sampler_options = self._sampling(sampler, steps, sampler_options)
        sampler_obj = self._make_sampler(sampler, sampler_options)
        if steps is None:
            steps = sampler_obj.default_steps
        if int(steps) != steps or steps < 1:
            raise AmdenError(f"steps must be a positive integer, got {steps}")
        if guidance > 0 and not sampler_obj.supports_guidance:
            raise AmdenError(
                f"sampler {sampler!r} takes no classifier-free guidance (it samples the "
                "model's own distribution); use guidance=0, or another sampler"
            )
        properties, mask = self._normalised_targets(targets)
        if card.fixed_composition:
            composition, density = self._fixed_composition_defaults(
                cell, n_atoms, density, composition, targets)
        cell_array, n_nodes, fixed = self._layout(cell, n_atoms, density, composition)

        seed_int = seed_from(seed)
        generator = torch_generator(seed_int, self.device)
        denoise = GuidedDenoiser(
            self.model,
            properties,
            mask,
            guidance,
            shortcut=card.shortcut,
            generator=generator if card.model_config.get("null_embedding") == "random" else None,
        )
        info = {
            "model": card.name,
            "sampler": sampler,
            "steps": int(steps),
            "seed": seed_int,
            "targets": dict(targets or {}),
            "guidance": float(guidance),
        }
        if sampler_options:
            info["sampler_options"] = dict(sampler_options)
        batch_size = int(min(batch_size or count, count))
        n_batches = math.ceil(count / batch_size)
        structures: list[Atoms] = []
        with (
            tqdm(total=n_batches * (len(sampler_obj.time_grid(steps)) - 1), disable=not progress,
                 desc=f"{card.name} {sampler}") as bar,
            torch.no_grad(),
        ):
            for start in range(0, count, batch_size):
                n_systems = min(batch_size, count - start)
                state = self._initial_state(
                    sampler_obj, cell_array, n_nodes, n_systems, fixed, generator
                )
                denoise.properties, denoise.property_mask = self._expand(
                    properties, mask, n_systems
                )
                state = run_sampler(sampler_obj, state, denoise, steps, generator, bar.update)
                structures.extend(self.to_atoms(state, info))
        return structures

    def to_atoms(self, state: SamplerState, info: Mapping[str, Any] | None = None) -> list[Atoms]:
        """Turn a finished sampler state into ``ase.Atoms``, one per structure.

        Each node takes the class of its largest element-channel entry (a model trained
        without ghosts chooses among the elements only); ghost nodes are removed.
        ``info`` is copied into every ``atoms.info``, with the per-structure entries of
        ``state.diagnostics``. :meth:`generate` calls this; it is public for callers that
        run :func:`~ase_amden.diffusion.run_sampler` themselves.
        """
        card = self.card
        info = dict(info or {})
        # A model trained without ghosts never saw the ghost class: choose among the elements.
        logits = state.elements if card.rho_max is not None else state.elements[:, :-1]
        classes = logits.argmax(dim=-1).cpu().numpy()
        positions = state.positions.detach().cpu().double().numpy()
        cells = state.cell.detach().cpu().double().numpy()
        system_idx = state.system_idx.cpu().numpy()
        diagnostics = {key: value.cpu().tolist() for key, value in state.diagnostics.items()}
        numbers = np.array([atomic_numbers[s] for s in card.elements] + [0])
        images = []
        for b in range(state.n_systems):
            keep = (system_idx == b) & (classes != card.ghost_index)
            atoms = Atoms(
                numbers=numbers[classes[keep]], positions=positions[keep], cell=cells[b], pbc=True
            )
            atoms.info.update(info)
            atoms.info["targets"] = dict(info.get("targets", {}))
            for key, values in diagnostics.items():
                atoms.info[key] = values[b]
            images.append(atoms)
        return images

    # ------------------------------------------------------------------ helpers

    def _sampling(self, sampler: str | None, steps: int | None,
                  options: Mapping[str, Any] | None) -> tuple[str, int | None, dict]:
        """Sampler name, steps and options: the caller's, completed from ``card.sampling``."""
        card_sampling = self.card.sampling or {}
        default = card_sampling.get("sampler", "sde")
        if sampler is None or sampler == default:
            sampler = default
            steps = steps if steps is not None else card_sampling.get("steps")
            options = {**card_sampling.get("options", {}), **(options or {})}
        return sampler, steps, dict(options or {})

    def _make_sampler(self, name: str, options: Mapping[str, Any]) -> Sampler:
        card = self.card
        if name not in SAMPLERS:
            raise unknown_name("sampler", name, SAMPLERS)
        cls = SAMPLERS[name]
        reason = cls.incompatibility(card)
        if reason is not None:
            usable = sorted(n for n, c in SAMPLERS.items() if c.incompatibility(card) is None)
            raise AmdenError(
                f"sampler {name!r} cannot use model {card.name!r}: {reason}; samplers for "
                f"this model: {', '.join(map(repr, usable))}"
            )
        valid = sorted(
            option for option in inspect.signature(cls.__init__).parameters
            if option not in ("self", "pos_schedule", "el_schedule", "objective")
        )
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UnknownNameError(
                f"unknown option(s) {unknown} of sampler {name!r}; its options are: "
                f"{', '.join(valid) or 'none'}"
            )
        try:
            return cls.from_card(card, **options)
        except ValueError as error:
            raise AmdenError(f"invalid option of sampler {name!r}: {error}") from None

    def _normalised_targets(self, targets: Mapping[str, float] | None):
        """Return ``(1, P)`` normalised targets and mask (None, None without properties)."""
        values, mask = self.card.normalise_targets(targets)
        if not self.card.property_names:
            return None, None
        return (
            torch.as_tensor(values, dtype=self.dtype, device=self.device).unsqueeze(0),
            torch.as_tensor(mask, device=self.device).unsqueeze(0),
        )

    @staticmethod
    def _expand(properties, mask, n_systems: int):
        if properties is None:
            return None, None
        return properties.expand(n_systems, -1), mask.expand(n_systems, -1)

    def _check_density(self, density: float, what: str) -> None:
        rho_max = self.card.rho_max
        if rho_max is not None and density > rho_max * (1 + 1e-9):
            raise AmdenError(
                f"{what} ({density:.5g} atoms/Å^3) is above the maximum density of model "
                f"{self.card.name!r}, rho_max = {rho_max:.5g} atoms/Å^3; use a larger cell, "
                "fewer atoms or a lower density"
            )

    def _fixed_composition_defaults(self, cell, n_atoms, density, composition, targets):
        """Composition and number density of a positions-only model, from the card's defaults.

        The composition defaults to the training data's (scaled to ``n_atoms``); without a
        cell or density, the density follows the card's fit of the training densities
        against the conditioning property when that target is given (Yang and
        Schwalbe-Koda fix a cell's density from its cooling rate), else the training median.
        """
        training = self.card.training
        if composition is None:
            counts = training.get("default_composition")
            if not counts:
                raise AmdenError(f"model {self.card.name!r} generates positions only: give "
                                 "composition=, e.g. {'Si': 64, 'O': 128}")
            formula = Formula.from_dict(counts).reduce()[0]
            if n_atoms is None:
                composition = counts
            else:
                composition = formula.format()
        fit = training.get("density_fit")
        if cell is None and density is None and fit and fit["property"] in (targets or {}):
            i = self.card.property_names.index(fit["property"])
            x = self.card.network_scale(i, targets[fit["property"]])
            grams_per_cm3 = fit["intercept"] + fit["slope"] * x
            symbols = _composition_symbols(composition, n_atoms)
            mean_mass = float(np.mean([atomic_masses[atomic_numbers[s]] for s in symbols]))
            density = grams_per_cm3 / (AMU_PER_A3_TO_G_PER_CM3 * mean_mass)
        return composition, density

    def _layout(self, cell, n_atoms, density, composition):
        """Cell ``(3, 3)``, node count, and the fixed element classes ``(n,)`` or None."""
        card = self.card
        training = card.training
        if n_atoms is not None and (int(n_atoms) != n_atoms or n_atoms < 1):
            raise AmdenError(f"n_atoms must be a positive integer, got {n_atoms}")
        if density is not None and not (math.isfinite(density) and density > 0):
            raise AmdenError(f"density must be a positive number of atoms/Å^3, got {density}")
        if density is not None:
            self._check_density(density, "density")
        fixed = None
        if composition is not None:
            symbols = _composition_symbols(composition, n_atoms)
            unknown = sorted(set(symbols) - set(card.elements))
            if unknown:
                raise unknown_name("element", unknown[0], card.elements)
            fixed = np.array([card.elements.index(s) for s in symbols])
            n_atoms = len(symbols)
        ghosts = card.rho_max is not None and fixed is None

        if cell is not None:
            cell_array = _parse_cell(cell)
            volume = abs(np.linalg.det(cell_array))
            if ghosts:
                if n_atoms is not None or density is not None:
                    raise AmdenError(
                        f"model {card.name!r} uses ghost atoms: with a cell given it decides the "
                        "number of atoms itself; drop n_atoms/density, or fix the atoms with "
                        "composition="
                    )
                return cell_array, node_count(volume, card.rho_max), None
            if n_atoms is None:
                density = density or training.get("default_number_density")
                if density is None:
                    raise AmdenError(
                        f"give n_atoms (or density) with the cell: model {card.name!r} has no "
                        "default density"
                    )
                n_atoms = max(1, round(density * volume))
            self._check_density(n_atoms / volume, f"the density of {n_atoms} atoms in this cell")
            return cell_array, int(n_atoms), fixed

        n_atoms = n_atoms or training.get("default_n_atoms")
        density = density or training.get("default_number_density")
        if n_atoms is None or density is None:
            raise AmdenError(
                f"give a cell, or n_atoms and density: model {card.name!r} stores no default "
                f"{'number of atoms' if n_atoms is None else 'density'}"
            )
        self._check_density(density, "density")
        cell_array = np.eye(3) * (n_atoms / density) ** (1.0 / 3.0)
        if ghosts:
            return cell_array, node_count(abs(np.linalg.det(cell_array)), card.rho_max), None
        return cell_array, int(n_atoms), fixed

    def _initial_state(self, sampler, cell_array, n_nodes, n_systems, fixed, generator):
        cell = torch.as_tensor(cell_array, dtype=self.dtype, device=self.device)
        cell = cell.expand(n_systems, 3, 3).contiguous()
        system_idx = torch.arange(n_systems, device=self.device).repeat_interleave(n_nodes)
        positions, elements = sampler.prior(cell, system_idx, self.card.n_classes, generator)
        fixed_elements = None
        if fixed is not None:
            classes = torch.as_tensor(fixed, device=self.device).repeat(n_systems)
            fixed_elements = torch.nn.functional.one_hot(classes, self.card.n_classes).to(
                self.dtype
            )
        return SamplerState(positions, elements, cell, system_idx, fixed_elements)

