"""One HDF5 file per dataset of amorphous structures.

Layout (schema version 1)::

    /                    attrs: format="ase_amden.dataset", schema_version, package_version,
                                protocol (JSON), created (ISO time)
    /positions           (n_atoms_total, 3) float64, Å, Cartesian
    /numbers             (n_atoms_total,) int32, atomic numbers
    /offsets             (n_samples + 1,) int64: sample i is rows offsets[i]:offsets[i+1]
    /cells               (n_samples, 3, 3) float64, Å, rows are lattice vectors (ASE)
    /index               (n_samples,) int64: the sample's index in its protocol (seed offset)
    /split               (n_samples,) int8: 0 train, 1 held-out
    /properties/<name>   (n_samples,) float64, attrs units
    /arrays/<name>       (n_samples, ...) float64, attrs units (e.g. elastic_tensor, GPa)

Files are only ever replaced whole (written to a temporary file, then
``os.replace``), so an interrupted write leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import h5py
import numpy as np
from ase import Atoms

from .. import __version__
from ..atomic import atomic_write
from ..errors import DatasetFormatError, unknown_name
from ..structures import as_images

FORMAT_NAME = "ase_amden.dataset"
SCHEMA_VERSION = 1
#: Every 10th sample index (by a hash, not by order) is held out.
HELD_OUT_EVERY = 10


def held_out(index: int) -> bool:
    """Whether sample ``index`` belongs to the held-out split (about 10%)."""
    digest = hashlib.sha256(str(int(index)).encode()).digest()
    return digest[0] % HELD_OUT_EVERY == 0


class AmorphousDataset(Sequence):
    """A read-only view of a dataset file; indexing gives :class:`ase.Atoms`.

    Parameters
    ----------
    path
        HDF5 file written by :meth:`write` (or by ``ase-amden dataset make``).

    Examples
    --------
    >>> import tempfile, os
    >>> from ase.build import bulk
    >>> atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    >>> atoms.info["potential_energy"] = -4.3366
    >>> path = os.path.join(tempfile.mkdtemp(), "si.h5")
    >>> ds = AmorphousDataset.write(path, [atoms], units={"potential_energy": "eV/atom"})
    >>> len(ds), ds[0].get_chemical_formula(), ds[0].info["potential_energy"]
    (1, 'Si8', -4.3366)

    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no dataset at {self.path}")
        try:
            with h5py.File(self.path, "r") as f:
                self._load(f)
        except (OSError, KeyError) as err:
            raise DatasetFormatError(
                f"{self.path} is not a readable ase_amden dataset ({err}); make one with "
                "'ase-amden dataset make' or AmorphousDataset.write"
            ) from err

    def _load(self, f: h5py.File) -> None:
        if f.attrs.get("format") != FORMAT_NAME:
            raise DatasetFormatError(
                f"{self.path} was not written by ase_amden (no format={FORMAT_NAME!r} "
                "attribute); convert structures with AmorphousDataset.write or "
                "AmorphousDataset.from_file"
            )
        version = int(f.attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            raise DatasetFormatError(
                f"{self.path} has dataset schema {version}, this ase_amden reads "
                f"{SCHEMA_VERSION}; re-create it with this version"
            )
        self._positions = f["positions"][()]
        self._numbers = f["numbers"][()]
        self._offsets = f["offsets"][()]
        self._cells = f["cells"][()]
        self.indices = f["index"][()]
        self._split = f["split"][()]
        self._properties = {k: v[()] for k, v in f["properties"].items()}
        self.property_units = {k: str(v.attrs.get("units", "")) for k, v in f["properties"].items()}
        self._arrays = {k: v[()] for k, v in f["arrays"].items()}
        self.array_units = {k: str(v.attrs.get("units", "")) for k, v in f["arrays"].items()}
        self.protocol = json.loads(f.attrs.get("protocol", "null")) or {}
        self.package_version = str(f.attrs.get("package_version", ""))
        n = len(self._cells)
        if len(self._offsets) != n + 1 or self._offsets[-1] != len(self._positions):
            raise DatasetFormatError(f"{self.path} is truncated or inconsistent; re-create it")

    def __len__(self) -> int:
        return len(self._cells)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for a dataset of {len(self)}")
        i = int(i) % len(self)
        lo, hi = self._offsets[i], self._offsets[i + 1]
        atoms = Atoms(
            numbers=self._numbers[lo:hi], positions=self._positions[lo:hi],
            cell=self._cells[i], pbc=True,
        )
        atoms.info.update({k: float(v[i]) for k, v in self._properties.items()})
        atoms.info.update({k: v[i].copy() for k, v in self._arrays.items()})
        atoms.info["sample_index"] = int(self.indices[i])
        return atoms

    @property
    def property_names(self) -> list[str]:
        """Names of the scalar property columns."""
        return list(self._properties)

    def properties(self, name: str) -> np.ndarray:
        """One property column, shape (n_samples,), in :attr:`property_units`."""
        try:
            return self._properties[name].copy()
        except KeyError:
            raise unknown_name("property", name, self._properties) from None

    def split_indices(self, split: str) -> np.ndarray:
        """Row numbers of ``"train"`` or ``"test"`` (held-out) samples."""
        codes = {"train": 0, "test": 1}
        if split not in codes:
            raise unknown_name("split", split, codes)
        return np.flatnonzero(self._split == codes[split])

    def subset(self, split: str) -> list[Atoms]:
        """The structures of one split."""
        return [self[int(i)] for i in self.split_indices(split)]

    def content_hash(self) -> str:
        """SHA-256 over positions, numbers, cells and property columns."""
        h = hashlib.sha256()
        for array in (self._positions, self._numbers, self._offsets, self._cells):
            h.update(np.ascontiguousarray(array).tobytes())
        for name in sorted(self._properties):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self._properties[name]).tobytes())
        return h.hexdigest()

    def summary(self) -> dict:
        """Counts and property ranges, as printed by ``ase-amden dataset info``."""
        sizes = np.diff(self._offsets)
        columns = {
            name: {
                "units": self.property_units[name],
                "min": float(np.nanmin(v)), "mean": float(np.nanmean(v)),
                "max": float(np.nanmax(v)),
            }
            for name, v in self._properties.items() if len(v)
        }
        return {
            "path": self.path,
            "protocol": self.protocol.get("name", ""),
            "samples": len(self),
            "train": int(np.sum(self._split == 0)),
            "test": int(np.sum(self._split == 1)),
            "atoms_per_sample": [int(sizes.min()), int(sizes.max())] if len(sizes) else [0, 0],
            "elements": sorted({int(z) for z in np.unique(self._numbers)}),
            "properties": columns,
        }

    # writing -----------------------------------------------------------------

    @classmethod
    def write(
        cls,
        path: str | os.PathLike,
        images: Iterable[Atoms],
        *,
        units: dict[str, str] | None = None,
        protocol: dict | None = None,
        indices: Sequence[int] | None = None,
        held_out_mask: Sequence[bool] | None = None,
    ) -> AmorphousDataset:
        """Write structures (properties from ``atoms.info``) as a dataset, atomically.

        Scalar ``atoms.info`` values become property columns (every structure must
        have the same keys), array values become ``/arrays``. ``indices`` are the
        samples' protocol indices (default 0..n-1); they decide the split unless
        ``held_out_mask`` gives it per structure (True: held out).
        """
        images = as_images(images) if images else []
        if indices is None:
            indices = [int(a.info.get("sample_index", k)) for k, a in enumerate(images)]
        units = dict(units or {})
        scalars, arrays = _collect_info(images)
        sizes = [len(a) for a in images]
        path = os.fspath(path)
        with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["package_version"] = __version__
            f.attrs["protocol"] = json.dumps(protocol or {})
            f.attrs["created"] = datetime.now(timezone.utc).isoformat()
            pos = [a.get_positions() for a in images]
            f["positions"] = np.concatenate(pos) if pos else np.zeros((0, 3))
            nums = [a.numbers for a in images]
            f["numbers"] = np.concatenate(nums).astype(np.int32) if nums else np.zeros(0, int)
            f["offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            f["cells"] = np.array([a.cell[:] for a in images]).reshape(-1, 3, 3)
            f["index"] = np.asarray(indices, dtype=np.int64)
            split = ([held_out(i) for i in indices] if held_out_mask is None
                     else list(held_out_mask))
            if len(split) != len(indices):
                raise ValueError(
                    f"held_out_mask has {len(split)} entries for {len(indices)} samples")
            f["split"] = np.asarray(split, dtype=np.int8)
            group = f.create_group("properties")
            for name, values in scalars.items():
                group[name] = np.asarray(values, dtype=float)
                group[name].attrs["units"] = units.get(name, "")
            group = f.create_group("arrays")
            for name, values in arrays.items():
                group[name] = np.asarray(values, dtype=float)
                group[name].attrs["units"] = units.get(name, "")
        return cls(path)

    @classmethod
    def from_file(cls, source: str, path: str, **kwargs) -> AmorphousDataset:
        """Convert any file ase.io reads (extxyz, ase.db, ...) into a dataset.

        Properties come from ``atoms.info`` (extxyz) or the rows' key-value pairs (ase.db).
        """
        if source.endswith(".db"):
            from ase.db import connect

            images = []
            for row in connect(source).select():
                atoms = row.toatoms()
                atoms.info.update(row.key_value_pairs)
                atoms.info.update(row.data)
                images.append(atoms)
        else:
            from ase.io import read

            images = read(source, index=":")
        return cls.write(path, images, **kwargs)

    @classmethod
    def merge(cls, path: str | os.PathLike, sources: Sequence[str | os.PathLike], *,
              properties: Sequence[str] | None = None) -> AmorphousDataset:
        """Write the samples of several datasets into one, each keeping its split.

        ``properties`` (default: the columns every source has) are kept; a named column
        missing from a source is an error. Samples are renumbered 0..n-1; the protocol
        records each source with its protocol and sample count.
        """
        datasets = [source if isinstance(source, cls) else cls(source) for source in sources]
        if not datasets:
            raise ValueError("merge needs at least one source dataset")
        common = set.intersection(*(set(ds.property_names) for ds in datasets))
        keep = list(properties) if properties is not None else [
            n for n in datasets[0].property_names if n in common]
        for ds in datasets:
            missing = [n for n in keep if n not in ds.property_names]
            if missing:
                raise DatasetFormatError(
                    f"{ds.path} has no property {missing[0]!r} (it has "
                    f"{', '.join(ds.property_names) or 'none'}); add it or leave it out of "
                    "properties")
        images, held = [], []
        for ds in datasets:
            for i in range(len(ds)):
                atoms = ds[i]
                atoms.info = {n: atoms.info[n] for n in keep}
                images.append(atoms)
                held.append(bool(ds._split[i] == 1))
        units = {n: datasets[0].property_units[n] for n in keep}
        protocol = {"name": "merged", "sources": [
            {"path": ds.path, "protocol": ds.protocol.get("name", ""), "samples": len(ds)}
            for ds in datasets]}
        return cls.write(path, images, units=units, protocol=protocol,
                         indices=range(len(images)), held_out_mask=held)

    def to_file(self, path: str, format: str | None = None) -> None:
        """Write all structures with ase.io (extxyz, ...) or to an ase.db (``.db``).

        Scalar properties go to extxyz ``info`` or to the rows' key-value pairs;
        per-sample arrays go to extxyz ``info`` as lists or to the rows' ``data``.
        """
        images = list(self)
        if path.endswith(".db") or format == "db":
            from ase.db import connect

            with connect(path) as db:
                for atoms in images:
                    scalars = {k: v for k, v in atoms.info.items() if np.ndim(v) == 0}
                    arrays = {k: v for k, v in atoms.info.items() if np.ndim(v) > 0}
                    atoms.info = {}
                    db.write(atoms, key_value_pairs=scalars, data=arrays)
            return
        from ase.io import write

        write(path, images, format=format)

def _collect_info(images: list[Atoms]) -> tuple[dict[str, list], dict[str, list]]:
    """Split ``atoms.info`` into scalar columns and array columns (same keys everywhere)."""
    skip = {"sample_index"}
    scalars: dict[str, list] = {}
    arrays: dict[str, list] = {}
    if not images:
        return scalars, arrays
    keys = [k for k in images[0].info if k not in skip]
    for k, atoms in enumerate(images):
        if set(atoms.info) - skip != set(keys):
            raise DatasetFormatError(
                f"structure {k} has info keys {sorted(set(atoms.info) - skip)} but structure 0 "
                f"has {sorted(keys)}; every structure needs the same properties"
            )
    for key in keys:
        values = [a.info[key] for a in images]
        if all(np.ndim(v) == 0 and isinstance(v, (int, float, np.number)) for v in values):
            scalars[key] = [float(v) for v in values]
        elif all(isinstance(v, (np.ndarray, list)) for v in values):
            arrays[key] = [np.asarray(v, dtype=float) for v in values]
    return scalars, arrays
