"""spglib symmetry: crystals are found, amorphous structures are P1."""

from pathlib import Path

import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones

from ase_amden.analysis import flag_crystalline, relax, symmetry
from ase_amden.data.dataset import AmorphousDataset
from ase_amden.errors import InvalidStructureError

A_SI_DATA = Path(__file__).parents[2] / "datasets" / "a-Si-quench.h5"


def test_diamond_si_is_fd3m_and_crystalline(diamond):
    found = symmetry(diamond)
    assert (found.number, found.symbol, str(found)) == (227, "Fd-3m", "Fd-3m (227)")
    assert found.crystalline
    flag_crystalline(diamond)
    assert diamond.info["crystalline"] is True and diamond.info["space_group_number"] == 227


def test_amorphous_si_is_p1_and_not_crystalline():
    a_si = AmorphousDataset(A_SI_DATA)[0]
    found = symmetry(a_si)
    assert (found.number, found.symbol, found.n_operations) == (1, "P1", 1)
    assert not flag_crystalline(a_si).info["crystalline"]


def test_a_supercell_of_a_p1_crystal_is_crystalline():
    crystal = bulk("Si", "diamond", a=5.43, cubic=True)
    crystal.rattle(0.3, seed=2)  # P1 cell ...
    assert not symmetry(crystal).crystalline
    assert symmetry(crystal.repeat((2, 1, 1))).crystalline  # ... repeated: a translation


def test_tolerance_decides_and_is_checked(diamond):
    diamond.rattle(0.01, seed=0)
    assert symmetry(diamond).number == 227
    assert symmetry(diamond, symprec=1e-3).number == 1
    with pytest.raises(ValueError, match="symprec"):
        symmetry(diamond, symprec=0.0)
    with pytest.raises(InvalidStructureError, match="periodic"):
        symmetry(diamond[:0])


def test_relax_flags_a_structure_that_crystallized():
    argon = bulk("Ar", "fcc", a=5.26, cubic=True)
    argon.rattle(0.15, seed=1)
    assert symmetry(argon).number == 1
    relaxed = relax(argon, LennardJones(sigma=3.4, epsilon=0.0104, rc=8.0), fmax=1e-4)
    assert relaxed.info["crystalline"] is True
    assert relaxed.info["space_group"] == "Fm-3m"
