import json

import numpy as np
import pytest

from ase_amden.analysis import compare, summary


@pytest.fixture
def glassy(diamond):
    images = []
    for seed in range(2):
        atoms = diamond.copy()
        atoms.rattle(0.15, seed=seed)
        images.append(atoms)
    return images


def test_compare_with_itself_is_zero(glassy):
    result = compare(glassy, glassy)
    assert result["rdf_rmsd"] == 0.0 and result["adf_rmsd"] == 0.0
    assert result["overlap"] == 1.0
    assert result["generated"] == result["reference"]
    json.dumps(result)  # plain floats and ints only


def test_compare_detects_differences(glassy, diamond):
    result = compare(glassy, [diamond])
    assert result["rdf_rmsd"] > 0.1 and result["adf_rmsd"] > 0.01
    assert result["reference"]["coordination"] == 4.0
    assert result["reference"]["ring_size"] == 6.0
    assert result["reference"]["entropy"] == pytest.approx(0.0, abs=1e-8)
    assert result["generated"]["entropy"] > 0.5


def test_summary_with_calculator(glassy, diamond):
    result = summary(glassy, calculator="sw-si")
    assert result["n_structures"] == 2 and result["n_atoms"] == 64.0
    assert result["density"] == pytest.approx(64 / diamond.cell.volume)
    np.testing.assert_allclose(result["energies"], -4.3366, atol=2e-3)
    assert result["energy"] == pytest.approx(np.mean(result["energies"]))


def test_dense_packing_skips_rings():
    from ase.build import bulk

    fcc = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)  # coordination 12
    result = summary(fcc)
    assert result["coordination"] == 12.0
    assert np.isnan(result["ring_size"])


def test_rdf_rmsd_is_zero_for_a_set_against_itself_and_positive_otherwise():
    from ase.build import bulk

    from ase_amden.analysis import rdf_rmsd

    crystal = bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2)
    rattled = crystal.copy()
    rattled.rattle(0.2, seed=0)
    assert rdf_rmsd(crystal, crystal) == 0.0
    assert rdf_rmsd(rattled, crystal) > 0.1
