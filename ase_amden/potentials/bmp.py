"""BMP-shrm, the force field of the seeds' multi-element oxide glasses, for LAMMPS.

Bertani, Menziani and Pedone, Phys. Rev. Mater. 5, 045602 (2021): formal-fraction
charges with damped shifted-force Coulomb (``coul/dsf``), tabulated cation-oxygen pair
terms (PMMCS and BMP parameter sets), a few Buckingham cation-cation terms and screened
harmonic three-body terms (``nb3b/screened``). The authors' LAMMPS files ship with the
package (``data/BMP.zip``); this module reads ``in.BMP`` from it, so the numbers used are
exactly the published ones, and writes the commands for the species present.

Species are element symbols, except for elements with two oxidation states in the force
field, which need a choice: ``Fe2``/``Fe3``, ``Mn2``/``Mn3``, ``Cu1``/``Cu2``,
``Ce3``/``Ce4``, ``V4``/``V5``. Boron is not available: its B-O table depends on the
composition (``in.BMP`` says to make one per glass) and is not in the published files.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ase.data import atomic_masses, atomic_numbers

from ..errors import UnknownNameError

ARCHIVE = Path(__file__).with_name("data") / "BMP.zip"
REFERENCE = "Bertani, Menziani and Pedone, Phys. Rev. Mater. 5, 045602 (2021)"

# LAMMPS type k + 1 of in.BMP is SPECIES[k] (the file's mass comments, normalised).
SPECIES = (
    "Si", "O", "Li", "Na", "K", "Fe2", "Fe3", "Al", "P", "Ca", "Be", "Sr", "Ba", "Sc", "Ti",
    "Zr", "Cr", "Mn2", "Mn3", "Co", "Ni", "Cu1", "Cu2", "Ag", "Zn", "Ge", "Sn", "Nd", "Gd",
    "Er", "Ga", "Ce3", "Ce4", "V4", "V5", "Mg", "Eu", "B",
)
UNAVAILABLE = {"B": "its B-O table depends on the glass composition and is not published"}


def element_of(species: str) -> str:
    """Chemical symbol of a species name (``"Fe3"`` -> ``"Fe"``)."""
    return species.rstrip("0123456789")


@dataclass(frozen=True)
class _Terms:
    """The parts of ``in.BMP`` that define the force field, by in.BMP type number."""

    charges: dict[int, float]
    tables: dict[tuple[int, int], tuple[str, str, float]]  # file name, keyword, cutoff (Å)
    buckingham: dict[tuple[int, int], tuple[float, float, float, float]]  # A, rho, C, cutoff
    coulomb: str  # coul/dsf arguments: alpha (1/Å) and cutoff (Å)
    three_body_file: str
    three_body_names: tuple[str, ...]  # element name or NULL per in.BMP type


def _folder() -> Path:
    """The unpacked archive, in a per-user cache (unpacked once, atomically)."""
    digest = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()[:12]
    cache_root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    target = cache_root / "ase_amden" / f"bmp-{digest}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".bmp-"))
        with zipfile.ZipFile(ARCHIVE) as archive:
            archive.extractall(scratch)
        try:
            os.replace(scratch / "BMP", target)
        except OSError:  # another process unpacked it first
            if not target.exists():
                raise
        shutil.rmtree(scratch, ignore_errors=True)
    return target


@cache
def _terms() -> _Terms:
    folder = _folder()
    text = (folder / "in.BMP").read_text()
    variables = dict(re.findall(r"^variable\s+(\w+)\s+equal\s+(\S+)", text, re.M))
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        for name, value in variables.items():
            line = line.replace(f"${{{name}}}", value)
        if line:
            lines.append(line.split())
    charges, tables, buckingham = {}, {}, {}
    coulomb = three_body_file = ""
    three_body_names: tuple[str, ...] = ()
    for words in lines:
        if words[:2] == ["set", "type"] and words[3] == "charge":
            charges[int(words[2])] = float(words[4])
        elif words[0] == "pair_style":
            coulomb = " ".join(words[words.index("coul/dsf") + 1:][:2])
        elif words[0] == "pair_coeff" and words[3] == "table":
            pair = tuple(sorted((int(words[1]), int(words[2]))))
            tables[pair] = (Path(words[4].strip('"')).name, words[5], float(words[6]))
        elif words[0] == "pair_coeff" and words[3] == "buck":
            pair = tuple(sorted((int(words[1]), int(words[2]))))
            a, rho, c = map(float, words[4:7])
            cutoff = float(variables.get("rvdw", 7.0))
            buckingham[pair] = (a, rho, c, cutoff)
        elif words[0] == "pair_coeff" and words[3] == "nb3b/screened":
            three_body_file = words[4]
            three_body_names = tuple(words[5:])
    return _Terms(charges, tables, buckingham, coulomb, three_body_file, three_body_names)


def resolve_species(elements: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map every available element symbol to its BMP species.

    Parameters
    ----------
    elements
        Choices for elements with two oxidation states, e.g. ``{"Fe": "Fe3"}``; without a
        choice such elements are left out.

    """
    choice = dict(elements or {})
    counts: dict[str, list[str]] = {}
    for species in SPECIES:
        counts.setdefault(element_of(species), []).append(species)
    mapping = {}
    for element, options in counts.items():
        if element in UNAVAILABLE:
            continue
        if element in choice:
            if choice[element] not in options:
                raise UnknownNameError(
                    f"BMP has no species {choice[element]!r} for {element}; choose one of "
                    f"{options}"
                )
            mapping[element] = choice[element]
        elif len(options) == 1:
            mapping[element] = options[0]
    return mapping


@dataclass(frozen=True)
class BMPPotential:
    """BMP-shrm for a fixed set of elements (LAMMPS type ``i + 1`` is ``elements[i]``).

    Attributes
    ----------
    species
        Element symbol -> BMP species, e.g. ``{"Si": "Si", "Fe": "Fe3"}``.

    """

    species: tuple[tuple[str, str], ...]
    name: str = "bmp"
    atom_style: str = "charge"
    reference: str = REFERENCE

    @classmethod
    def for_elements(cls, choices: Mapping[str, str] | None = None) -> BMPPotential:
        """All available elements; ``choices`` picks oxidation states (``{"Fe": "Fe2"}``)."""
        mapping = resolve_species(choices)
        return cls(tuple(mapping.items()))

    @property
    def elements(self) -> tuple[str, ...]:
        """Element symbols in LAMMPS type order."""
        return tuple(element for element, _ in self.species)

    @property
    def atom_types(self) -> dict[str, int]:
        """Map from chemical symbol to LAMMPS atom type."""
        return {s: i + 1 for i, s in enumerate(self.elements)}

    def _bmp_types(self) -> list[int]:
        return [SPECIES.index(species) + 1 for _, species in self.species]

    def charge_commands(self) -> list[str]:
        """``set type`` commands giving every atom its formal-fraction charge (e)."""
        terms = _terms()
        return [f"set type {i + 1} charge {terms.charges[t]}"
                for i, t in enumerate(self._bmp_types())]

    def pair_commands(self) -> list[str]:
        """``pair_style``/``pair_coeff`` lines and charges (run after atoms exist)."""
        terms, folder = _terms(), _folder()
        ours = {t: i + 1 for i, t in enumerate(self._bmp_types())}
        names = [terms.three_body_names[t - 1] for t in ours]
        three_body = any(name != "NULL" for name in names)
        style = f"hybrid/overlay coul/dsf {terms.coulomb} table spline 10000 buck 7.0"
        commands = [f"pair_style {style}{' nb3b/screened' if three_body else ''}",
                    "pair_coeff * * coul/dsf"]
        for (a, b), (filename, keyword, cutoff) in sorted(terms.tables.items()):
            if a in ours and b in ours:
                i, j = sorted((ours[a], ours[b]))
                commands.append(f"pair_coeff {i} {j} table {folder / filename} {keyword} "
                                f"{cutoff}")
        for (a, b), (amplitude, rho, c, cutoff) in sorted(terms.buckingham.items()):
            if a in ours and b in ours:
                i, j = sorted((ours[a], ours[b]))
                commands.append(f"pair_coeff {i} {j} buck {amplitude} {rho} {c} {cutoff}")
        if three_body:
            commands.append(f"pair_coeff * * nb3b/screened {folder / terms.three_body_file} "
                            + " ".join(names))
        return [*commands, *self.charge_commands()]

    def mass_commands(self) -> list[str]:
        """``mass`` commands for every LAMMPS type, g/mol."""
        return [f"mass {i + 1} {atomic_masses[atomic_numbers[s]]:.6f}"
                for i, s in enumerate(self.elements)]
