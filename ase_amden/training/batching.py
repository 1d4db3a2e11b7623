"""From lists of ``ase.Atoms`` to the batched tensors the denoiser takes.

Structures are concatenated into one atom set with a per-atom system index, in the
style of torch-sim. Cells are ``(B, 3, 3)`` with **rows = lattice vectors** (ASE's
convention).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers, chemical_symbols

from ase_amden.diffusion.ghosts import add_ghosts
from ase_amden.errors import InvalidStructureError, UnknownNameError
from ase_amden.models.card import ModelCard

#: Conversion from amu/Å^3 to g/cm^3.
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


@dataclass
class Batch:
    """A batch of periodic structures as flat tensors.

    Attributes
    ----------
    positions
        ``(N, 3)`` Cartesian positions, Å, wrapped into their cells.
    elements
        ``(N, C)`` one-hot element classes (``C`` = vocabulary size + 1, the
        last class is the ghost).
    cell
        ``(B, 3, 3)`` cells, Å; rows are lattice vectors.
    system_idx
        ``(N,)`` long, index of the structure each atom belongs to.
    properties
        ``(B, P)`` normalised property values; entries where ``property_mask``
        is False hold 0.
    property_mask
        ``(B, P)`` bool, True where the property value is known.

    """

    positions: torch.Tensor
    elements: torch.Tensor
    cell: torch.Tensor
    system_idx: torch.Tensor
    properties: torch.Tensor
    property_mask: torch.Tensor

    @property
    def n_systems(self) -> int:
        """Number of structures ``B``."""
        return int(self.cell.shape[0])

    def with_ghosts(self, rho_max: float | None, generator: torch.Generator) -> Batch:
        """Add ghost atoms up to ``floor(rho_max V)`` nodes per structure (AMDEN, ghost atoms).

        Ghosts sit at uniform random positions and carry the last (ghost) class; see
        :func:`ase_amden.diffusion.add_ghosts`. ``rho_max=None`` returns the batch as is.
        """
        if rho_max is None:
            return self
        positions, elements, system_idx = add_ghosts(
            self.positions, self.elements, self.cell, self.system_idx, rho_max, generator
        )
        return Batch(positions, elements, self.cell, system_idx, self.properties,
                     self.property_mask)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> Batch:
        """Move to ``device``; floating tensors (not the mask/index) take ``dtype``."""
        return Batch(
            positions=self.positions.to(device=device, dtype=dtype),
            elements=self.elements.to(device=device, dtype=dtype),
            cell=self.cell.to(device=device, dtype=dtype),
            system_idx=self.system_idx.to(device=device),
            properties=self.properties.to(device=device, dtype=dtype),
            property_mask=self.property_mask.to(device=device),
        )


def element_vocabulary(structures: Sequence[Atoms]) -> list[str]:
    """Chemical symbols present in ``structures``, sorted by atomic number.

    >>> from ase import Atoms
    >>> element_vocabulary([Atoms("SiO2"), Atoms("Li")])
    ['Li', 'O', 'Si']
    """
    numbers: set[int] = set()
    for atoms in structures:
        numbers.update(int(z) for z in np.unique(atoms.numbers))
    return [chemical_symbols[z] for z in sorted(numbers)]


def property_values(
    structures: Sequence[Atoms], names: Sequence[str], log10: Sequence[bool] = ()
) -> np.ndarray:
    """Property table from ``atoms.info``: ``(len(structures), len(names))``, NaN if absent.

    Columns flagged in ``log10`` hold ``log10`` of the values, which must then be positive.

    Raises
    ------
    InvalidStructureError
        For a value ``<= 0`` in a ``log10`` column.

    """
    table = np.full((len(structures), len(names)), np.nan)
    for i, atoms in enumerate(structures):
        for j, name in enumerate(names):
            value = atoms.info.get(name)
            if value is not None:
                table[i, j] = float(value)
    for j, name in enumerate(names):
        if j < len(log10) and log10[j]:
            column = table[:, j]
            bad = np.flatnonzero(np.isfinite(column) & (column <= 0))
            if bad.size:
                raise InvalidStructureError(
                    f"property {name!r} is conditioned on its log10 but structure {bad[0]} has "
                    f"{name}={column[bad[0]]}; every value must be positive"
                )
            with np.errstate(invalid="ignore"):
                table[:, j] = np.log10(column)
    return table


def property_statistics(
    structures: Sequence[Atoms], names: Sequence[str], log10: Sequence[bool] = ()
) -> tuple[list[float], list[float], list[list[float]]]:
    """Mean, standard deviation and ``[min, max]`` of each property (NaN ignored).

    Computed on ``log10`` of the columns flagged in ``log10``. A property that never
    varies gets std 1 so that normalisation stays finite.

    Raises
    ------
    UnknownNameError
        If a property is absent from every structure.

    """
    table = property_values(structures, names, log10)
    means, stds, ranges = [], [], []
    for j, name in enumerate(names):
        column = table[:, j][np.isfinite(table[:, j])]
        if column.size == 0:
            present = sorted({k for a in structures for k in a.info})
            raise UnknownNameError(
                f"property {name!r} is in no training structure's atoms.info; "
                f"keys present: {present}. Choose property names from these."
            )
        std = float(column.std())
        means.append(float(column.mean()))
        stds.append(std if std > 0 else 1.0)
        ranges.append([float(column.min()), float(column.max())])
    return means, stds, ranges


def collate(
    structures: Sequence[Atoms],
    elements: Sequence[str],
    property_names: Sequence[str] = (),
    property_mean: Sequence[float] = (),
    property_std: Sequence[float] = (),
    property_log10: Sequence[bool] = (),
) -> Batch:
    """Batch ``structures`` into float64 CPU tensors (use :meth:`Batch.to` to move them).

    Parameters
    ----------
    structures
        Periodic structures; properties are read from ``atoms.info``.
    elements
        Element vocabulary; class ``k`` is ``elements[k]``, class ``len(elements)``
        the ghost.
    property_names, property_mean, property_std, property_log10
        Properties to read and their normalisation ``(y - mean) / std`` (of ``log10 y``
        where ``property_log10`` says so). A missing or NaN value gives
        ``property_mask = False``.

    Raises
    ------
    UnknownNameError
        If a structure holds an element outside the vocabulary.

    """
    index = {atomic_numbers[s]: k for k, s in enumerate(elements)}
    n_classes = len(elements) + 1
    positions, classes, cells, system_idx = [], [], [], []
    for b, atoms in enumerate(structures):
        try:
            atom_classes = np.array([index[int(z)] for z in atoms.numbers], dtype=np.int64)
        except KeyError as err:
            symbol = chemical_symbols[int(err.args[0])]
            raise UnknownNameError(
                f"element {symbol!r} of structure {b} is not in the model's vocabulary "
                f"{list(elements)}; train a model whose elements include it."
            ) from None
        positions.append(atoms.get_positions(wrap=True))
        classes.append(atom_classes)
        cells.append(np.asarray(atoms.cell[:], dtype=float))
        system_idx.append(np.full(len(atoms), b, dtype=np.int64))
    class_idx = torch.from_numpy(np.concatenate(classes))
    table = property_values(structures, property_names, property_log10)
    mask = np.isfinite(table)
    normalised = (table - np.asarray(property_mean, float)) / np.asarray(property_std, float)
    return Batch(
        positions=torch.from_numpy(np.concatenate(positions)),
        elements=torch.nn.functional.one_hot(class_idx, n_classes).double(),
        cell=torch.from_numpy(np.stack(cells)),
        system_idx=torch.from_numpy(np.concatenate(system_idx)),
        properties=torch.from_numpy(np.where(mask, normalised, 0.0)),
        property_mask=torch.from_numpy(mask),
    )


def concatenate(batches: Sequence[Batch]) -> Batch:
    """One batch of the structures of several (on their device; system indices renumbered).

    Equals :func:`collate` of all their structures at once, so batches made once per
    structure and kept on the device give the same training batches.
    """
    offsets, systems = [], 0
    for batch in batches:
        offsets.append(batch.system_idx + systems)
        systems += batch.n_systems
    return Batch(
        positions=torch.cat([b.positions for b in batches]),
        elements=torch.cat([b.elements for b in batches]),
        cell=torch.cat([b.cell for b in batches]),
        system_idx=torch.cat(offsets),
        properties=torch.cat([b.properties for b in batches]),
        property_mask=torch.cat([b.property_mask for b in batches]),
    )


def collate_for(structures: Sequence[Atoms], card: ModelCard) -> Batch:
    """:func:`collate` with the vocabulary and property normalisation of a model card."""
    return collate(structures, card.elements, card.property_names, card.property_mean,
                   card.property_std, card.property_log10)


def number_density(atoms: Atoms) -> float:
    """Atoms per Å^3."""
    return float(len(atoms) / abs(atoms.cell.volume))


def mass_density(atoms: Atoms) -> float:
    """Mass density, g/cm^3."""
    mass = float(atomic_masses[atoms.numbers].sum())
    return float(mass / abs(atoms.cell.volume) * AMU_PER_A3_TO_G_PER_CM3)


def data_hash(structures: Sequence[Atoms], property_names: Sequence[str] = ()) -> str:
    """SHA-256 over positions, numbers, cells and the named property columns.

    Positions and cells enter as float64, numbers as int64, properties as float64
    (NaN where absent), structure by structure, so the hash identifies the
    training data independently of how it was stored.
    """
    digest = hashlib.sha256()
    for atoms in structures:
        digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(atoms.cell[:], dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(property_values(structures, property_names)).tobytes())
    digest.update(",".join(property_names).encode())
    return digest.hexdigest()
