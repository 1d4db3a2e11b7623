"""Network-glass checks: how close a structure is to a corner-sharing tetrahedral network."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from ase.data import atomic_numbers
from matscipy.neighbours import neighbour_list

from ..structures import Images, as_images
from .angles import bond_angles


class NetworkMetrics(NamedTuple):
    """Result of :func:`network_metrics`, pooled over all images."""

    former_fraction: float
    """Fraction of former atoms (Si) with exactly ``former_coordination`` anion neighbours."""
    anion_fraction: float
    """Fraction of anions (O) with exactly two former neighbours (bridging)."""
    bond_mean: float
    """Mean former-anion bond length, Å."""
    bond_std: float
    """Standard deviation of the former-anion bond length, Å."""
    bridge_angle_mean: float
    """Mean former-anion-former angle (Si-O-Si), degrees."""
    bridge_angle_std: float
    """Standard deviation of the Si-O-Si angle, degrees."""
    tetra_angle_mean: float
    """Mean anion-former-anion angle (O-Si-O), degrees."""
    tetra_angle_std: float
    """Standard deviation of the O-Si-O angle, degrees."""

    def as_dict(self) -> dict[str, float]:
        """Plain ``{name: value}``."""
        return {name: float(value) for name, value in self._asdict().items()}


def network_metrics(
    images: Images,
    former: str = "Si",
    anion: str = "O",
    cutoff: float = 2.0,
    former_coordination: int = 4,
) -> NetworkMetrics:
    """Short-range order of an oxide network glass (tetrahedral for SiO2).

    Bonds are former-anion pairs within ``cutoff`` (Yang and Schwalbe-Koda count Si-O
    bonds within 2.0 Å); periodic images are included.

    Parameters
    ----------
    images
        One periodic structure or a list of them.
    former, anion
        Chemical symbols of the network former and the bridging anion.
    cutoff
        Former-anion bond cutoff, Å.
    former_coordination
        Ideal number of anions around a former (4 for Si in SiO2).

    Returns
    -------
    NetworkMetrics
        Fractions, bond lengths (Å) and angles (degrees), pooled over all images.

    Examples
    --------
    >>> from ase.spacegroup import crystal
    >>> quartz = crystal(["Si", "O"], [(0.4697, 0, 1 / 3), (0.4135, 0.2669, 0.2144)],
    ...                  spacegroup=152, cellpar=[4.916, 4.916, 5.405, 90, 90, 120])
    >>> m = network_metrics(quartz)
    >>> m.former_fraction, m.anion_fraction, round(m.bond_mean, 2), round(m.bridge_angle_mean)
    (1.0, 1.0, 1.61, 144)

    """
    z_former, z_anion = atomic_numbers[former], atomic_numbers[anion]
    former_counts, anion_counts, bonds = [], [], []
    bridge, tetra = [], []
    for atoms in as_images(images):
        numbers = atoms.numbers
        i, j, d = neighbour_list("ijd", atoms, cutoff)
        keep = (numbers[i] == z_former) & (numbers[j] == z_anion)
        bonds.append(d[keep])
        per_former = np.bincount(i[keep], minlength=len(atoms))
        former_counts.append(per_former[numbers == z_former])
        reverse = (numbers[i] == z_anion) & (numbers[j] == z_former)
        per_anion = np.bincount(i[reverse], minlength=len(atoms))
        anion_counts.append(per_anion[numbers == z_anion])
        angles = bond_angles(atoms, cutoff, (z_former, z_anion, z_former))
        bridge.append(angles)
        tetra.append(bond_angles(atoms, cutoff, (z_anion, z_former, z_anion)))
    former_counts = np.concatenate(former_counts)
    anion_counts = np.concatenate(anion_counts)
    bonds, bridge, tetra = (np.concatenate(x) for x in (bonds, bridge, tetra))

    def stats(x: np.ndarray) -> tuple[float, float]:
        return (float(x.mean()), float(x.std())) if x.size else (float("nan"), float("nan"))

    return NetworkMetrics(
        float(np.mean(former_counts == former_coordination)) if former_counts.size else np.nan,
        float(np.mean(anion_counts == 2)) if anion_counts.size else np.nan,
        *stats(bonds), *stats(bridge), *stats(tetra),
    )
