import numpy as np
import pytest

from ase_amden.analysis import average_ring_size, ring_statistics


def test_diamond_rings_are_sixfold(diamond):
    hist = ring_statistics(diamond, cutoff=2.6, maxlength=10)
    assert hist.shape == (11,)
    assert hist.nonzero()[0].tolist() == [6]
    assert hist[6] == 2 * len(diamond)  # 12 rings per atom, 6 atoms per ring
    assert average_ring_size(diamond) == 6.0  # default covalent cutoff 1.3 x 2 x 1.11 Å


def test_cristobalite_rings_counted_in_si(cristobalite):
    n_si = 64
    hist = ring_statistics(cristobalite, count_elements="Si")
    assert hist.nonzero()[0].tolist() == [6]
    assert hist[6] == 2 * n_si  # the Si sublattice is a diamond lattice
    assert average_ring_size(cristobalite) == 6.0  # oxide: Si counted by default
    # counting every atom gives the Si-O-Si path length of 12
    assert average_ring_size(cristobalite, count_elements=["Si", "O"]) == 12.0
    # same with explicit cutoffs (Si-O at 2.0 Å; a float applies to Si-O only here)
    assert average_ring_size(cristobalite, cutoff={"Si-O": 2.0}, count_elements="Si") == 6.0
    assert average_ring_size(cristobalite, cutoff=2.0, count_elements="Si") == 6.0


def test_list_average_and_maxlength(diamond, cristobalite):
    hist = ring_statistics([diamond, diamond.copy()])
    assert hist[6] == 2 * len(diamond)  # mean per structure
    assert np.all(ring_statistics(diamond, maxlength=5) == 0)
    assert ring_statistics(diamond, maxlength=6)[6] == 2 * len(diamond)
    assert np.isnan(average_ring_size(diamond, maxlength=5))
    with pytest.raises(ValueError, match="maxlength"):
        ring_statistics(diamond, maxlength=0)
