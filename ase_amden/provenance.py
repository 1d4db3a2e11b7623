"""Provenance of generated structures: flat, typed ``atoms.info`` keys every format keeps.

Only scalars (str, int, float, bool) under plain names, so ``ase.io.write`` to extxyz and
traj and ``ase.db`` (``db.write(atoms, **atoms.info)``) keep them: targets become
``target_<name>`` floats and sampler options ``sampler_option_<name>``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ase.db
import ase.io
from ase import Atoms
from ase.io.formats import filetype
from torch import nn

from ase_amden.errors import AmdenError

__all__ = [
    "PROVENANCE_KEYS", "parse_provenance", "provenance", "weights_hash",
    "write_structures",
]

#: Keys :meth:`~ase_amden.AmorphousGenerator.generate` writes into every ``atoms.info``.
PROVENANCE_KEYS = (
    "model", "model_hash", "ase_amden_version", "sampler", "steps", "seed", "structure_index",
    "count", "batch_size", "guidance", "fixed_composition",
)
_TARGET = "target_"
_OPTION = "sampler_option_"


def weights_hash(model: nn.Module) -> str:
    """Short SHA-256 (12 hex digits) of a network's weights, in ``state_dict`` order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def provenance(*, model: str, model_hash: str, sampler: str, steps: int, seed: int, count: int,
               batch_size: int, guidance: float, fixed_composition: bool,
               targets: Mapping[str, float] | None = None,
               sampler_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The flat provenance dict of one :meth:`generate` call (``structure_index`` is per structure).

    >>> info = provenance(model="a-Si", model_hash="0123456789ab", sampler="sde", steps=200,
    ...                   seed=7, count=3, batch_size=3, guidance=0.0, fixed_composition=False,
    ...                   targets={"cooling_rate": 1.0}, sampler_options={"t_end": 0.0})
    >>> info["target_cooling_rate"], info["sampler_option_t_end"]
    (1.0, 0.0)
    """
    from ase_amden import __version__

    info: dict[str, Any] = {
        "model": str(model), "model_hash": str(model_hash), "ase_amden_version": __version__,
        "sampler": str(sampler), "steps": int(steps), "seed": int(seed), "count": int(count),
        "batch_size": int(batch_size), "guidance": float(guidance),
        "fixed_composition": bool(fixed_composition),
    }
    for name, value in (targets or {}).items():
        info[_TARGET + name] = float(value)
    for name, value in (sampler_options or {}).items():
        if not isinstance(value, (bool, int, float, str)):
            raise AmdenError(f"sampler option {name!r} must be a number, bool or string, "
                             f"got {value!r}")
        info[_OPTION + name] = value
    return info


def _plain(value: Any) -> Any:
    """A numpy scalar read back from a file as the Python scalar it was written as."""
    return value.item() if hasattr(value, "item") else value


def parse_provenance(info: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """Targets and sampler options back from flat ``atoms.info`` keys."""
    targets = {k[len(_TARGET):]: float(v) for k, v in info.items() if k.startswith(_TARGET)}
    options = {k[len(_OPTION):]: _plain(v) for k, v in info.items() if k.startswith(_OPTION)}
    return targets, options


def write_structures(path: str | os.PathLike, images: Sequence[Atoms],
                     format: str | None = None) -> None:
    """Write structures with ``ase.io.write``, keeping ``atoms.info`` in ASE databases too.

    ``ase.io.write`` drops ``atoms.info`` for ``.db`` and ``.json`` (ASE databases); these are
    written with ``db.write(atoms, **atoms.info)`` so the provenance becomes key-value pairs.
    Other formats go through ``ase.io.write`` (extxyz and traj keep info; CIF, POSCAR and
    LAMMPS data have no place for it).
    """
    fmt = format or filetype(str(path), read=False)
    if fmt not in ("db", "json"):
        ase.io.write(path, list(images), format=fmt)
        return
    with ase.db.connect(path, type=fmt, append=False, serial=True) as db:
        for atoms in images:
            db.write(atoms, **atoms.info)
