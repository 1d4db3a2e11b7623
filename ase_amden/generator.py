"""The public face of a trained model: ``AmorphousGenerator.generate() -> list[ase.Atoms]``.

Cells follow ASE's convention throughout: rows are lattice vectors, Å.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import BaseCalculator
from ase.cell import Cell
from ase.constraints import FixAtoms
from ase.data import atomic_masses, atomic_numbers
from ase.formula import Formula
from torch import nn
from tqdm.auto import tqdm

from ase_amden.analysis.scattering import ScatteringSetup
from ase_amden.analysis.symmetry import flag_crystalline
from ase_amden.catalog import ModelDetails, model_details, read_quality_table
from ase_amden.checks import check_mode, check_number_density, check_structures
from ase_amden.devices import check_device
from ase_amden.diffusion.ghosts import node_count
from ase_amden.diffusion.guidance import GuidedDenoiser
from ase_amden.diffusion.inpainting import (
    InpaintingPlan,
    min_distances,
    place_free_atoms,
    plan_inpainting,
    push_free_atoms,
)
from ase_amden.diffusion.observables import ObservableGuidance
from ase_amden.diffusion.rng import RandomLike, seed_from
from ase_amden.diffusion.samplers import SAMPLERS, Sampler, SamplerState, run_sampler
from ase_amden.errors import AmdenError, InvalidStructureError, UnknownNameError, unknown_name
from ase_amden.models.card import ModelCard
from ase_amden.provenance import PROVENANCE_KEYS, parse_provenance, provenance, weights_hash
from ase_amden.random_streams import SystemStreams, structure_seed
from ase_amden.refinement import check_refinement
from ase_amden.resources import check_graph_memory
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
    return check_device(device)


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
        try:
            counts = Formula(composition).count()
        except ValueError as error:
            raise AmdenError(
                f"composition {composition!r} is not a chemical formula ({error}); write e.g. "
                "'Si64O128' or 'SiO2'"
            ) from None
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


@dataclass
class _Plan:
    """A validated generation request, laid out: what :meth:`AmorphousGenerator._sample` runs."""

    count: int
    batch_size: int
    sampler_name: str
    sampler: Sampler
    steps: int
    properties: torch.Tensor | None  # (1, P) normalised targets
    mask: torch.Tensor | None  # (1, P) bool
    guidance: float
    cell: np.ndarray  # (3, 3), Å
    n_nodes: int
    fixed: np.ndarray | None  # (n,) element classes of a fixed composition
    seed: int
    info: dict[str, Any]
    check: str  # ase_amden.checks mode
    symbols: list[str] | None  # the fixed composition, one symbol per atom
    inpainting: InpaintingPlan | None  # template atoms held fixed
    observable: ObservableGuidance | None  # a measured curve steered towards
    refine: str | BaseCalculator | None  # potential of the MD refinement
    refine_options: dict[str, float]  # ase_amden.refinement.refine keywords

    @property
    def n_batches(self) -> int:
        """Number of network batches."""
        return math.ceil(self.count / self.batch_size)


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
        self._model_hash: str | None = None  # computed when first asked for

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
    def available_pretrained(details: bool = False) -> list[str] | list[ModelDetails]:
        """Names of the pretrained models shipped in :data:`PRETRAINED_DIR`.

        With ``details=True``, a :class:`~ase_amden.catalog.ModelDetails` per model instead:
        elements, kind, properties with units and trained ranges, default sampler and steps,
        measured quality (what ``ase-amden models`` prints).
        """
        paths = sorted(PRETRAINED_DIR.glob("*.pt"))
        if not details:
            return [path.stem for path in paths]
        table = read_quality_table()
        return [model_details(path, table) for path in paths]

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

    @property
    def model_hash(self) -> str:
        """Short SHA-256 (12 hex digits) of the network weights: which weights made a structure."""
        if self._model_hash is None:
            self._model_hash = weights_hash(self.model)
        return self._model_hash

    def regenerate(self, atoms: Atoms, progress: bool = False) -> Atoms:
        """Generate again, bit for bit, a structure this generator made, from its ``info``.

        ``atoms`` is the structure as read back from any format that keeps ``atoms.info``
        (extxyz, traj, db, json): its cell, its symbols (for a fixed composition) and the
        provenance keys that :meth:`generate` wrote. The batch that held the structure is
        sampled again (``seed``, ``count``, ``batch_size``, ``structure_index``), so the network
        sees the same batch and the result is identical on the same device, whatever the count
        and batch size. (Alone, ``generate(1, seed=s)[0]`` draws the same noise as
        ``generate(n, seed=s)[0]``, but float32 matrix products differ with the batch shape in
        the last bits: positions agree to about 1e-4 Å: 7e-5 Å measured for a-SiO2 at 200 steps.)
        Measured on CPU. On CUDA the network's scatter-adds are not deterministic unless
        ``torch.use_deterministic_algorithms(True)`` is set (not measured here).
        ``progress`` shows a bar over the sampler steps.

        Raises :class:`~ase_amden.errors.AmdenError` when the structure came from another model
        or other weights, or its info lacks a provenance key.
        """
        info = atoms.info
        missing = [key for key in PROVENANCE_KEYS if key not in info]
        if missing:
            raise AmdenError(
                f"atoms.info lacks the provenance key(s) {missing}: only structures written by "
                "AmorphousGenerator.generate (in a format that keeps atoms.info: extxyz, traj, "
                "db, json) can be regenerated"
            )
        if info["model"] != self.card.name or info["model_hash"] != self.model_hash:
            raise AmdenError(
                f"the structure came from model {info['model']!r} (weights "
                f"{info['model_hash']}), this generator holds {self.card.name!r} (weights "
                f"{self.model_hash}); load that model to regenerate it"
            )
        if "refine_potential" in info:
            raise AmdenError(
                "the structure was refined by MD after generation (refine_* keys in its info) "
                "and its cell may have changed; regenerate the structure as generated, then "
                "refine it again with ase_amden.refinement.refine"
            )
        index, count, batch_size = (int(info[k]) for k in
                                    ("structure_index", "count", "batch_size"))
        targets, options = parse_provenance(info)
        fixed = bool(info.get("fixed_composition", False))
        ghosts = self.card.rho_max is not None and not fixed
        plan = self._plan(
            count, cell=atoms.cell.array, n_atoms=None if ghosts else len(atoms), density=None,
            composition=list(atoms.symbols) if fixed else None,
            targets=targets or None, sampler=str(info["sampler"]),
            steps=int(info["steps"]), sampler_options=options or None,
            guidance=float(info["guidance"]), batch_size=batch_size, seed=int(info["seed"]),
        )
        start = index - index % batch_size
        indices = range(start, min(start + batch_size, count))
        with (
            tqdm(total=len(plan.sampler.time_grid(plan.steps)) - 1, disable=not progress,
                 desc=f"{self.card.name} {plan.sampler_name}") as bar,
            torch.no_grad(),
        ):
            state, largest_output = self._sample(plan, indices, bar.update)
        structures = self._atoms(plan, state, indices)
        return self._check(plan, structures, largest_output)[index - start]

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
        check: str = "warn",
        template: Atoms | None = None,
        fixed_mask: Sequence[bool] | np.ndarray | None = None,
        min_distance: float | None = None,
        observables: Mapping[str, tuple] | None = None,
        refine: str | BaseCalculator | None = None,
        refine_options: Mapping[str, float] | None = None,
    ) -> list[Atoms]:
        """Generate ``count`` structures.

        A short pipeline of stages: :meth:`_plan` validates the request and lays it out
        (sampler, targets, cell, nodes, seed), :meth:`_sample` runs the sampler on each
        batch, :meth:`to_atoms` turns the final states into ``ase.Atoms`` and :meth:`_check`
        checks them. A new option belongs to its stage.

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
            named are left free (null embedding). None: the targets the model card names
            (``card.sampling["targets"]``, e.g. the cooling rate of the shipped ``a-Si``),
            else none; ``{}``: none.
        sampler
            Name of a registered sampler (``ase_amden.diffusion.SAMPLERS``): ``"sde"``
            (AMDEN), ``"ode"``, ``"langevin"`` (Yang and Schwalbe-Koda), ``"restart"`` (the
            sde plus noise-and-denoise cycles, Xu et al. 2023) for noise-prediction models;
            ``"hmc"`` for energy-based ones; ``"flow"`` for flow-matching models;
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
            (:class:`~ase_amden.diffusion.LangevinSampler`); stored as
            ``atoms.info["sampler_option_<name>"]``.
        guidance
            Classifier-free guidance weight ``w >= 0`` (not with ``"hmc"``).
        batch_size
            Most structures passed through the network together (default: all ``count``):
            each step builds one graph of the whole batch and makes one network call. On
            the CPU the network uses torch's threads (all cores unless ``OMP_NUM_THREADS``
            or ``torch.set_num_threads`` say otherwise; ``generate`` leaves them as set).
        seed
            int, numpy/torch generator or None; the int seed used is stored in
            ``atoms.info``. Structure ``i`` draws its noise from its own stream seeded by
            ``(seed, i)`` (:mod:`ase_amden.random_streams`), whatever the count and batch size.
        progress
            Show a progress bar over the steps.
        check
            Checks of the generated structures (:mod:`ase_amden.checks`: closest pairs
            against the training data, empty structures, composition, network output):
            ``"warn"`` warns and records ``check_warnings`` and ``check_min_distance`` in
            ``atoms.info``; ``"strict"`` raises :class:`~ase_amden.errors.StructureCheckError`
            instead; ``"off"`` skips them.
        template
            Inpainting: an ``ase.Atoms`` whose atoms under ``FixAtoms`` (or ``fixed_mask``)
            are held at their positions and elements; its other atoms are dropped and new ones
            generated in its cell: ``composition``/``n_atoms`` name the generated atoms, else
            ``round(density V) - n_fixed`` of them (``density`` in atoms/Å^3, default the
            training density). The fixed atoms come first in each result, exactly where they
            were, under ``FixAtoms``. Not with ``cell``; samplers ``flow`` and ``shortcut``
            cannot inpaint positions.
        fixed_mask
            Boolean mask over the template's atoms, instead of its ``FixAtoms``.
        min_distance
            Closest start of a generated atom to a fixed one, Å (default: the closest
            distance of that element pair in the training data, ``card.training
            ["min_distances"]``, else 0.8 x the sum of the two atoms' covalent radii);
            generated atoms that the sampler leaves closer
            are moved radially out to it at the end: ``atoms.info["inpainting_pushed"]``
            counts them, ``["inpainting_min_distance"]`` is the closest approach before
            that, Å, and ``["inpainting_violations"]`` counts atoms still too close after.
        observables
            A measured curve to match: ``{"structure_factor": (q, S_q)}`` (q in 1/Å) or
            ``{"rdf": (r, g_r)}`` (r in Å), optionally with a third item of options
            ``{"weighting": "xray" | "neutron" | "number", "strength": 0.05, "max_shift": 0.1}``
            (see :class:`~ase_amden.diffusion.observables.ObservableGuidance`); the R-factor
            reached is ``atoms.info["observable_rfactor"]``. Samplers sde, ode and langevin.
        refine
            Short MD after denoising (:func:`ase_amden.refinement.refine`, DM2's last step):
            a registered potential name (``"jakse-sio2"``, ``"bmp"``, ``"sw-si"``: LAMMPS)
            or an ASE calculator. Structure ``i`` uses the seed
            ``structure_seed(seed, i) mod (2**31 - 1)``; ``refine_*`` keys go into
            ``atoms.info``. Not with ``template``.
        refine_options
            :func:`~ase_amden.refinement.refine`'s ``nvt_ps``, ``npt_ps`` (default 25 and
            25 ps), ``temperature`` (K), ``pressure`` (GPa), ``timestep_fs``.

        Returns
        -------
        list[ase.Atoms]
            Periodic structures; ``atoms.info`` holds flat provenance that extxyz, traj,
            db and json keep (:mod:`ase_amden.provenance`): ``model``, ``model_hash``,
            ``ase_amden_version``, ``sampler``, ``steps``, ``seed``, ``structure_index``,
            ``count``, ``batch_size``, ``guidance``, ``fixed_composition``,
            ``target_<name>`` and ``sampler_option_<name>``; :meth:`regenerate` makes the
            structure again from it. Also what the sampler reports per structure (hmc:
            ``hmc_acceptance``, the fraction of accepted HMC proposals, and
            ``hmc_iterations``), and the symmetry check: ``crystalline`` (True when spglib
            finds any symmetry at 0.1 Å, i.e. the structure crystallized), ``space_group``
            and ``space_group_number``.

        Raises
        ------
        AmdenError
            For invalid arguments (the message says which and what is valid).
        SamplingError
            If NaN appears during sampling (the message names the step and time).
        ResourceError
            If a batch would not fit in the free memory of the device (nothing is allocated).
        StructureCheckError
            With ``check="strict"``, if a structure fails its checks.

        """
        plan = self._plan(
            count, cell=cell, n_atoms=n_atoms, density=density, composition=composition,
            targets=targets, sampler=sampler, steps=steps, sampler_options=sampler_options,
            guidance=guidance, batch_size=batch_size, seed=seed, check=check, template=template,
            fixed_mask=fixed_mask, min_distance=min_distance, observables=observables,
            refine=refine, refine_options=refine_options,
        )
        structures: list[Atoms] = []
        with (
            tqdm(total=plan.n_batches * (len(plan.sampler.time_grid(plan.steps)) - 1),
                 disable=not progress, desc=f"{self.card.name} {plan.sampler_name}") as bar,
            torch.no_grad(),
        ):
            for start in range(0, plan.count, plan.batch_size):
                indices = range(start, min(start + plan.batch_size, plan.count))
                state, largest_output = self._sample(plan, indices, bar.update)
                checked = self._check(plan, self._atoms(plan, state, indices), largest_output)
                structures.extend(self._refine(plan, checked, indices, progress))
        return structures

    # ------------------------------------------------------------------ stages

    def _plan(self, count, *, cell, n_atoms, density, composition, targets, sampler, steps,
              sampler_options, guidance, batch_size, seed, check="warn", template=None,
              fixed_mask=None, min_distance=None, observables=None, refine=None,
              refine_options=None) -> _Plan:
        """Validate a request and lay it out: sampler, steps, targets, cell, nodes, seed."""
        card = self.card
        if int(count) != count or count < 1:
            raise AmdenError(f"count must be a positive integer, got {count}")
        if not (math.isfinite(guidance) and guidance >= 0):
            raise AmdenError(f"guidance must be a finite number >= 0, got {guidance}")
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise AmdenError(f"batch_size must be a positive integer or None, got {batch_size}")
        check_mode(check)
        if targets is None:
            targets = dict((card.sampling or {}).get("targets", {})) or None
        guidance = self._applied_guidance(guidance, targets)
        sampler, steps, sampler_options = self.sampling(sampler, steps, sampler_options)
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
        self._check_conditioning(sampler_obj, template, cell, observables)
        properties, mask = self._normalised_targets(targets)
        if card.fixed_composition:
            composition, density = self._fixed_composition_defaults(
                cell, n_atoms, density, composition, targets)
        inpainting = None
        if template is not None:
            inpainting, cell_array, n_nodes, fixed = self._inpainting_layout(
                template, fixed_mask, n_atoms, density, composition, min_distance)
        else:
            cell_array, n_nodes, fixed = self._layout(cell, n_atoms, density, composition)
        self._check_memory(cell_array, n_nodes, min(batch_size or count, count))
        observable = self._observable(observables, denoise_schedule=sampler_obj.pos_schedule)
        seed_int = seed_from(seed)
        batch_size = int(min(batch_size or count, count))
        info = provenance(
            model=card.name, model_hash=self.model_hash, sampler=sampler, steps=int(steps),
            seed=seed_int, count=int(count), batch_size=batch_size, guidance=float(guidance),
            targets=targets, sampler_options=sampler_options, fixed_composition=fixed is not None,
        )
        return _Plan(
            count=int(count), batch_size=batch_size,
            sampler_name=sampler, sampler=sampler_obj, steps=int(steps),
            properties=properties, mask=mask, guidance=float(guidance),
            cell=cell_array, n_nodes=n_nodes, fixed=fixed,
            seed=seed_int, info=info, check=check,
            inpainting=inpainting, observable=observable,
            refine=refine, refine_options=self._refinement(refine, refine_options, template,
                                                           fixed),
            symbols=None if fixed is None else [card.elements[k] for k in fixed],
        )

    def _sample(self, plan: _Plan, indices: range,
                callback: Callable[[int], object] | None = None) -> tuple[SamplerState, float]:
        """Run the plan's sampler for the structures ``indices`` (one batch) to t = 0.

        Returns the final state and the largest absolute network output seen.
        """
        generator = SystemStreams.for_structures(plan.seed, indices, self.device)
        random_null = self.card.model_config.get("null_embedding") == "random"
        denoise = GuidedDenoiser(
            self.model, *self._expand(plan.properties, plan.mask, len(indices)), plan.guidance,
            shortcut=self.card.shortcut, generator=generator if random_null else None,
        )
        state = self._initial_state(
            plan.sampler, plan.cell, plan.n_nodes, len(indices), plan.fixed, generator
        )
        if plan.inpainting is not None:
            state = self._hold_template(state, plan.inpainting, generator)
        network = denoise
        if plan.observable is not None:
            plan.observable.denoise, plan.observable.species = denoise, self._species(state)
            network = plan.observable
        state = run_sampler(plan.sampler, state, network, plan.steps, generator, callback)
        self._report_conditioning(state, plan.inpainting, plan.observable)
        return state, denoise.largest_output

    def _atoms(self, plan: _Plan, state: SamplerState, indices: range) -> list[Atoms]:
        """:meth:`to_atoms`, then the template atoms put back (inpainting).

        The fixed atoms get the template's float64 positions, untouched by the model, under
        ``FixAtoms``; generated atoms the sampler left too close to them are pushed out.
        """
        images = self.to_atoms(state, plan.info, indices)
        inpainting = plan.inpainting
        if inpainting is None:
            return images
        n_fixed = inpainting.n_fixed
        for atoms in images:
            atoms.positions[:n_fixed] = inpainting.fixed_positions
            atoms.positions[n_fixed:] = push_free_atoms(atoms.positions[n_fixed:], inpainting)
            atoms.info["inpainting_violations"] = int(
                inpainting.violations(atoms.positions[n_fixed:]).sum())
            atoms.set_constraint(FixAtoms(indices=range(n_fixed)))
        return images

    def _check(self, plan: _Plan, structures: list[Atoms], largest_output: float) -> list[Atoms]:
        """Check one batch of structures before they are returned.

        Flags those that crystallized (``info["crystalline"]``, ``["space_group"]``,
        ``["space_group_number"]`` from an spglib search at 0.1 Å,
        :func:`ase_amden.analysis.symmetry.symmetry`), then runs :mod:`ase_amden.checks`
        in the plan's mode (closest pairs, composition, network output).
        """
        for atoms in structures:
            flag_crystalline(atoms)
        return check_structures(structures, self.card.elements, self.card.training,
                                mode=plan.check, symbols=plan.symbols,
                                largest_output=largest_output)

    @staticmethod
    def _refine(plan: _Plan, structures: list[Atoms], indices: range,
                progress: bool) -> list[Atoms]:
        """Short NVT + NPT MD of each structure of a batch, if the plan asks for it."""
        if plan.refine is None:
            return structures
        from ase_amden.refinement import refine

        return [refine(atoms, plan.refine, seed=structure_seed(plan.seed, i) % (2**31 - 1),
                       verbose=progress, **plan.refine_options)
                for i, atoms in zip(indices, structures, strict=True)]

    def _refinement(self, potential, options, template, fixed) -> dict[str, float]:
        """Validate ``refine``/``refine_options`` of a request (before any sampling)."""
        if potential is None:
            if options:
                raise AmdenError("refine_options given without refine=; name a potential "
                                 "(e.g. refine='jakse-sio2') or drop the options")
            return {}
        if template is not None:
            raise AmdenError("refine= would move the template's fixed atoms; inpaint first, "
                             "then refine with ase_amden.refinement.refine")
        elements = (self.card.elements if fixed is None
                    else [self.card.elements[k] for k in set(fixed.tolist())])
        return check_refinement(potential, options, elements)

    def to_atoms(self, state: SamplerState, info: Mapping[str, Any] | None = None,
                 indices: Sequence[int] | None = None) -> list[Atoms]:
        """Turn a finished sampler state into ``ase.Atoms``, one per structure.

        Each node takes the class of its largest element-channel entry (a model trained
        without ghosts chooses among the elements only); ghost nodes are removed.
        ``info`` is copied into every ``atoms.info``, with the per-structure entries of
        ``state.diagnostics`` and, when ``indices`` are given, ``structure_index``.
        :meth:`generate` calls this; it is public for callers that run
        :func:`~ase_amden.diffusion.run_sampler` themselves.
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
            if indices is not None:
                atoms.info["structure_index"] = int(indices[b])
            for key, values in diagnostics.items():
                atoms.info[key] = values[b]
            images.append(atoms)
        return images

    # ------------------------------------------------------------------ helpers

    def sampling(self, sampler: str | None = None, steps: int | None = None,
                 options: Mapping[str, Any] | None = None) -> tuple[str, int | None, dict]:
        """Sampler name, steps and options that ``generate`` uses.

        The caller's, completed from ``card.sampling``: its steps and options apply when the
        sampler is the card's (or not given).
        """
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
        except (ValueError, TypeError) as error:
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

    def _applied_guidance(self, guidance: float, targets: Mapping[str, float] | None) -> float:
        """The guidance weight that will act: an error without properties, 0 without targets."""
        if guidance > 0 and not self.card.property_names:
            raise AmdenError(
                f"guidance={guidance:g} needs a conditional model, but model {self.card.name!r} "
                "was trained without properties; use guidance=0"
            )
        if guidance > 0 and not targets:
            warnings.warn(f"guidance={guidance:g} is ignored without targets (it steers towards "
                          "target properties); give targets= or drop it", UserWarning,
                          stacklevel=3)
            return 0.0
        return guidance

    def _check_memory(self, cell_array: np.ndarray, n_nodes: int, n_systems: int) -> None:
        config = self.card.model_config
        check_graph_memory(n_systems, n_nodes, abs(np.linalg.det(cell_array)),
                           float(config.get("cutoff", 6.5)), int(config.get("hidden", 128)),
                           self.device, torch.finfo(self.dtype).bits // 8)

    def _check_density(self, density: float, what: str) -> None:
        check_number_density(density, what)
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
        if ghosts and n_atoms is not None and cell is None:
            warnings.warn(f"model {card.name!r} uses ghost atoms and decides the number of atoms "
                          f"itself: n_atoms={n_atoms} only sizes the cell", UserWarning,
                          stacklevel=4)

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

    # ------------------------------------------------------------------ conditioning

    @staticmethod
    def _check_conditioning(sampler: Sampler, template, cell, observables) -> None:
        """Refuse inpainting or observable guidance where the sampler cannot do it."""
        if template is not None and not sampler.supports_inpainting:
            usable = sorted(n for n, c in SAMPLERS.items() if c.supports_inpainting)
            raise AmdenError(
                f"sampler {sampler.name!r} cannot hold atoms at fixed positions (template=); "
                f"samplers that can: {', '.join(map(repr, usable))}")
        if template is not None and cell is not None:
            raise AmdenError("give template= or cell=, not both: the template's cell is used")
        if observables and not sampler.supports_observables:
            usable = sorted(n for n, c in SAMPLERS.items() if c.supports_observables)
            raise AmdenError(
                f"sampler {sampler.name!r} cannot be guided by a measured observable "
                f"(observables=); samplers that can: {', '.join(map(repr, usable))}")

    def _inpainting_layout(self, template, fixed_mask, n_atoms, density, composition,
                           min_distance):
        """Plan, cell, node count and element classes of an inpainting run."""
        card = self.card
        free = None
        if composition is not None or n_atoms is not None:
            free = _composition_symbols(composition or card.elements[0], n_atoms)
        density = density or card.training.get("default_number_density")
        if free is None and density is None:
            raise AmdenError(f"give n_atoms= or density=: model {card.name!r} has no default "
                             "density")
        plan = plan_inpainting(template, fixed_mask, card.elements, free, density, min_distance,
                               card.training.get("min_distances"))
        symbols = plan.fixed_symbols + plan.free_symbols
        unknown = sorted(set(symbols) - set(card.elements))
        if unknown:
            raise unknown_name("element", unknown[0], card.elements)
        volume = abs(np.linalg.det(plan.cell))
        self._check_density(len(symbols) / volume, "the density of the inpainted cell")
        classes = np.array([card.elements.index(s) for s in symbols])
        return plan, plan.cell, len(symbols), classes

    def _hold_template(self, state: SamplerState, plan: InpaintingPlan,
                       generator: SystemStreams) -> SamplerState:
        """Put the fixed atoms first in every structure and start the free ones clear of them."""
        b, n_fixed = state.n_systems, plan.n_fixed
        free = place_free_atoms(plan, generator.generators)
        known = np.concatenate([np.broadcast_to(plan.fixed_positions, (b, n_fixed, 3)), free],
                               axis=1).reshape(-1, 3)
        is_fixed = np.tile(np.arange(known.shape[0] // b) < n_fixed, b)
        known = torch.as_tensor(known, dtype=self.dtype, device=self.device)
        mask = torch.as_tensor(is_fixed, device=self.device)
        return replace(state, positions=known, fixed_positions=known,
                                   fixed_mask=mask)

    def _observable(self, observables, denoise_schedule):
        """The observable guidance of ``observables`` (None without one)."""
        if not observables:
            return None
        if len(observables) != 1:
            raise AmdenError(f"give one observable, got {sorted(observables)}")
        (kind, value), = observables.items()
        if not isinstance(value, tuple | list) or len(value) not in (2, 3):
            raise AmdenError(f"observables[{kind!r}] must be (x, y) or (x, y, options)")
        options = dict(value[2]) if len(value) == 3 else {}
        steering = {k: options.pop(k) for k in ("strength", "max_shift") if k in options}
        known = {"weighting", "sigma", "dr"}
        if set(options) - known:
            raise UnknownNameError(f"unknown observable option(s) {sorted(set(options) - known)};"
                                   " options are strength, max_shift, weighting, sigma, dr")
        setup = ScatteringSetup(kind, value[0], value[1], self.card.elements, **options)
        return ObservableGuidance(None, setup, denoise_schedule, **steering)

    def _species(self, state: SamplerState) -> torch.Tensor:
        """Element index of each node, known before sampling (needed by observable guidance)."""
        if state.fixed_elements is not None:
            return state.fixed_elements.argmax(dim=-1)
        if len(self.card.elements) == 1 and self.card.rho_max is None:
            return torch.zeros(state.positions.shape[0], dtype=torch.long, device=self.device)
        raise AmdenError(f"observable guidance needs the elements of every atom: give "
                         f"composition= for model {self.card.name!r}")

    @staticmethod
    def _report_conditioning(state: SamplerState, plan, observable) -> None:
        """Per-structure seam check and observable R-factor into ``state.diagnostics``."""
        if plan is not None:
            positions = state.positions.detach().cpu().double().numpy()
            n = positions.shape[0] // state.n_systems
            closest = [min_distances(positions[b * n + plan.n_fixed:(b + 1) * n],
                                     plan.fixed_positions, plan.cell)
                       for b in range(state.n_systems)]
            state.diagnostics["inpainting_min_distance"] = torch.tensor(
                [float(c.min()) for c in closest])
            state.diagnostics["inpainting_pushed"] = torch.tensor(
                [int(plan.violations(positions[b * n + plan.n_fixed:(b + 1) * n]).sum())
                 for b in range(state.n_systems)])
        if observable is not None:
            computed = observable.setup(state.positions, observable.species, state.cell,
                                        state.system_idx)
            state.diagnostics["observable_rfactor"] = torch.tensor(
                observable.setup.rfactor(computed))

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

