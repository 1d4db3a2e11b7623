"""Short MD refinement of generated structures: NVT, then NPT (DM2's last step).

Yang and Schwalbe-Koda refine each denoised a-SiO2 structure by 25 ps of NVT and 25 ps
of NPT MD at 300 K with the potential of their training data. :func:`refine` does the
same with a registered potential run natively in LAMMPS (Nosé-Hoover ``fix nvt`` and
``fix npt``), or with any ASE calculator (ASE's Langevin, then Berendsen NPT).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import BaseCalculator
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import Stationary
from ase.optimize import FIRE
from tqdm.auto import tqdm

from .errors import AmdenError, InvalidStructureError, RefinementError, UnknownNameError
from .potentials.lammps import new_instance
from .potentials.registry import get_potential
from .training.batching import mass_density

#: MD steps between progress updates.
CHUNK_STEPS = 100
#: Thermostat and barostat time constants, in timesteps (LAMMPS' recommended 100 and 1000).
THERMOSTAT_STEPS, BAROSTAT_STEPS = 100, 1000
#: Most steps, and the force tolerance (eV/Å: per atom in ASE, of the whole force vector
#: in LAMMPS), of the minimisation that removes close contacts before the MD.
MINIMISE_STEPS, MINIMISE_FMAX = 200, 0.05
#: Compressibility for ASE's Berendsen barostat, 1/(40 GPa) (a glass; it sets only how
#: fast the volume relaxes, not where it goes).
COMPRESSIBILITY_AU = 1.0 / (40.0 * units.GPa)
BAR_PER_GPA = 1.0e4


@dataclass(frozen=True)
class _Schedule:
    """Steps and conditions of one refinement (time in ps, temperature K, pressure GPa)."""

    nvt_steps: int
    npt_steps: int
    dt_ps: float
    temperature: float
    pressure: float
    seed: int


def refine(atoms: Atoms, potential: str | BaseCalculator, *, nvt_ps: float = 25.0,
           npt_ps: float = 25.0, temperature: float = 300.0, pressure: float = 0.0,
           timestep_fs: float = 1.0, seed: int = 0, verbose: bool = True) -> Atoms:
    """Refine a structure by NVT then NPT molecular dynamics.

    Positions are first relaxed (at most 200 minimisation steps) so that close contacts
    left by denoising do not blow up the MD; velocities are drawn at ``temperature``.
    NPT scales the cell isotropically (shape kept); a LAMMPS run of a non-orthogonal
    cell lets every cell component relax instead (``fix npt ... tri``).

    Parameters
    ----------
    atoms
        Periodic structure (not modified).
    potential
        A registered potential name (``ase_amden.potentials.POTENTIALS``, e.g.
        ``"jakse-sio2"`` or ``"bmp"``), run in LAMMPS; or an ASE calculator (needs stress
        for NPT), run with ASE's MD.
    nvt_ps, npt_ps
        Lengths of the NVT and NPT stages, ps (``>= 0``; DM2: 25 and 25).
    temperature
        Temperature of both stages, K.
    pressure
        Pressure of the NPT stage, GPa.
    timestep_fs
        MD timestep, fs.
    seed
        Seed of the initial velocities and of the Langevin noise (an int ``>= 0``).
    verbose
        Show a progress bar over the MD steps.

    Returns
    -------
    ase.Atoms
        A new structure; ``info`` keeps the input's entries and adds ``refine_potential``,
        ``refine_nvt_ps``, ``refine_npt_ps``, ``refine_temperature_K``,
        ``refine_pressure_GPa``, ``refine_timestep_fs``, ``refine_seed``,
        ``refine_density`` (g/cm^3, final) and ``refine_time_s`` (wall time).

    Raises
    ------
    InvalidStructureError
        For an empty, non-periodic or NaN structure, or a cell without volume.
    UnknownNameError
        For an unknown potential name, or elements the potential does not cover.
    AmdenError
        For negative lengths, a temperature or timestep ``<= 0``, a bad seed, or a
        calculator without stress when NPT is asked for.
    RefinementError
        If the MD fails (LAMMPS error such as lost atoms, or non-finite positions).

    """
    _check_structure(atoms)
    settings = dict(nvt_ps=nvt_ps, npt_ps=npt_ps, temperature=temperature, pressure=pressure,
                    timestep_fs=timestep_fs)
    check_refinement(potential, settings, atoms.get_chemical_symbols())
    schedule = _schedule(**settings, seed=seed)
    start = time.perf_counter()
    if isinstance(potential, str):
        name = potential
        refined = _refine_lammps(atoms, get_potential(potential), schedule, verbose)
    else:
        name = type(potential).__name__
        refined = _refine_ase(atoms, potential, schedule, verbose)
    if not np.isfinite(refined.positions).all():
        raise RefinementError("the refinement MD produced non-finite positions; try a smaller "
                              "timestep_fs")
    refined.info.update(atoms.info)
    refined.info.update({
        "refine_potential": name,
        "refine_nvt_ps": float(nvt_ps),
        "refine_npt_ps": float(npt_ps),
        "refine_temperature_K": float(temperature),
        "refine_pressure_GPa": float(pressure),
        "refine_timestep_fs": float(timestep_fs),
        "refine_seed": int(seed),
        "refine_density": mass_density(refined),
        "refine_time_s": time.perf_counter() - start,
    })
    return refined


def refine_all(images: list[Atoms], potential: str | BaseCalculator, *, seed: int = 0,
               verbose: bool = True, **settings) -> list[Atoms]:
    """:func:`refine` each structure in turn; structure ``k`` uses ``seed + k``.

    ``settings`` are :func:`refine`'s keywords (``nvt_ps``, ``npt_ps``, ``temperature``,
    ``pressure``, ``timestep_fs``); ``verbose`` shows one progress bar per structure.
    """
    return [refine(atoms, potential, seed=seed + k, verbose=verbose, **settings)
            for k, atoms in enumerate(images)]


#: The MD settings of :func:`refine` and their defaults (DM2: 25 ps NVT, 25 ps NPT, 300 K,
#: 0 GPa, 1 fs): the ``refine_options`` of ``AmorphousGenerator.generate``.
REFINE_DEFAULTS = {"nvt_ps": 25.0, "npt_ps": 25.0, "temperature": 300.0, "pressure": 0.0,
                   "timestep_fs": 1.0}


def check_refinement(potential: str | BaseCalculator, options: Mapping[str, float] | None,
                     elements: Sequence[str]) -> dict[str, float]:
    """Validate a refinement request before any work; return its options as a dict.

    ``potential`` must be a registered name covering ``elements`` or an ASE calculator (with
    stress if NPT is asked for); ``options`` are keys of :data:`REFINE_DEFAULTS` with valid
    values.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(REFINE_DEFAULTS))
    if unknown:
        raise AmdenError(f"unknown refinement option(s) {unknown}; valid are "
                         f"{list(REFINE_DEFAULTS)}")
    schedule = _schedule(**{**REFINE_DEFAULTS, **options}, seed=0)
    if isinstance(potential, str):
        covered = get_potential(potential).elements
        missing = sorted(set(elements) - set(covered))
        if missing:
            raise UnknownNameError(f"potential {potential!r} has no parameters for {missing}; "
                                   f"it covers {list(covered)}. Choose another potential.")
    elif isinstance(potential, BaseCalculator):
        if schedule.npt_steps and "stress" not in potential.implemented_properties:
            raise AmdenError(f"calculator {type(potential).__name__} gives no stress, which NPT "
                             "needs; use npt_ps=0 or a calculator with stress")
    else:
        raise AmdenError("refine must be a registered potential name or an ASE calculator, "
                         f"got {type(potential).__name__}")
    return options


def _check_structure(atoms: Atoms) -> None:
    if not isinstance(atoms, Atoms):
        raise InvalidStructureError(f"refine takes an ase.Atoms, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise InvalidStructureError("the structure has no atoms")
    if not np.isfinite(atoms.positions).all():
        bad = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
        raise InvalidStructureError(
            f"{bad.size} atoms have NaN or infinite positions (first: atom {bad[0]}); "
            "refine a finished, finite structure"
        )
    if not atoms.pbc.all() or not abs(atoms.cell.volume) > 1e-9:
        raise InvalidStructureError(
            "refinement needs a periodic structure: give the atoms a 3-D cell and set "
            "atoms.pbc = True"
        )


def _schedule(nvt_ps: float, npt_ps: float, temperature: float, pressure: float,
              timestep_fs: float, seed: int) -> _Schedule:
    for label, value in (("nvt_ps", nvt_ps), ("npt_ps", npt_ps)):
        if not (math.isfinite(value) and value >= 0):
            raise AmdenError(f"{label} must be a finite length >= 0 ps, got {value}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise AmdenError(f"temperature must be a finite value > 0 K, got {temperature}")
    if not math.isfinite(pressure):
        raise AmdenError(f"pressure must be a finite value in GPa, got {pressure}")
    if not (math.isfinite(timestep_fs) and timestep_fs > 0):
        raise AmdenError(f"timestep_fs must be a finite value > 0 fs, got {timestep_fs}")
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed < 2**31 - 1:
        raise AmdenError(f"seed must be an integer in [0, 2**31 - 1), got {seed}")
    dt_ps = timestep_fs * 1e-3
    return _Schedule(round(nvt_ps / dt_ps), round(npt_ps / dt_ps), dt_ps, float(temperature),
                     float(pressure), int(seed))


def _chunks(steps: int):
    """Step counts of the successive MD runs of a stage."""
    full, rest = divmod(steps, CHUNK_STEPS)
    return [CHUNK_STEPS] * full + ([rest] if rest else [])


# ---------------------------------------------------------------------- LAMMPS


def _lammps_frame(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LAMMPS' lower-triangular cell and the rotation ``R`` with ``cell @ R = lammps``."""
    q, r = np.linalg.qr(np.asarray(cell, dtype=float).T)
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    q, r = q * signs, r * signs[:, None]
    if np.linalg.det(q) < 0:
        raise InvalidStructureError(
            "the cell is left-handed, which LAMMPS cannot hold; swap two cell vectors "
            "(and the matching scaled positions) to make it right-handed"
        )
    return r.T, q


def _refine_lammps(atoms: Atoms, spec, schedule: _Schedule, verbose: bool) -> Atoms:
    lower, rotation = _lammps_frame(atoms.cell[:])
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = lower.tolist()
    triclinic = bool(np.abs([xy, xz, yz]).max() > 1e-9)
    scaled = atoms.cell.scaled_positions(atoms.positions) % 1.0
    types = [spec.atom_types[s] for s in atoms.get_chemical_symbols()]
    region = (f"prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r}" if triclinic
              else f"block 0 {lx!r} 0 {ly!r} 0 {lz!r}")
    dt, temperature = schedule.dt_ps, schedule.temperature
    barostat = "tri" if triclinic else "iso"
    bar = schedule.pressure * BAR_PER_GPA
    lmp = new_instance()
    try:
        lmp.commands_list([
            "units metal", f"atom_style {spec.atom_style}", "boundary p p p",
            "atom_modify map array sort 0 0.0", f"region box {region} units box",
            f"create_box {len(spec.elements)} box",
        ])
        lmp.create_atoms(len(atoms), None, types, (scaled @ lower).ravel().tolist())
        if lmp.get_natoms() != len(atoms):
            raise RefinementError(f"LAMMPS placed {lmp.get_natoms()} of {len(atoms)} atoms")
        lmp.commands_list([
            *spec.pair_commands(), *spec.mass_commands(), f"timestep {dt}", "thermo 0",
            f"minimize 0.0 {MINIMISE_FMAX} {MINIMISE_STEPS} {10 * MINIMISE_STEPS}",
            f"velocity all create {temperature} {schedule.seed + 1} dist gaussian mom yes "
            "rot no loop geom",
        ])
        stages = [
            ("nvt", schedule.nvt_steps,
             f"fix refine all nvt temp {temperature} {temperature} {THERMOSTAT_STEPS * dt}"),
            ("npt", schedule.npt_steps,
             f"fix refine all npt temp {temperature} {temperature} {THERMOSTAT_STEPS * dt} "
             f"{barostat} {bar} {bar} {BAROSTAT_STEPS * dt}"),
        ]
        with tqdm(total=schedule.nvt_steps + schedule.npt_steps, unit="step",
                  desc=f"refine {spec.name}", disable=not verbose) as progress:
            for stage, steps, fix in stages:
                if not steps:
                    continue
                lmp.command(fix)
                for k, chunk in enumerate(_chunks(steps)):
                    try:
                        lmp.command(f"run {chunk} pre {'yes' if k == 0 else 'no'} post no")
                    except Exception as err:  # LAMMPS raises plain Exception
                        raise RefinementError(
                            f"LAMMPS stopped in the {stage} stage: {err}. Overlapping atoms "
                            "or a too long timestep_fs are the usual causes"
                        ) from err
                    progress.update(chunk)
                lmp.command("unfix refine")
        return _read_back(lmp, spec.elements, rotation)
    finally:
        lmp.close()


def _read_back(lmp, elements: tuple[str, ...], rotation: np.ndarray) -> Atoms:
    """The LAMMPS configuration as Atoms in the input's orientation, ordered by atom id."""
    boxlo, boxhi, xy, yz, xz, *_ = lmp.extract_box()
    lx, ly, lz = np.subtract(boxhi, boxlo)
    lower = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
    nlocal = lmp.extract_global("nlocal")
    order = np.argsort(np.asarray(lmp.numpy.extract_atom("id"))[:nlocal])
    x = np.asarray(lmp.numpy.extract_atom("x"))[:nlocal][order] - np.asarray(boxlo)
    types = np.asarray(lmp.numpy.extract_atom("type"))[:nlocal][order]
    refined = Atoms([elements[t - 1] for t in types], positions=x @ rotation.T,
                    cell=lower @ rotation.T, pbc=True)
    refined.wrap()
    return refined


# ------------------------------------------------------------------------- ASE


def _refine_ase(atoms: Atoms, calc: BaseCalculator, schedule: _Schedule, verbose: bool) -> Atoms:
    work = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
    work.calc = calc
    dt = schedule.dt_ps * 1000 * units.fs
    rng = np.random.default_rng(schedule.seed)
    FIRE(work, logfile=None).run(fmax=MINIMISE_FMAX, steps=MINIMISE_STEPS)
    kt = units.kB * schedule.temperature
    work.set_momenta(rng.standard_normal((len(work), 3)) * np.sqrt(work.get_masses() * kt)[:, None])
    Stationary(work)
    stages = []
    if schedule.nvt_steps:
        stages.append(("nvt", schedule.nvt_steps, Langevin(
            work, dt, temperature_K=schedule.temperature,
            friction=1.0 / (THERMOSTAT_STEPS * dt), fixcm=False, rng=rng)))
    if schedule.npt_steps:
        stages.append(("npt", schedule.npt_steps, NPTBerendsen(
            work, dt, temperature_K=schedule.temperature,
            pressure_au=schedule.pressure * units.GPa, taut=THERMOSTAT_STEPS * dt,
            taup=BAROSTAT_STEPS * dt, compressibility_au=COMPRESSIBILITY_AU)))
    with tqdm(total=schedule.nvt_steps + schedule.npt_steps, unit="step",
              desc=f"refine {type(calc).__name__}", disable=not verbose) as progress:
        for stage, steps, dynamics in stages:
            for chunk in _chunks(steps):
                dynamics.run(chunk)
                if not np.isfinite(work.positions).all():
                    raise RefinementError(
                        f"positions became non-finite in the {stage} stage; try a smaller "
                        "timestep_fs"
                    )
                progress.update(chunk)
    refined = work.copy()
    refined.wrap()
    return refined
