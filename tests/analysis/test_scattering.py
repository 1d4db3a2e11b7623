"""Differentiable g(r) and S(q) against ASE, analytic limits and finite differences."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.geometry.rdf import get_rdf

from ase_amden.analysis.pair import structure_factor as number_structure_factor
from ase_amden.analysis.scattering import (
    ScatteringSetup,
    form_factors,
    pair_distribution,
    rfactor,
    structure_factor,
)
from ase_amden.errors import AmdenError


def _random_structure(n=200, edge=14.0, seed=0, symbols="Si"):
    rng = np.random.default_rng(seed)
    atoms = Atoms(symbols * n, cell=[edge] * 3, pbc=True)
    atoms.positions = rng.uniform(0, edge, (len(atoms), 3))
    return atoms


def _bin_counts(r, g, rho, edges):
    """Pairs per atom in each bin from a smooth g(r): int rho 4 pi r^2 g dr."""
    dr = r[1] - r[0]
    density = rho * 4 * math.pi * r**2 * g * dr
    bins = zip(edges[:-1], edges[1:], strict=True)
    return np.array([density[(r >= lo) & (r < hi)].sum() for lo, hi in bins])


@pytest.mark.parametrize("kind", ["crystal", "random"])
def test_rdf_matches_ase_histogram(kind):
    if kind == "crystal":
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
        atoms.rattle(0.02, seed=1)
        rmax, nbins = 5.0, 45  # no Si-Si distance of the crystal sits on a bin edge
    else:
        atoms = _random_structure()
        rmax, nbins = 6.0, 30
    g_ase, centres = get_rdf(atoms, rmax, nbins)
    edges = np.linspace(0, rmax, nbins + 1)
    shells = 4 * math.pi / 3 * (edges[1:] ** 3 - edges[:-1] ** 3)
    rho = len(atoms) / atoms.get_volume()
    expected = g_ase * rho * shells
    r, g = pair_distribution(atoms, rmax=rmax, dr=0.002, sigma=0.003)
    np.testing.assert_allclose(_bin_counts(r, g, rho, edges), expected, atol=0.02 * expected.max())


def test_partials_sum_to_total():
    atoms = _random_structure(n=30, edge=11.0, symbols="SiO2")
    r, total = pair_distribution(atoms, sigma=0.1)
    _, partial = pair_distribution(atoms, sigma=0.1, partial=True)
    c = {"Si": 1 / 3, "O": 2 / 3}
    combined = sum(c[a] * c[b] * g for (a, b), g in partial.items())
    np.testing.assert_allclose(combined, total, atol=1e-10)


def test_random_structure_structure_factor_tends_to_one():
    atoms = [_random_structure(n=400, edge=16.0, seed=s) for s in range(2)]
    q = np.linspace(8.0, 16.0, 40)
    s = structure_factor(atoms, q, weighting="xray")
    assert np.abs(s - 1).max() < 0.05


def test_number_weighting_matches_histogram_structure_factor():
    atoms = _random_structure()
    q = np.linspace(1.2, 10.0, 50)
    np.testing.assert_allclose(structure_factor(atoms, q, weighting="number", sigma=0.02),
                               number_structure_factor(atoms, q), atol=0.01)


@pytest.mark.parametrize("weighting", ["xray", "neutron"])
def test_crystalline_silicon_peaks_at_111(weighting):
    a = 5.43
    atoms = bulk("Si", "diamond", a=a, cubic=True).repeat(3)
    atoms.rattle(0.05, seed=2)
    q = np.linspace(1.5, 2.6, 111)
    s = structure_factor(atoms, q, weighting=weighting, sigma=0.02)
    assert abs(q[np.argmax(s)] - 2 * math.pi * math.sqrt(3) / a) < 0.05
    assert s.max() > 1.3


def test_form_factor_limits():
    symbols = ["Li", "B", "O", "Na", "Al", "Si", "Ca", "Cu", "Zr"]
    f0 = form_factors(symbols, np.array([0.0]))[:, 0]
    np.testing.assert_allclose(f0, [3, 5, 8, 11, 13, 14, 20, 29, 40], atol=0.04)
    assert (np.diff(form_factors(["Si"], np.array([0.0, 4.0, 8.0]))[0]) < 0).all()


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    setup = ScatteringSetup("structure_factor", np.linspace(2, 8, 10), np.ones(10), ["O", "Si"],
                            sigma=0.1)
    positions = torch.tensor(rng.uniform(0, 8, (12, 3)), requires_grad=True)
    species = torch.tensor(rng.integers(0, 2, 12))
    cell = 8.0 * torch.eye(3, dtype=torch.float64)[None]
    system = torch.zeros(12, dtype=torch.long)
    assert torch.autograd.gradcheck(lambda p: setup(p, species, cell, system), (positions,),
                                    eps=1e-6, atol=1e-5)
    rdf = ScatteringSetup("rdf", np.linspace(1.0, 3.5, 20), np.ones(20), ["O", "Si"], sigma=0.1)
    assert torch.autograd.gradcheck(lambda p: rdf(p, species, cell, system), (positions,),
                                    eps=1e-6, atol=1e-5)


def test_rfactor():
    measured = np.array([1.5, 0.5, 1.2])
    assert rfactor(measured, measured) == 0.0
    assert rfactor(np.ones(3), measured) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.linspace(0.1, 8, 10), np.ones(10), "below"),  # below 2 pi / rmax
        (np.linspace(-1, 8, 10), np.ones(10), "positive"),
        (np.linspace(2, 8, 10), np.ones(9), "same length"),
        (np.linspace(2, 8, 10), np.r_[np.ones(9), np.nan], "NaN"),
    ],
)
def test_bad_structure_factor_inputs(x, y, match):
    atoms = _random_structure(n=50, edge=10.0)
    with pytest.raises(AmdenError, match=match):
        setup = ScatteringSetup("structure_factor", x, y, ["Si"])
        setup.rmax(atoms.cell.array)
    if match in ("below", "positive"):
        with pytest.raises(AmdenError, match=match):
            structure_factor(atoms, x)


def test_bad_names_and_rmax():
    atoms = _random_structure(n=50, edge=10.0)
    with pytest.raises(AmdenError, match="weighting"):
        structure_factor(atoms, [2.0, 3.0], weighting="electron")
    with pytest.raises(AmdenError, match="rmax"):
        pair_distribution(atoms, rmax=6.0)
    with pytest.raises(AmdenError, match="no xray scattering data"):
        structure_factor(Atoms("Fe8", positions=np.random.default_rng(0).uniform(0, 10, (8, 3)),
                               cell=[10] * 3, pbc=True), [2.0, 3.0])
    with pytest.raises(AmdenError, match="shape"):
        rfactor([1.0, 2.0], [1.0])
