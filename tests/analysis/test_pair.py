import numpy as np
import pytest

from ase_amden.analysis import rdf, structure_factor

from .conftest import A_SI


def test_diamond_first_peak_and_shells(diamond):
    r, g = rdf(diamond, rmax=5.0, nbins=100)
    assert r.shape == g.shape == (100,)
    assert r[0] == pytest.approx(0.025) and r[-1] == pytest.approx(4.975)
    occupied = r[g > 0]
    # first shell at a sqrt(3)/4 = 2.3517 Å, second at a/sqrt(2) = 3.840 Å
    assert abs(occupied[0] - A_SI * np.sqrt(3) / 4) <= 0.025
    assert abs(occupied[1] - A_SI / np.sqrt(2)) <= 0.025
    # 4 neighbours in the first shell: integral of rho g 4 pi r^2 dr over the peak
    rho = len(diamond) / diamond.cell.volume
    dr = r[1] - r[0]
    first = r < 3.0
    assert rho * np.sum(g[first] * 4 * np.pi * r[first] ** 2) * dr == pytest.approx(4, rel=0.02)


def test_ideal_gas_is_one(gas):
    r, g = rdf(gas, rmax=5.0, nbins=50)
    far = r > 1.0
    assert np.mean(g[far]) == pytest.approx(1.0, abs=0.02)
    assert np.max(np.abs(g[far] - 1.0)) < 0.15


def test_partials_sum_to_total(cristobalite):
    atoms = cristobalite.copy()
    atoms.rattle(0.2, seed=3)
    _, total = rdf(atoms, rmax=6.0, nbins=60)
    c = {"Si": 1 / 3, "O": 2 / 3}
    weighted = sum(
        c[a] * c[b] * rdf(atoms, rmax=6.0, nbins=60, pair=f"{a}-{b}")[1] for a in c for b in c
    )
    np.testing.assert_allclose(weighted, total, atol=1e-10)
    # Si-O first shell at the 1.55 Å bond, none closer
    r, g_sio = rdf(cristobalite, rmax=6.0, nbins=120, pair="Si-O")
    assert abs(r[np.argmax(g_sio > 0)] - 7.16 * np.sqrt(3) / 8) <= 0.025


def test_structure_factor_gas_and_diamond(gas, diamond):
    q = np.linspace(1.0, 12.0, 56)
    s_gas = structure_factor(gas, q)
    assert np.max(np.abs(s_gas[q > 2] - 1.0)) < 0.3
    crystal = diamond.repeat((2, 2, 2))  # rmax 10.86 Å
    q = np.linspace(1.0, 3.0, 201)
    s = structure_factor(crystal, q)
    # the (111) reflection at 2 pi sqrt(3) / a = 2.004 1/Å dominates up to 3 1/Å
    assert q[np.argmax(s)] == pytest.approx(2 * np.pi * np.sqrt(3) / A_SI, abs=0.06)
    with pytest.raises(ValueError, match="positive"):
        structure_factor(diamond, [0.0, 1.0])


def test_image_lists_and_partials_work_on_every_supported_ase():
    """rdf() uses its own neighbour list: image lists and symbols need no ASE 3.28 (the pin
    allows 3.23); the total equals ASE's get_rdf per image, averaged, and the partials are
    symmetric and sum to it (g = sum_ab c_a c_b g_ab)."""
    import ase.geometry.rdf
    from ase.build import bulk

    a = bulk("SiO", "rocksalt", a=4.2, cubic=True).repeat(3)
    a.rattle(0.2, seed=1)
    b = a.copy()
    b.rattle(0.1, seed=2)
    expected = np.mean([ase.geometry.rdf.get_rdf(x, 6.0, 60)[0] for x in (a, b)], axis=0)
    r, g = rdf([a, b], rmax=6.0, nbins=60)
    assert np.allclose(g, expected, rtol=1e-10, atol=1e-10)
    partial = {pair: rdf([a, b], rmax=6.0, nbins=60, pair=pair)[1]
               for pair in ("Si-O", "O-Si", "O-O", "Si-Si")}
    assert np.allclose(partial["Si-O"], partial["O-Si"])
    assert np.allclose(0.25 * sum(partial.values()), g)
