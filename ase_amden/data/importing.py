"""Import structures made elsewhere (LAMMPS data, extxyz, ASE db) into an HDF5 dataset.

Per-sample properties come from the command line (one value for every file) or from the
file name through a regular expression with named groups, e.g. the cooling rate of
``sio2_3000_glass_0_1k_sample3.dat`` with ``glass_(?P<cooling_rate>[0-9_]+)k_``; an
underscore inside a captured number is read as the decimal point (``0_1`` -> 0.1), the
way such names are usually written. Where the data came from and under which licence is
stored with the dataset (``AmorphousDataset.protocol``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from tqdm.auto import tqdm

from ..errors import AmdenError, DatasetFormatError, UnknownNameError
from .dataset import AmorphousDataset

__all__ = ["import_structures", "parse_type_map"]

#: ``ase.io`` keyword arguments of LAMMPS data files, by file suffix.
_LAMMPS_SUFFIXES = (".data", ".dat", ".lmp", ".lammps")


def parse_type_map(text: str) -> dict[int, str]:
    """Parse ``"1=O,2=Si"`` into ``{1: "O", 2: "Si"}``.

    >>> parse_type_map("1=O, 2=Si")
    {1: 'O', 2: 'Si'}
    """
    mapping: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, symbol = item.partition("=")
        if not sep or not key.strip().isdigit():
            raise AmdenError(
                f"bad type map entry {item!r}: write LAMMPS type=element pairs, e.g. 1=O,2=Si"
            )
        mapping[int(key)] = _element(symbol.strip())
    if not mapping:
        raise AmdenError("the type map is empty: write LAMMPS type=element pairs, e.g. 1=O,2=Si")
    return mapping


def _element(symbol: str) -> str:
    if symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
        raise UnknownNameError(f"unknown element {symbol!r} in the type map; use a chemical "
                               "symbol such as Si or O")
    return symbol


def _read(path: Path, type_map: Mapping[int, str] | None, lammps_style: str,
          lammps_units: str) -> list[Atoms]:
    from ase.io import read

    if not path.exists():
        raise FileNotFoundError(f"no structure file at {path}")
    if path.suffix == ".db":
        from ase.db import connect

        images = []
        for row in connect(path).select():
            atoms = row.toatoms()
            atoms.info.update(row.key_value_pairs)
            images.append(atoms)
    elif path.suffix in _LAMMPS_SUFFIXES:
        try:
            images = [read(path, format="lammps-data", atom_style=lammps_style,
                           units=lammps_units)]
        except Exception as err:  # ase raises many types on malformed files
            raise DatasetFormatError(
                f"could not read {path} as a LAMMPS data file with atom_style "
                f"{lammps_style!r} ({err}); give the right --lammps-style"
            ) from err
    else:
        try:
            images = read(path, index=":")
        except Exception as err:
            raise DatasetFormatError(f"ase.io could not read {path}: {err}") from err
    if type_map is not None:
        for atoms in images:
            types = atoms.arrays.get("type", atoms.numbers)
            missing = sorted(set(np.unique(types).tolist()) - set(type_map))
            if missing:
                raise AmdenError(
                    f"{path} has atom types {missing} that the type map {dict(type_map)} "
                    "does not name; add them, e.g. 3=Na"
                )
            atoms.numbers = [atomic_numbers[type_map[int(t)]] for t in types]
    return images


def _clean(atoms: Atoms, path: Path) -> Atoms:
    """Positions, numbers and cell only (charges, velocities and ids are not data here)."""
    if not atoms.pbc.all() or atoms.cell.rank < 3:
        raise AmdenError(f"{path}: a structure is not periodic in 3 directions; amorphous "
                         "bulk data needs a full periodic cell")
    if not np.isfinite(atoms.positions).all():
        raise AmdenError(f"{path}: a structure has non-finite positions (NaN or inf)")
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)


def _name_properties(pattern: re.Pattern | None, path: Path) -> dict[str, float]:
    if pattern is None:
        return {}
    match = pattern.search(path.name)
    if match is None:
        raise AmdenError(
            f"the name pattern {pattern.pattern!r} does not match the file name {path.name!r}; "
            "fix the pattern or import that file separately"
        )
    values = {}
    for name, text in match.groupdict().items():
        try:
            values[name] = float(text.replace("_", "."))
        except (TypeError, ValueError):
            raise AmdenError(
                f"group {name!r} of the name pattern captured {text!r} in {path.name!r}, "
                "which is not a number"
            ) from None
    return values


def import_structures(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    type_map: Mapping[int, str] | None = None,
    properties: Mapping[str, float] | None = None,
    name_pattern: str | None = None,
    held_out_pattern: str | None = None,
    units: Mapping[str, str] | None = None,
    source: str = "",
    licence: str = "",
    licence_text: str = "",
    lammps_style: str = "atomic",
    lammps_units: str = "metal",
    verbose: bool = True,
) -> AmorphousDataset:
    """Read structure files and write them as one :class:`AmorphousDataset`.

    Parameters
    ----------
    paths
        Structure files: LAMMPS data (``.data``, ``.dat``, ``.lmp``, ``.lammps``), an ASE
        database (``.db``) or anything ``ase.io.read`` reads (all frames are taken).
    output
        HDF5 file to write (replaced atomically).
    type_map
        LAMMPS atom type to element, e.g. ``{1: "O", 2: "Si"}`` (None: the elements
        ``ase.io`` infers, from the masses for LAMMPS files).
    properties
        Property values given to every structure, e.g. ``{"cooling_rate": 1.0}``.
    name_pattern
        Regular expression whose named groups, searched in each file name, give
        per-file property values (see the module docstring).
    held_out_pattern
        Regular expression; files whose names match form the held-out split (None: the
        split is drawn by hash as for made datasets).
    units
        Units per property, e.g. ``{"cooling_rate": "K/ps"}``.
    source, licence, licence_text
        Where the data come from, the licence's name and its full text; stored in the
        dataset's protocol record.
    lammps_style, lammps_units
        ``atom_style`` and ``units`` of LAMMPS data files.
    verbose
        Show a progress bar over the files.

    Returns
    -------
    AmorphousDataset
        The dataset written to ``output``.

    Examples
    --------
    >>> import os, tempfile
    >>> from ase.build import bulk
    >>> from ase.io import write
    >>> folder = tempfile.mkdtemp()
    >>> write(os.path.join(folder, "glass_10k.xyz"), bulk("Si", cubic=True))
    >>> ds = import_structures([os.path.join(folder, "glass_10k.xyz")],
    ...                        os.path.join(folder, "si.h5"),
    ...                        name_pattern=r"glass_(?P<cooling_rate>[0-9_]+)k",
    ...                        units={"cooling_rate": "K/ps"}, licence="CC0", verbose=False)
    >>> ds[0].info["cooling_rate"], ds.protocol["licence"]
    (10.0, 'CC0')

    """
    if not paths:
        raise AmdenError("no files to import; give one or more structure files")
    pattern = _compile(name_pattern, "name pattern")
    held_pattern = _compile(held_out_pattern, "held-out pattern")
    fixed = {name: float(value) for name, value in (properties or {}).items()}
    images: list[Atoms] = []
    held_out: list[bool] = []
    files = [Path(p) for p in paths]
    for path in tqdm(files, desc="import", unit="file", disable=not verbose):
        values = {**_name_properties(pattern, path), **fixed}
        for atoms in _read(path, type_map, lammps_style, lammps_units):
            clean = _clean(atoms, path)
            clean.info.update({k: v for k, v in atoms.info.items()
                               if k in values or _is_scalar(v) and k != "comment"})
            clean.info.update(values)
            images.append(clean)
            held_out.append(bool(held_pattern and held_pattern.search(path.name)))
    protocol = {
        "name": "import",
        "source": source,
        "licence": licence,
        "licence_text": licence_text,
        "files": [p.name for p in files],
        "type_map": {str(k): v for k, v in (type_map or {}).items()},
        "name_pattern": name_pattern,
        "held_out_pattern": held_out_pattern,
    }
    return AmorphousDataset.write(
        output, images, units=dict(units or {}), protocol=protocol,
        held_out_mask=held_out if held_pattern else None,
    )


def _is_scalar(value) -> bool:
    return np.ndim(value) == 0 and isinstance(value, (int, float, np.number))


def _compile(pattern: str | None, what: str) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as err:
        raise AmdenError(f"the {what} {pattern!r} is not a valid regular expression: {err}") \
            from None
