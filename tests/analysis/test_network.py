import numpy as np
import pytest
from ase import Atoms
from ase.spacegroup import crystal

from ase_amden.analysis import network_metrics


def _quartz():
    return crystal(["Si", "O"], [(0.4697, 0, 1 / 3), (0.4135, 0.2669, 0.2144)], spacegroup=152,
                   cellpar=[4.916, 4.916, 5.405, 90, 90, 120])


def test_alpha_quartz_is_a_perfect_tetrahedral_network_with_its_known_geometry():
    m = network_metrics(_quartz().repeat(2))
    assert m.former_fraction == 1.0 and m.anion_fraction == 1.0
    # alpha-quartz: Si-O 1.605-1.614 Å, Si-O-Si 143.7 degrees, O-Si-O about 109.5.
    assert m.bond_mean == pytest.approx(1.609, abs=0.005)
    assert m.bridge_angle_mean == pytest.approx(143.7, abs=0.3)
    assert m.tetra_angle_mean == pytest.approx(109.5, abs=0.3)
    assert m.bridge_angle_std < 1e-6


def test_a_missing_oxygen_leaves_under_coordinated_silicon_and_a_lone_oxygen():
    quartz = _quartz().repeat(2)
    del quartz[[a.index for a in quartz if a.symbol == "O"][0]]
    m = network_metrics(quartz)
    n_si = sum(quartz.numbers == 14)
    n_o = sum(quartz.numbers == 8)
    assert m.former_fraction == pytest.approx((n_si - 2) / n_si)
    assert m.anion_fraction == 1.0 and n_o == 2 * n_si - 1


def test_no_bonds_gives_nan_lengths():
    atoms = Atoms("SiO2", positions=[[0, 0, 0], [3, 0, 0], [0, 3, 0]], cell=[6] * 3, pbc=True)
    m = network_metrics(atoms)
    assert m.former_fraction == 0.0 and np.isnan(m.bond_mean)
