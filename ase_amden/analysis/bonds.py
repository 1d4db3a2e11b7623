"""Bond cutoffs: one distance, one per element pair, or from covalent radii."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ase.data import atomic_numbers, covalent_radii

from ..errors import InvalidArgumentError

PairKey = str | tuple[str | int, str | int]
Cutoff = float | Mapping[PairKey, float]

#: AMShortcut (B.6): atoms are bonded below 1.3 times the sum of their covalent radii.
COVALENT_FACTOR = 1.3
#: Longest bond cutoff accepted, Å (longer ones count most of the cell as neighbours).
MAX_CUTOFF = 20.0


def _distance(value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be a distance in Å, got {value!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_CUTOFF):
        raise InvalidArgumentError(
            f"{what} must be a positive, finite distance up to {MAX_CUTOFF:g} Å, got {value}; "
            "bond cutoffs are typically 1.5-3.5 Å"
        )
    return value


def _number(symbol: str | int) -> int:
    if isinstance(symbol, str):
        try:
            return atomic_numbers[symbol.strip()]
        except KeyError:
            raise InvalidArgumentError(f"{symbol!r} is not a chemical symbol (like 'Si')") from None
    return int(symbol)


def pair_cutoffs(cutoff: Cutoff) -> float | dict[tuple[int, int], float]:
    """Normalise a cutoff for :func:`matscipy.neighbours.neighbour_list`.

    Parameters
    ----------
    cutoff
        One distance in Å for every pair, or a mapping from element pairs to distances,
        keys like ``"Si-O"``, ``("Si", "O")`` or ``(14, 8)``; order within a pair does
        not matter and pairs not listed are never bonded.

    Returns
    -------
    float or dict
        The float, or a dict from atomic-number pairs to Å.

    Raises
    ------
    InvalidArgumentError
        For a cutoff that is NaN, infinite, not positive or above :data:`MAX_CUTOFF`.

    """
    if not isinstance(cutoff, Mapping):
        return _distance(cutoff, "cutoff")
    result = {}
    for key, value in cutoff.items():
        parts = key.split("-") if isinstance(key, str) else list(key)
        if len(parts) != 2:
            raise InvalidArgumentError(f"cutoff keys are element pairs like 'Si-O', got {key!r}")
        result[(_number(parts[0]), _number(parts[1]))] = _distance(value, f"cutoff {key!r}")
    if not result:
        raise InvalidArgumentError(
            "the cutoff dict is empty; give at least one pair like {'Si-O': 2.0}"
        )
    return result


def covalent_cutoffs(
    symbols: Iterable[str],
    factor: float = COVALENT_FACTOR,
    between: tuple[Sequence[str], Sequence[str]] | None = None,
) -> dict[tuple[int, int], float]:
    """Bond cutoffs ``factor * (r_a + r_b)`` from ASE's covalent radii (Si 1.11, O 0.66 Å).

    Parameters
    ----------
    symbols
        Elements present.
    factor
        Multiple of the sum of covalent radii.
    between
        If given, only pairs with one element from each group are bonded (e.g. Si-O
        bonds only for a silica network).

    Returns
    -------
    dict
        Atomic-number pairs to cutoffs in Å.

    """
    numbers = sorted({_number(s) for s in symbols})
    result = {}
    for a in numbers:
        for b in numbers:
            if between is not None:
                left = {_number(s) for s in between[0]}
                right = {_number(s) for s in between[1]}
                if not ((a in left and b in right) or (a in right and b in left)):
                    continue
            result[(a, b)] = factor * (covalent_radii[a] + covalent_radii[b])
    return result
