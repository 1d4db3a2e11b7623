"""Checks of ``ase.Atoms`` inputs, shared by datasets, training and analysis."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from .errors import InvalidStructureError

Images = Atoms | Sequence[Atoms]

_MIN_VOLUME = 1e-6  # Å^3; below this a cell is treated as absent


def as_images(images: Images, *, periodic: bool = True, what: str = "structure") -> list[Atoms]:
    """Check structures and return them as a list.

    Parameters
    ----------
    images
        One structure or a sequence of structures.
    periodic
        Require periodic boundaries in all three directions and a cell of nonzero volume
        (cell rows are the lattice vectors, ASE convention).
    what
        How messages name an item, e.g. ``"training structure"``.

    Returns
    -------
    list of ase.Atoms
        The same objects (not copies), at least one.

    Raises
    ------
    InvalidStructureError
        For an empty list, an empty structure, a non-Atoms item, NaN or infinite
        positions, a non-periodic structure or a zero-volume cell (when ``periodic``).

    """
    items = [images] if isinstance(images, Atoms) else list(images)
    if not items:
        raise InvalidStructureError(
            "got an empty list of structures; pass one ase.Atoms or a non-empty list of them"
        )
    for index, atoms in enumerate(items):
        where = f"{what} {index}"
        if not isinstance(atoms, Atoms):
            raise InvalidStructureError(
                f"{where} is a {type(atoms).__name__}, not an ase.Atoms; "
                "read files with ase.io.read(path, index=':')"
            )
        if len(atoms) == 0:
            raise InvalidStructureError(f"{where} has no atoms; remove it from the list")
        if not np.all(np.isfinite(atoms.positions)):
            raise InvalidStructureError(
                f"{where} has NaN or infinite positions; drop it (a diverged sample) "
                "or regenerate it"
            )
        if periodic:
            if not np.all(atoms.pbc):
                raise InvalidStructureError(
                    f"{where} is not periodic (pbc={atoms.pbc.tolist()}); this analysis needs "
                    "a periodic bulk cell: set atoms.pbc = True and give its cell"
                )
            if abs(atoms.cell.volume) < _MIN_VOLUME:
                raise InvalidStructureError(
                    f"{where} has a cell of zero volume; set the simulation cell with "
                    "atoms.set_cell(cell) (rows are lattice vectors, Å)"
                )
    return items


def read_structures(path: str | os.PathLike, format: str | None = None) -> list[Atoms]:
    """Every structure of a file ase.io reads, as a list.

    From ASE databases (``.db``, ``.json``) the key-value pairs of each row become
    ``atoms.info`` (where :func:`~ase_amden.provenance.write_structures` put it).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    InvalidStructureError
        If ase.io cannot read it (unknown format, garbage, truncated) or it holds none;
        the message names the file.

    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        images = _read(path, format)
    except Exception as error:  # ase.io readers raise many kinds on bad input
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InvalidStructureError(
            f"cannot read structures from {path!r} ({type(error).__name__}: {reason}); give a "
            "file ase.io reads (extxyz, traj, POSCAR, cif, ...) or an ase_amden .h5 dataset"
        ) from None
    images = images if isinstance(images, list) else [images]
    if not images:
        raise InvalidStructureError(f"{path!r} holds no structures")
    return images


def _read(path: str, format: str | None) -> list[Atoms] | Atoms:
    import ase.db
    from ase.io import read
    from ase.io.formats import filetype

    fmt = format or filetype(path)
    if fmt not in ("db", "json"):
        return read(path, index=":", format=fmt)
    images = []
    with ase.db.connect(path, type=fmt, serial=True) as db:
        for row in db.select():
            atoms = row.toatoms()
            atoms.info.update(row.key_value_pairs)
            images.append(atoms)
    return images
