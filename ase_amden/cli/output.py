"""Structure files written by the command line: checked before the work, replaced atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ase import Atoms

from ..atomic import atomic_write, remove_stale_tmp
from ..errors import InvalidArgumentError

__all__ = ["check_output", "write_structures"]

_MULTI_FRAME = ".extxyz, .xyz, .traj, .db, .json or .cif"


def _format(path: Path, format: str | None) -> str:
    from ase.io.formats import UnknownFileTypeError, filetype, ioformats

    if format is None:
        try:
            format = filetype(str(path), read=False)
        except (UnknownFileTypeError, KeyError):
            format = None
        if format not in ioformats:
            hint = (" (a LAMMPS data file: add --format lammps-data)"
                    if path.suffix.lower() in (".lmp", ".data") or "data" in path.name else "")
            raise InvalidArgumentError(
                f"cannot tell the file format of {str(path)!r} from its name{hint}; use an "
                f"extension ase.io writes ({_MULTI_FRAME}, POSCAR) or give --format"
            ) from None
    if format not in ioformats or not ioformats[format].can_write:
        raise InvalidArgumentError(
            f"ase.io cannot write format {format!r}; use e.g. extxyz, traj, db, cif, "
            "vasp or lammps-data"
        )
    return format


def check_output(path: str | os.PathLike, count: int, elements: Sequence[str],
                 format: str | None = None) -> str:
    """Check, before any work, that ``count`` structures can be written to ``path``.

    The format (from ``format`` or the file name) must be one ase.io writes, hold
    ``count`` frames, and accept a small trial structure of ``elements`` written to a
    temporary file beside ``path`` (then removed); the folder is created. Temporary
    files of earlier, killed runs are removed.

    Returns
    -------
    str
        The ase.io format name.

    Raises
    ------
    InvalidArgumentError
        Naming the path and what to change.

    """
    path = Path(path)
    if path.is_dir():
        raise InvalidArgumentError(f"--output {str(path)!r} is a folder; give a file name")
    fmt = _format(path, format)
    from ase.io.formats import ioformats

    if ioformats[fmt].single and count > 1:
        raise InvalidArgumentError(
            f"format {fmt!r} of {str(path)!r} holds one structure but --count is {count}; "
            f"use --count 1 or a multi-structure format ({_MULTI_FRAME})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path)
    trial = Atoms(list(elements)[:1] * 2, positions=[[0, 0, 0], [1.5, 1.5, 1.5]],
                  cell=[5.0, 5.0, 5.0], pbc=True)
    try:
        with atomic_write(path.with_name(f".trial-{path.name}"), keep_suffix=True) as tmp:
            _write(tmp, [trial] * min(count, 2), fmt)
            raise _TrialDone
    except _TrialDone:
        pass
    except InvalidArgumentError:
        raise
    except Exception as error:  # ase.io writers raise many kinds
        raise InvalidArgumentError(
            f"cannot write {str(path)!r} as {fmt!r}: {error}; choose another format"
        ) from None
    return fmt


class _TrialDone(Exception):
    """Ends the trial write so that its temporary file is removed."""


def _write(path: Path, images: Sequence[Atoms], fmt: str) -> None:
    from ase.io.formats import ioformats

    from ..provenance import write_structures

    write_structures(path, images[:1] if ioformats[fmt].single else images, format=fmt)


def write_structures(path: str | os.PathLike, images: Sequence[Atoms], fmt: str) -> None:
    """Write ``images`` to ``path`` through a temporary file and :func:`os.replace`.

    An interruption leaves the previous file at ``path`` (if any) untouched.
    """
    with atomic_write(path, keep_suffix=True) as tmp:
        _write(tmp, images, fmt)
