import numpy as np
import pytest
from ase.build import bulk

from ase_amden.analysis import elastic_tensor, isotropic_moduli
from ase_amden.potentials import get_calculator

from .conftest import A_SI


@pytest.fixture(scope="module")
def sw():
    return get_calculator("sw-si")


def test_stillinger_weber_silicon_relaxed_ions(diamond, sw):
    C = elastic_tensor(diamond, sw, strain=0.01, relax_ions=True)
    assert C.shape == (6, 6)
    # Stillinger-Weber Si: C11 = 151.4, C12 = 76.4, C44 = 56.4 GPa (relaxed ions)
    np.testing.assert_allclose(np.diag(C), [151.4] * 3 + [56.4] * 3, atol=1.0)
    np.testing.assert_allclose(C[[0, 0, 1], [1, 2, 2]], 76.4, atol=1.0)
    off = C - np.diag(np.diag(C))
    off[:3, :3] = 0.0
    assert np.max(np.abs(off)) < 0.1  # cubic: no normal-shear or shear-shear coupling
    np.testing.assert_allclose(C, C.T)


def test_clamped_ions_differ_only_in_shear(sw):
    cell = bulk("Si", "diamond", a=A_SI, cubic=True)
    before = cell.positions.copy()
    C = elastic_tensor(cell, sw, relax_ions=False)
    np.testing.assert_array_equal(cell.positions, before)  # input untouched
    assert C[0, 0] == pytest.approx(151.4, abs=1.0)
    assert C[3, 3] == pytest.approx(110.0, abs=2.0)  # no internal relaxation


def test_calculator_by_name(sw):
    cell = bulk("Si", "diamond", a=A_SI, cubic=True)
    np.testing.assert_allclose(elastic_tensor(cell, "sw-si"), elastic_tensor(cell, sw), atol=1e-6)


def test_isotropic_tensor_moduli():
    K, G = 70.0, 30.0
    lam = K - 2 * G / 3
    C = np.diag([lam + 2 * G] * 3 + [G] * 3)
    C[:3, :3] += lam * (1 - np.eye(3))
    for average in ("hill", "voigt", "reuss"):
        moduli = isotropic_moduli(C, average)
        assert moduli["K"] == pytest.approx(K) and moduli["G"] == pytest.approx(G)
        assert moduli["E"] == pytest.approx(9 * K * G / (3 * K + G))
        assert moduli["nu"] == pytest.approx((3 * K - 2 * G) / (2 * (3 * K + G)))
        assert moduli["E"] == pytest.approx(2 * G * (1 + moduli["nu"]))


def test_cubic_tensor_bounds():
    C11, C12, C44 = 151.4, 76.4, 56.4
    C = np.diag([C11] * 3 + [C44] * 3)
    C[:3, :3] += C12 * (1 - np.eye(3))
    voigt, reuss, hill = (isotropic_moduli(C, a) for a in ("voigt", "reuss", "hill"))
    K = (C11 + 2 * C12) / 3  # exact for cubic symmetry in every average
    assert voigt["K"] == pytest.approx(K) and reuss["K"] == pytest.approx(K)
    assert voigt["G"] == pytest.approx((C11 - C12 + 3 * C44) / 5)
    assert reuss["G"] == pytest.approx(5 * (C11 - C12) * C44 / (4 * C44 + 3 * (C11 - C12)))
    assert reuss["G"] < hill["G"] < voigt["G"]
    assert hill["G"] == pytest.approx((voigt["G"] + reuss["G"]) / 2)
    with pytest.raises(ValueError, match="hill"):
        isotropic_moduli(C, "mean")
    with pytest.raises(ValueError, match="6x6"):
        isotropic_moduli(np.eye(3))
