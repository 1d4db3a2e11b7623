import numpy as np
import pytest
from ase import Atoms

from ase_amden.analysis import (
    adf,
    average_ring_size,
    coordination,
    environment_entropy,
    rdf,
    ring_statistics,
    structure_factor,
)
from ase_amden.analysis.validation import largest_rmax
from ase_amden.errors import InvalidStructureError, UnknownNameError
from ase_amden.structures import as_images

FUNCTIONS = [
    lambda x: rdf(x),
    lambda x: adf(x),
    lambda x: coordination(x, 2.6),
    lambda x: ring_statistics(x),
    lambda x: average_ring_size(x),
    lambda x: structure_factor(x, [1.0]),
    lambda x: environment_entropy(x),
]


@pytest.mark.parametrize("func", FUNCTIONS)
def test_empty_list_rejected(func):
    with pytest.raises(InvalidStructureError, match="empty list"):
        func([])


@pytest.mark.parametrize("func", FUNCTIONS)
def test_nan_positions_rejected(func, diamond):
    diamond.positions[3, 1] = np.nan
    with pytest.raises(InvalidStructureError, match="NaN") as info:
        func([diamond.copy(), diamond])
    assert "structure 0" in str(info.value)


@pytest.mark.parametrize("func", FUNCTIONS)
def test_non_periodic_rejected(func, diamond):
    diamond.pbc = [True, True, False]
    with pytest.raises(InvalidStructureError, match="not periodic.*atoms.pbc = True"):
        func(diamond)


@pytest.mark.parametrize("func", FUNCTIONS)
def test_zero_volume_cell_rejected(func):
    atoms = Atoms("Si2", positions=[[0, 0, 0], [1.0, 1.0, 1.0]], pbc=True)
    with pytest.raises(InvalidStructureError, match="zero volume.*set_cell"):
        func(atoms)


def test_non_atoms_item_and_empty_structure_rejected(diamond):
    with pytest.raises(InvalidStructureError, match="not an ase.Atoms"):
        as_images([diamond, "diamond.xyz"])
    with pytest.raises(InvalidStructureError, match="no atoms"):
        as_images([Atoms(cell=[5, 5, 5], pbc=True)])


def test_single_atoms_becomes_list(diamond):
    assert as_images(diamond) == [diamond]


def test_rmax_too_large_names_the_limit(diamond):
    assert largest_rmax([diamond]) == pytest.approx(5.431)
    with pytest.raises(ValueError, match=r"largest allowed rmax is 5\.4310 Å.*repeat"):
        rdf(diamond, rmax=6.0)
    # in a sheared cell the perpendicular width, not a vector length, sets the limit
    sheared = diamond.copy()
    sheared.set_cell([[10.862, 0, 0], [6.0, 9.0, 0], [0, 0, 10.862]], scale_atoms=True)
    # widths: 10.862 * 9 / |(6, 9)| = 9.04 (a), 9.0 (b, whose length is 10.82), 10.862 (c)
    assert largest_rmax([sheared]) == pytest.approx(4.5)


def test_unknown_pair_element_lists_present_ones(diamond):
    with pytest.raises(UnknownNameError, match="'O'.*'Si'"):
        rdf(diamond, pair="Si-O")
    with pytest.raises(ValueError, match="expected 3 element symbols"):
        adf(diamond, triplet="Si-Si")
