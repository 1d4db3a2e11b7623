"""Input checks shared by every analysis function.

Every public analysis function accepts one :class:`ase.Atoms` or a sequence of them and
passes it through :func:`as_images` first, so that all of them reject the same bad
inputs with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from ..errors import unknown_name


def perpendicular_widths(atoms: Atoms) -> np.ndarray:
    """Distances between opposite faces of the cell, Å, shape (3,)."""
    return 1.0 / np.linalg.norm(atoms.cell.reciprocal(), axis=1)


def largest_rmax(images: list[Atoms]) -> float:
    """Half the smallest perpendicular cell width over all images, Å.

    A sphere of this radius around any atom contains no periodic image of that atom
    twice, so distances up to it are all minimum-image distances.
    """
    return float(min(perpendicular_widths(atoms).min() for atoms in images) / 2.0)


def check_rmax(images: list[Atoms], rmax: float, what: str = "rmax") -> None:
    """Raise ValueError if ``rmax`` exceeds :func:`largest_rmax` of ``images``.

    Raises
    ------
    ValueError
        Naming the largest allowed value and the fix.

    """
    if rmax <= 0:
        raise ValueError(f"{what} must be positive, got {rmax}")
    limit = largest_rmax(images)
    if rmax > limit + 1e-12:
        raise ValueError(
            f"{what}={rmax:g} Å is larger than half the smallest perpendicular cell width; "
            f"the largest allowed {what} is {limit:.4f} Å. Use {what} <= {limit:.4f}, or, for a "
            "crystal only, repeat the cell (atoms.repeat((2, 2, 2))); repeating an amorphous "
            "cell adds periodic artefacts"
        )


def symbols_present(images: Iterable[Atoms]) -> list[str]:
    """Sorted chemical symbols that occur in any of the images."""
    numbers = set()
    for atoms in images:
        numbers.update(int(z) for z in np.unique(atoms.numbers))
    return sorted(chemical_symbols[z] for z in numbers)


def parse_species(spec: str | Sequence[str], count: int, images: list[Atoms]) -> tuple[int, ...]:
    """Turn ``"Si-O"`` (or ``("Si", "O")``) into atomic numbers, checking they are present.

    Parameters
    ----------
    spec
        Element symbols joined by ``-`` or given as a sequence.
    count
        Required number of symbols (2 for a pair, 3 for a triplet).
    images
        Structures that every element must occur in.

    Raises
    ------
    ValueError
        If the number of symbols is wrong.
    UnknownNameError
        If a symbol does not occur in every structure (the message lists those present).

    """
    symbols = spec.split("-") if isinstance(spec, str) else list(spec)
    symbols = [s.strip() for s in symbols]
    if len(symbols) != count:
        example = "'Si-O'" if count == 2 else "'O-Si-O'"
        raise ValueError(f"expected {count} element symbols like {example}, got {spec!r}")
    for index, atoms in enumerate(images):
        present = set(atoms.get_chemical_symbols())
        for symbol in symbols:
            if symbol not in present:
                err = unknown_name("element", symbol, present)
                raise type(err)(f"{err} (in structure {index})")
    return tuple(atomic_numbers[s] for s in symbols)
