"""The Jakse potential for silica: Born-Mayer-Huggins plus damped shifted-force Coulomb.

Bouhadja, Jakse and Pasturel, J. Chem. Phys. 138, 224510 (2013), Table I: fixed
partial charges (Si +2.4 e, O -1.2 e) and per pair

    V(r) = A exp((sigma - r) / rho) - C / r^6 + q_i q_j / r,

the LAMMPS ``born`` form (its ``D / r^8`` term is zero here). The DM2 a-SiO2 glasses
(Yang and Schwalbe-Koda) were made with it, short-range cutoff 8 Å, Coulomb by Fennell's
damped shifted force (``coul/dsf``, damping 0.25 1/Å, cutoff 8 Å), as used here.

Source of the numbers: Table I of the paper, as transcribed in two independent public
LAMMPS set-ups that agree to the digits given: amorphouspy
(github.com/glasagent/amorphouspy, ``potentials/bjp_potential.py``, in eV) and a LAMMPS
input of github.com/ksenia6666544/SIO2- (``bks_2/potential.mod``, same values in
kcal/mol). The paper also gives Ca and Al terms; only Si and O are registered here,
because only silica is checked against data (the DM2 glasses, see the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from ase.data import atomic_masses, atomic_numbers

REFERENCE = "Bouhadja, Jakse and Pasturel, J. Chem. Phys. 138, 224510 (2013), Table I"

#: Charges, e.
CHARGES = {"Si": 2.4, "O": -1.2}
#: (A eV, rho Å, sigma Å, C eV Å^6, D eV Å^8) per element pair.
BORN = {
    ("Si", "Si"): (0.0012, 0.0460, 1.4408, 25.1873, 0.0),
    ("Si", "O"): (0.0070, 0.1560, 2.5419, 46.2930, 0.0),
    ("O", "O"): (0.0120, 0.2630, 3.6430, 85.0840, 0.0),
}
#: Coulomb damping (1/Å) and the one cutoff of both terms (Å).
ALPHA, CUTOFF = 0.25, 8.0


@dataclass(frozen=True)
class JaksePotential:
    """The Jakse silica potential in LAMMPS (type ``i + 1`` is ``elements[i]``)."""

    name: str = "jakse-sio2"
    elements: tuple[str, ...] = ("Si", "O")
    atom_style: str = "charge"
    reference: str = REFERENCE

    @property
    def atom_types(self) -> dict[str, int]:
        """Map from chemical symbol to LAMMPS atom type."""
        return {s: i + 1 for i, s in enumerate(self.elements)}

    def charge_commands(self) -> list[str]:
        """``set type`` commands giving every atom its charge (e)."""
        return [f"set type {t} charge {CHARGES[s]}" for s, t in self.atom_types.items()]

    def pair_commands(self) -> list[str]:
        """``pair_style``/``pair_coeff`` lines and charges (run after atoms exist)."""
        types = self.atom_types
        commands = [f"pair_style born/coul/dsf {ALPHA} {CUTOFF}"]
        for (a, b), parameters in BORN.items():
            i, j = sorted((types[a], types[b]))
            commands.append(f"pair_coeff {i} {j} " + " ".join(map(str, parameters)))
        # the short-range energy goes to zero at the cutoff, as coul/dsf does by construction
        return [*commands, "pair_modify shift yes", *self.charge_commands()]

    def mass_commands(self) -> list[str]:
        """``mass`` commands for every LAMMPS type, g/mol."""
        return [f"mass {t} {atomic_masses[atomic_numbers[s]]:.6f}"
                for s, t in self.atom_types.items()]
