"""Classical interatomic potentials through LAMMPS (the reference for validation)."""

from .lammps import import_lammps, potentials_dir
from .registry import POTENTIALS, Potential, get_calculator, get_potential

__all__ = [
    "POTENTIALS",
    "Potential",
    "get_calculator",
    "get_potential",
    "import_lammps",
    "potentials_dir",
]
