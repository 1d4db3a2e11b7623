import numpy as np
import pytest

from ase_amden.analysis import coordination


def test_diamond_is_fourfold(diamond):
    mean, per_atom = coordination(diamond, 2.6)
    assert mean == 4.0
    assert per_atom.shape == (64,) and np.all(per_atom == 4)
    assert coordination(diamond, 4.0).mean == 16.0  # 4 + 12 second neighbours


def test_silica_pairs_and_dict_cutoff(cristobalite):
    assert coordination(cristobalite, 2.0, pair="Si-O").mean == 4.0
    mean_o, per_o = coordination(cristobalite, 2.0, pair="O-Si")
    assert mean_o == 2.0 and per_o.shape == (128,)
    # dict: Si-O bonds only; the O-O distance (2.53 Å) is below 2.6 but not listed
    mean, per_atom = coordination(cristobalite, {"Si-O": 2.0})
    n_si = 64
    assert mean == pytest.approx((4 * n_si + 2 * 2 * n_si) / (3 * n_si))
    assert coordination(cristobalite, {("O", "O"): 2.6}).mean == pytest.approx(6 * 2 / 3)


def test_list_concatenates_per_atom(diamond, cristobalite):
    result = coordination([diamond, diamond], 2.6)
    assert result.per_atom.shape == (128,)
    with pytest.raises(ValueError, match="positive"):
        coordination(diamond, -1.0)
