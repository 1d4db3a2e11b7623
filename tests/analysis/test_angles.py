import numpy as np
import pytest

from ase_amden.analysis import adf

TETRAHEDRAL = np.degrees(np.arccos(-1 / 3))  # 109.47 degrees


def test_diamond_peaks_at_tetrahedral_angle(diamond):
    theta, p = adf(diamond, cutoff=3.0, nbins=180)
    assert theta.shape == p.shape == (180,)
    assert abs(theta[np.argmax(p)] - TETRAHEDRAL) <= 0.5
    assert np.sum(p) * (theta[1] - theta[0]) == pytest.approx(1.0)
    # every angle of the ideal crystal is tetrahedral: all weight in one 1-degree bin
    assert np.count_nonzero(p) == 1


def test_rattled_average_and_list_average(diamond):
    rattled = diamond.copy()
    rattled.rattle(0.05, seed=1)
    theta, p_one = adf(rattled)
    _, p_two = adf([rattled, diamond])
    _, p_crystal = adf(diamond)
    np.testing.assert_allclose(p_two, 0.5 * (p_one + p_crystal))
    mean_angle = np.sum(theta * p_one) / np.sum(p_one)
    assert mean_angle == pytest.approx(TETRAHEDRAL, abs=1.5)


def test_silica_triplets(cristobalite):
    theta, p = adf(cristobalite, cutoff=2.0, triplet="O-Si-O")
    assert abs(theta[np.argmax(p)] - TETRAHEDRAL) <= 0.5
    # ideal beta-cristobalite has straight Si-O-Si bridges
    theta, p = adf(cristobalite, cutoff=2.0, triplet="Si-O-Si")
    assert theta[np.argmax(p)] == pytest.approx(179.5)
    # no Si-Si-Si angles within 2 Å: an all-zero density, not NaN
    _, p = adf(cristobalite, cutoff=2.0, triplet="Si-Si-Si")
    assert np.all(p == 0)
