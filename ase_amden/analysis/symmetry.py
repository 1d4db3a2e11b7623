"""Crystal symmetry with spglib: flags generated or relaxed structures that crystallized.

An amorphous structure has no symmetry operation but the identity (space group P1 and no
pure translation within the cell). A structure in which spglib finds any other operation at
tolerance ``symprec`` is flagged crystalline.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import spglib
from ase import Atoms

from ..errors import InvalidStructureError

__all__ = ["SYMPREC", "Symmetry", "flag_crystalline", "symmetry"]

#: Default position tolerance of the symmetry search, Å.
SYMPREC = 0.1


@dataclass(frozen=True)
class Symmetry:
    """Space group of a structure.

    Attributes
    ----------
    number
        International space-group number (1 = P1).
    symbol
        Hermann-Mauguin symbol, e.g. ``"Fd-3m"``.
    n_operations
        Symmetry operations found in the cell, pure translations of a supercell included.
    crystalline
        True when there is any operation other than the identity.

    """

    number: int
    symbol: str
    n_operations: int

    @property
    def crystalline(self) -> bool:
        """True when the structure has a symmetry beyond the identity."""
        return self.n_operations > 1

    def __str__(self) -> str:
        return f"{self.symbol} ({self.number})"


def symmetry(atoms: Atoms, symprec: float = SYMPREC) -> Symmetry:
    """Space group of periodic ``atoms`` found by spglib with position tolerance ``symprec`` Å.

    >>> from ase.build import bulk
    >>> str(symmetry(bulk("Si", cubic=True)))
    'Fd-3m (227)'
    """
    if not len(atoms) or not atoms.pbc.all():
        raise InvalidStructureError(
            "symmetry needs a periodic structure with atoms; got "
            f"{len(atoms)} atoms with pbc={atoms.pbc.tolist()}"
        )
    if not symprec > 0:
        raise ValueError(f"symprec must be a positive distance in Å, got {symprec}")
    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():
        # spglib >= 2.5 warns on every call until errors raise by default (3.0); a failed
        # search returns None, which here means no symmetry found.
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if dataset is None:
        return Symmetry(number=1, symbol="P1", n_operations=1)
    return Symmetry(number=int(dataset.number), symbol=str(dataset.international),
                    n_operations=len(dataset.rotations))


def flag_crystalline(atoms: Atoms, symprec: float = SYMPREC) -> Atoms:
    """Record the symmetry in ``atoms.info`` (in place) and return ``atoms``.

    Sets ``crystalline`` (bool), ``space_group`` (e.g. ``"P1"``) and ``space_group_number``;
    structures without atoms are left unflagged.
    """
    if len(atoms):
        found = symmetry(atoms, symprec)
        atoms.info.update(crystalline=found.crystalline, space_group=found.symbol,
                          space_group_number=found.number)
    return atoms
