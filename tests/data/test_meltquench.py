import numpy as np
import pytest

from ase_amden.data import PROTOCOLS, Protocol, Stage, get_protocol, run_protocol, sample_size
from ase_amden.errors import UnknownNameError


def test_sample_is_deterministic_and_physical(tiny_protocol):
    a = run_protocol(tiny_protocol, 3)
    b = run_protocol(tiny_protocol, 3)
    np.testing.assert_array_equal(a.atoms.positions, b.atoms.positions)
    atoms, props = a.atoms, a.properties
    assert atoms.pbc.all() and 16 <= len(atoms) <= 24
    assert props["relaxed_energy"] <= props["potential_energy"]  # minimisation lowers the energy
    assert -4.34 < props["relaxed_energy"] < -3.5  # above diamond, bound
    assert props["number_density"] == pytest.approx(len(atoms) / atoms.get_volume())
    assert props["cooling_rate"] == pytest.approx(1500.0 / 0.2)
    assert props["melt_msd"] > 0
    frac = atoms.get_scaled_positions(wrap=False)
    assert np.all((frac >= 0) & (frac < 1))


def test_sizes_follow_formula_units():
    sio2 = get_protocol("a-SiO2")
    for i in range(20):
        counts = sample_size(sio2, i)
        assert counts["O"] == 2 * counts["Si"]
        assert 78 <= counts["O"] + counts["Si"] <= 250


def test_protocol_round_trips_through_plain_data():
    for protocol in PROTOCOLS.values():
        assert Protocol.from_dict(protocol.to_dict()) == protocol


def test_anneal_protocol_cools_at_one_kelvin_per_ps():
    rates = [s.cooling_rate_K_per_ps for s in get_protocol("a-Si-anneal").stages]
    assert max(rates) == pytest.approx(1.0)


def test_unknown_protocol_lists_valid_names():
    with pytest.raises(UnknownNameError, match="a-Si-anneal"):
        get_protocol("a-Ge")


def test_bad_stage_is_refused():
    with pytest.raises(ValueError, match="nvt"):
        Stage("npt", 300.0, duration_ps=1.0)
    with pytest.raises(ValueError, match="duration_ps"):
        Stage("nvt", 300.0)


def test_new_calibration_protocols_cool_at_their_rates():
    for rate in (1000, 100, 10):
        protocol = get_protocol(f"a-Si-cool{rate}")
        assert max(s.cooling_rate_K_per_ps for s in protocol.stages) == pytest.approx(rate)
        assert protocol.md_time_ps == pytest.approx(20.0 + 2200.0 / rate + 10.0)


def test_run_stages_keeps_a_crystal_and_melts_it_when_hot():
    from ase.build import bulk

    from ase_amden.analysis import relaxed_energy
    from ase_amden.data import run_stages

    crystal = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    warm = run_stages(crystal, "sw-si", [Stage("nvt", 300.0, 300.0, duration_ps=0.5)], seed=4)
    assert warm.get_chemical_symbols() == crystal.get_chemical_symbols()
    np.testing.assert_allclose(warm.cell.array, crystal.cell.array)
    step = warm.positions - crystal.positions
    step -= crystal.cell.array[0, 0] * np.round(step / crystal.cell.array[0, 0])
    assert 0.01 < np.sqrt((step**2).sum(1).mean()) < 0.4  # vibrates about its sites
    assert relaxed_energy(warm, "sw-si") == pytest.approx(-4.3366, abs=2e-3)  # SW diamond
    hot = run_stages(crystal, "sw-si", [Stage("nvt", 4000.0, duration_ps=2.0, measure_msd=True)],
                     seed=4)
    assert relaxed_energy(hot, "sw-si") > -4.25  # molten, then relaxed: not the crystal
    assert "melt_msd" not in warm.info and hot.info["melt_msd"] > 2.0  # Å^2: it diffused


def test_run_stages_rejects_a_skewed_cell():
    from ase.build import bulk

    from ase_amden.data import run_stages
    from ase_amden.errors import InvalidStructureError

    with pytest.raises(InvalidStructureError, match="orthorhombic"):
        run_stages(bulk("Si"), "sw-si", [Stage("nvt", 300.0, duration_ps=0.1)])


def test_run_stages_relaxes_a_sample_to_its_stored_relaxed_energy(tiny_protocol):
    from ase_amden.data import run_stages

    sample = run_protocol(tiny_protocol, 2)
    relaxed = run_stages(sample.atoms, "sw-si", [], relax=True)
    assert relaxed.info["relaxed_energy"] == pytest.approx(
        sample.properties["relaxed_energy"], abs=1e-6)
