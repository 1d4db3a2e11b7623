"""Checks of generation requests and of generated structures.

A request is checked before anything is sampled (densities given in the wrong unit,
guidance that cannot act); a generated structure is checked before it is returned or
written: closest pairs against the model's training data, no atoms left, a composition
that differs from the one asked for, positions that are not finite, and network output
so large that the sampler only wrapped noise into the cell.

Results go into flat ``atoms.info`` keys: ``check_min_distance`` (closest pair, Å;
absent when no two atoms lie within :data:`SEARCH_CUTOFF`) and ``check_warnings``
(``"none"`` when the structure passed, else the problems joined by ``"; "``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols, covalent_radii
from matscipy.neighbours import neighbour_list

from .errors import InvalidArgumentError, StructureCheckError

__all__ = [
    "CHECK_MODES",
    "check_mode",
    "MAX_NUMBER_DENSITY",
    "check_number_density",
    "check_structures",
    "min_distance_limits",
    "pair_min_distances",
]

#: ``generate(check=...)``: warn (default), raise :class:`StructureCheckError`, or skip.
CHECK_MODES = ("warn", "strict", "off")
#: Number densities above this (atoms/Å^3) are taken for a unit mistake (diamond: 0.176).
MAX_NUMBER_DENSITY = 0.2
#: A pair closer than this fraction of the closest such pair in the training data is flagged.
TRAINING_DISTANCE_FACTOR = 0.75
#: Without training distances in the card, pairs closer than this times the sum of the
#: covalent radii are flagged (Si-Si 1.33 Å, Si-O 1.06 Å, O-O 0.79 Å).
COVALENT_FACTOR = 0.6
#: Closest pairs are searched up to this distance, Å.
SEARCH_CUTOFF = 4.0
#: Failing structures named in the one warning of :func:`check_structures`.
_SHOWN = 3
#: Largest plausible absolute network output (noise, velocity: order 1-10).
MAX_NETWORK_OUTPUT = 1e3


def pair_name(a: int, b: int) -> str:
    """Key of an element pair by atomic numbers, lighter first: ``pair_name(14, 8) == "O-Si"``."""
    a, b = sorted((a, b))
    return f"{chemical_symbols[a]}-{chemical_symbols[b]}"


def pair_min_distances(structures: Sequence[Atoms],
                       cutoff: float = SEARCH_CUTOFF) -> dict[str, float]:
    """Closest distance of every element pair over ``structures``, Å.

    Keys are ``"A-B"`` with A the lighter element (``"O-Si"``); pairs with no two atoms
    within ``cutoff`` are left out. Stored in ``card.training["min_distances"]``.

    >>> from ase.build import bulk
    >>> round(pair_min_distances([bulk("Si", "diamond", a=5.431, cubic=True)])["Si-Si"], 3)
    2.352
    """
    closest: dict[str, float] = {}
    for atoms in structures:
        i, j, d = neighbour_list("ijd", atoms, cutoff)
        if not len(d):
            continue
        numbers = atoms.numbers
        low = np.minimum(numbers[i], numbers[j])
        high = np.maximum(numbers[i], numbers[j])
        for a, b in set(zip(low.tolist(), high.tolist(), strict=True)):
            name = pair_name(a, b)
            value = float(d[(low == a) & (high == b)].min())
            closest[name] = min(value, closest.get(name, math.inf))
    return closest


def min_distance_limits(elements: Sequence[str], training: Mapping | None = None, *,
                        training_factor: float = TRAINING_DISTANCE_FACTOR,
                        covalent_factor: float = COVALENT_FACTOR) -> dict[str, float]:
    """Smallest acceptable distance per element pair, Å.

    ``training_factor`` times the closest pair of the training data
    (``training["min_distances"]``, written by the trainer) where known, else
    ``covalent_factor`` times the sum of the covalent radii.
    """
    known = dict((training or {}).get("min_distances") or {})
    numbers = [atomic_numbers[s] for s in elements]
    limits = {}
    for a in numbers:
        for b in numbers:
            name = pair_name(a, b)
            if name in known:
                limits[name] = training_factor * float(known[name])
            else:
                limits[name] = covalent_factor * float(covalent_radii[a] + covalent_radii[b])
    return limits


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`CHECK_MODES`, else an :class:`InvalidArgumentError`."""
    if mode not in CHECK_MODES:
        raise InvalidArgumentError(
            f"check must be one of {', '.join(map(repr, CHECK_MODES))}, got {mode!r}"
        )
    return mode


def check_number_density(density: float, what: str = "density") -> None:
    """Refuse a number density that can only be a unit mistake (above 0.2 atoms/Å^3).

    Raises
    ------
    InvalidArgumentError
        Naming the value, e.g. for ``2.33`` (g/cm^3 of silicon passed as atoms/Å^3).

    """
    if density > MAX_NUMBER_DENSITY:
        raise InvalidArgumentError(
            f"{what} = {density:.4g} atoms/Å^3 is impossible (no solid exceeds "
            f"{MAX_NUMBER_DENSITY} atoms/Å^3): density is a number density in atoms/Å^3; "
            f"{density:g} looks like g/cm3. Convert it (a-Si: 2.29 g/cm^3 = 0.049 atoms/Å^3), "
            "or give a larger cell or fewer atoms"
        )


def _closest_pairs(atoms: Atoms, limits: Mapping[str, float]) -> tuple[float | None, list[str]]:
    """Closest distance (None if none within the search cutoff) and the pairs too close."""
    i, j, d = neighbour_list("ijd", atoms, SEARCH_CUTOFF)
    if not len(d):
        return None, []
    problems = []
    numbers = atoms.numbers
    low = np.minimum(numbers[i], numbers[j])
    high = np.maximum(numbers[i], numbers[j])
    for a, b in sorted(set(zip(low.tolist(), high.tolist(), strict=True))):
        name = pair_name(a, b)
        limit = limits.get(name)
        pair = d[(low == a) & (high == b)]
        if limit is None:
            continue
        close = int((pair < limit).sum()) // 2  # each pair is listed twice
        if close:
            problems.append(
                f"{close} {name} pair(s) closer than {limit:.2f} Å (closest {pair.min():.2f} Å)"
            )
    return float(d.min()), problems


def _problems(atoms: Atoms, limits: Mapping[str, float], symbols: Sequence[str] | None,
              largest_output: float | None) -> list[str]:
    if len(atoms) == 0:
        return ["no atoms (every node ended as a ghost): use a larger cell, lower guidance "
                "or fix the atoms with composition="]
    if not np.isfinite(atoms.positions).all():
        return ["non-finite positions"]
    problems = []
    if largest_output is not None and not largest_output <= MAX_NETWORK_OUTPUT:
        problems.append(f"the network output reached {largest_output:.3g} (plausible: below "
                        f"{MAX_NETWORK_OUTPUT:g}); the positions are noise wrapped into the cell")
    if symbols is not None and sorted(atoms.get_chemical_symbols()) != sorted(symbols):
        problems.append(f"composition {atoms.get_chemical_formula()} differs from the one "
                        f"asked for, {Atoms(list(symbols)).get_chemical_formula()}")
    closest, close = _closest_pairs(atoms, limits)
    if closest is not None:
        atoms.info["check_min_distance"] = closest
    problems.extend(close)
    return problems


def check_structures(
    images: Sequence[Atoms],
    elements: Sequence[str],
    training: Mapping | None = None,
    *,
    mode: str = "warn",
    symbols: Sequence[str] | None = None,
    largest_output: float | None = None,
) -> list[Atoms]:
    """Check generated structures; record the results in their ``info``.

    Parameters
    ----------
    images
        Generated structures (their ``info`` is updated in place).
    elements, training
        The model's elements and ``card.training`` (closest training pairs, see
        :func:`min_distance_limits`).
    mode
        ``"warn"``: a ``UserWarning`` per failing structure; ``"strict"``: raise;
        ``"off"``: no checks, ``info`` untouched.
    symbols
        The fixed composition asked for (one symbol per atom), if any.
    largest_output
        Largest absolute network output seen while sampling.

    Returns
    -------
    list of ase.Atoms
        ``images``.

    Raises
    ------
    StructureCheckError
        With ``mode="strict"``, naming every failing structure and its problems.

    """
    if check_mode(mode) == "off":
        return list(images)
    limits = min_distance_limits(elements, training)
    failures = []
    for index, atoms in enumerate(images):
        problems = _problems(atoms, limits, symbols, largest_output)
        atoms.info["check_warnings"] = "; ".join(problems) or "none"  # extxyz drops ""
        if problems:
            failures.append(f"structure {index}: {'; '.join(problems)}")
    if failures and mode == "strict":
        raise StructureCheckError(
            "generated structures failed their checks: " + " | ".join(failures)
            + "; use more sampler steps, or check='warn' to keep them"
        )
    if failures:
        shown = "; ".join(failures[:_SHOWN]) + ("; ..." if len(failures) > _SHOWN else "")
        warnings.warn(f"{len(failures)} of {len(images)} structure(s) failed their checks: "
                      f"{shown} (more sampler steps usually help; atoms.info['check_warnings'] "
                      "holds each structure's problems)", UserWarning, stacklevel=3)
    return list(images)
