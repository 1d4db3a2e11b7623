"""Run a :class:`~ase_amden.data.protocols.Protocol` in LAMMPS, one sample at a time."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from ase.units import _amu

from ..errors import InvalidStructureError
from ..potentials import get_calculator, get_potential
from ..potentials.lammps import new_instance
from .protocols import Protocol, Stage

#: The final minimisation of every sample (conjugate gradients to forces below 1e-8 eV/Å).
RELAX_COMMAND = "minimize 0 1e-8 10000 100000"

#: Units of the properties every sample carries (analyses add more).
PROPERTY_UNITS: dict[str, str] = {
    "potential_energy": "eV/atom",
    "relaxed_energy": "eV/atom",
    "density": "g/cm^3",
    "number_density": "1/Å^3",
    "melt_msd": "Å^2",
    "cooling_rate": "K/ps",
    "wall_time": "s",
    "bulk_modulus": "GPa",
    "shear_modulus": "GPa",
    "ring_size": "Si atoms",
}


@dataclass
class Sample:
    """One finished melt-quench run.

    Attributes
    ----------
    atoms
        Final structure (as made, not relaxed), periodic.
    properties
        Scalar properties, units in :data:`PROPERTY_UNITS`.
    arrays
        Per-sample arrays, e.g. ``"elastic_tensor"`` (6, 6) in GPa.
    index
        Sample index within its dataset (seed = protocol.seed + index).

    """

    atoms: Atoms
    properties: dict[str, float]
    index: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def sample_size(protocol: Protocol, index: int) -> dict[str, int]:
    """Element counts of sample ``index`` (drawn from the protocol's size range)."""
    unit = sum(protocol.formula.values())
    lo, hi = protocol.n_atoms
    rng = np.random.default_rng(protocol.seed + index)
    n_units = max(1, int(rng.integers(lo, hi + 1)) // unit)
    return {el: k * n_units for el, k in protocol.formula.items()}


def _cell_length(counts: dict[str, int], density_g_cm3: float) -> float:
    """Edge of a cubic cell (Å) holding ``counts`` at the given mass density."""
    mass_g = sum(atomic_masses[atomic_numbers[el]] * n for el, n in counts.items()) * _amu * 1e3
    return (mass_g / density_g_cm3 * 1e24) ** (1.0 / 3.0)


def _read_atoms(lmp, elements: tuple[str, ...]) -> Atoms:
    """Current LAMMPS configuration as Atoms, ordered by atom id (orthogonal box)."""
    boxlo, boxhi, *_ = lmp.extract_box()
    nlocal = lmp.extract_global("nlocal")  # arrays also hold ghost atoms past nlocal
    ids = np.asarray(lmp.numpy.extract_atom("id"))[:nlocal]
    order = np.argsort(ids)
    x = np.asarray(lmp.numpy.extract_atom("x"))[:nlocal][order] - np.asarray(boxlo)
    types = np.asarray(lmp.numpy.extract_atom("type"))[:nlocal][order]
    symbols = [elements[t - 1] for t in types]
    atoms = Atoms(symbols, positions=x, cell=np.diag(np.subtract(boxhi, boxlo)), pbc=True)
    atoms.wrap()
    return atoms


def _md_settings(dt_ps: float) -> list[str]:
    """Timestep and the potential-energy compute that every run reads."""
    return [f"timestep {dt_ps}", "thermo 0", "compute pe all pe", "variable pe equal c_pe"]


def _run_stages(
    lmp, stages: Sequence[Stage], seed: int, dt_ps: float, damping_ps: float,
    properties: dict[str, float],
) -> None:
    """Run ``stages`` in order (velocities drawn at ``seed`` before the first NVT stage).

    Records ``melt_msd`` (Å^2) of a stage that measures it and raises
    ``properties["cooling_rate"]`` (K/ps) to the fastest ramp run.
    """
    velocities_set = False
    for k, stage in enumerate(stages):
        if stage.kind == "minimize":
            lmp.command("minimize 0 1e-6 5000 50000")
            continue
        if not velocities_set:
            lmp.command(
                f"velocity all create {stage.temperature_K} {seed} dist gaussian mom yes rot no"
            )
            velocities_set = True
        end = stage.end_temperature_K or stage.temperature_K
        lmp.command(f"fix stage{k} all nvt temp {stage.temperature_K} {end} {damping_ps}")
        if stage.measure_msd:
            lmp.command(f"compute msd{k} all msd com yes")
        lmp.command(f"run {round(stage.duration_ps / dt_ps)}")
        if stage.measure_msd:
            properties["melt_msd"] = float(lmp.numpy.extract_compute(f"msd{k}", 0, 1)[3])
            lmp.command(f"uncompute msd{k}")
        lmp.command(f"unfix stage{k}")
        rate = stage.cooling_rate_K_per_ps
        properties["cooling_rate"] = max(properties.get("cooling_rate", 0.0), rate)


def run_stages(
    atoms: Atoms,
    potential: str,
    stages: Sequence[Stage],
    *,
    timestep_fs: float = 2.0,
    thermostat_damping_fs: float = 100.0,
    seed: int = 1,
    relax: bool = False,
) -> Atoms:
    """Run protocol stages in LAMMPS from a given structure (e.g. MD refinement of a start).

    Parameters
    ----------
    atoms
        Periodic structure in an orthorhombic cell.
    potential
        Name in :data:`ase_amden.potentials.POTENTIALS`.
    stages
        NVT ramps and minimisations, run in order as in a :class:`Protocol`.
    timestep_fs, thermostat_damping_fs
        MD timestep and Nosé-Hoover damping time, fs.
    seed
        Seed of the initial velocities (LAMMPS takes seeds >= 1).
    relax
        Afterwards minimise the structure as :func:`run_protocol` does for a sample's
        ``relaxed_energy``.

    Returns
    -------
    ase.Atoms
        The final structure, atoms in the input order; with ``relax`` the minimised one,
        its energy in ``info["relaxed_energy"]`` (eV/atom). A stage that measures it leaves
        ``info["melt_msd"]`` (Å^2).

    """
    cell = atoms.cell.array
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-9 or not atoms.pbc.all():
        raise InvalidStructureError(
            "run_stages needs a periodic orthorhombic cell; "
            "give the structure a diagonal cell (e.g. a cube)"
        )
    if seed < 1:
        raise ValueError(f"seed must be at least 1 (a LAMMPS velocity seed), got {seed}")
    pot = get_potential(potential)
    missing = sorted(set(atoms.get_chemical_symbols()) - set(pot.elements))
    if missing:
        raise InvalidStructureError(
            f"potential {potential!r} covers {list(pot.elements)}, not {missing}; "
            "choose a potential for these elements"
        )
    lengths = np.diag(cell)
    lmp = new_instance()
    try:
        lmp.commands_list(
            [
                "units metal",
                f"atom_style {pot.atom_style}",
                "boundary p p p",
                "atom_modify map array sort 0 0.0",
                "region box block 0 {} 0 {} 0 {}".format(*lengths),
                f"create_box {len(pot.elements)} box",
            ]
        )
        wrapped = atoms.copy()
        wrapped.wrap()
        types = [pot.atom_types[s] for s in wrapped.get_chemical_symbols()]
        lmp.create_atoms(
            len(wrapped), list(range(1, len(wrapped) + 1)), types,
            wrapped.positions.ravel().tolist(),
        )
        lmp.commands_list(
            [*pot.pair_commands(), *pot.mass_commands(), *_md_settings(timestep_fs * 1e-3)]
        )
        measured: dict[str, float] = {}
        _run_stages(lmp, stages, seed, timestep_fs * 1e-3, thermostat_damping_fs * 1e-3,
                    measured)
        if relax:
            lmp.command(RELAX_COMMAND)
        final = _read_atoms(lmp, pot.elements)
        if "melt_msd" in measured:
            final.info["melt_msd"] = measured["melt_msd"]
        if relax:
            final.info["relaxed_energy"] = lmp.get_thermo("pe") / len(final)
        return final
    finally:
        lmp.close()


def run_protocol(protocol: Protocol, index: int) -> Sample:
    """Make sample ``index`` of a protocol (deterministic for a given index).

    Atoms are placed at random (no pair closer than 1.6 Å) in a cubic cell of the
    protocol's density, then the stages run in order. Afterwards the structure
    is minimised (positions only) for the relaxed energy, and the requested
    analyses run with the same potential through ASE.

    Parameters
    ----------
    protocol
        The recipe.
    index
        Sample index; its seed is ``protocol.seed + index``.

    """
    start = time.perf_counter()
    potential = get_potential(protocol.potential)
    counts = sample_size(protocol, index)
    seed = protocol.seed + index
    length = _cell_length(counts, protocol.density_g_cm3)
    dt_ps = protocol.timestep_fs * 1e-3
    damping_ps = protocol.thermostat_damping_fs * 1e-3

    lmp = new_instance()
    try:
        lmp.commands_list(
            [
                "units metal",
                f"atom_style {potential.atom_style}",
                "boundary p p p",
                "atom_modify map array sort 0 0.0",
                f"region box block 0 {length} 0 {length} 0 {length}",
                f"create_box {len(potential.elements)} box",
            ]
        )
        for el, n in counts.items():
            atom_type = potential.atom_types[el]
            lmp.command(
                f"create_atoms {atom_type} random {n} {seed * 7 + atom_type} NULL "
                "overlap 1.6 maxtry 10000"
            )
        lmp.commands_list(
            [
                *potential.pair_commands(),
                *potential.mass_commands(),
                *_md_settings(dt_ps),
            ]
        )
        properties: dict[str, float] = {"cooling_rate": 0.0}
        _run_stages(lmp, protocol.stages, seed, dt_ps, damping_ps, properties)
        atoms = _read_atoms(lmp, potential.elements)
        n = len(atoms)
        lmp.command("run 0")
        properties["potential_energy"] = lmp.get_thermo("pe") / n
        lmp.command(RELAX_COMMAND)
        properties["relaxed_energy"] = lmp.get_thermo("pe") / n
        relaxed = _read_atoms(lmp, potential.elements)
    finally:
        lmp.close()

    properties["density"] = protocol.density_g_cm3
    properties["number_density"] = n / atoms.get_volume()
    arrays: dict[str, np.ndarray] = {}
    if protocol.analyses:
        arrays.update(_analyse(relaxed, protocol, properties))
    properties["wall_time"] = time.perf_counter() - start
    return Sample(atoms=atoms, properties=properties, index=index, arrays=arrays)


def _analyse(relaxed: Atoms, protocol: Protocol, properties: dict[str, float]):
    """Elastic and ring analyses on the relaxed structure (updates ``properties``)."""
    from ..analysis import average_ring_size, elastic_tensor, isotropic_moduli

    arrays = {}
    if "elastic" in protocol.analyses:
        c = elastic_tensor(relaxed, get_calculator(protocol.potential), strain=0.01)
        moduli = isotropic_moduli(c)
        properties["bulk_modulus"] = float(moduli["K"])
        properties["shear_modulus"] = float(moduli["G"])
        arrays["elastic_tensor"] = np.asarray(c, dtype=float)
    if "rings" in protocol.analyses:
        properties["ring_size"] = float(average_ring_size(relaxed))
    return arrays
