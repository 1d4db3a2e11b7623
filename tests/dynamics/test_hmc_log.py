"""The HMC log counts leapfrog steps, starts after the first iteration and has the acceptance."""

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import Trajectory

from ase_amden.dynamics import HMC


@pytest.fixture
def copper():
    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.05, seed=0)
    atoms.calc = EMT()
    return atoms


def _rows(path):
    lines = path.read_text().splitlines()
    return lines[0].split(), np.array([[float(x) for x in line.split()] for line in lines[1:]])


def test_log_time_counts_every_leapfrog_step_and_has_the_acceptance(copper, tmp_path):
    log, traj = tmp_path / "hmc.log", tmp_path / "hmc.traj"
    dt = 2 * units.fs
    dyn = HMC(copper, dt, temperature_K=600, n_leapfrog=5, rng=1, logfile=str(log),
              trajectory=str(traj))
    accepted = []
    dyn.attach(lambda: accepted.append(dyn.acceptance_rate) if dyn.nsteps else None)
    dyn.run(4)
    dyn.close()
    header, rows = _rows(log)
    assert header == ["Time[ps]", "Iter", "Etot[eV]", "Epot[eV]", "Ekin[eV]", "T[K]", "Acc"]
    assert rows.shape == (4, 7)  # one line per iteration, none for the state before them
    np.testing.assert_allclose(rows[:, 0], np.arange(1, 5) * 5 * 2e-3, atol=1e-4)  # ps
    assert dyn.get_time() == pytest.approx(4 * 5 * dt)
    assert rows[:, 1].tolist() == [1, 2, 3, 4]
    assert (rows[:, 5] > 50).all()  # kinetic T of the drawn momenta, not 0 K
    np.testing.assert_allclose(rows[:, 6], accepted, atol=5e-4)
    with Trajectory(str(traj)) as frames:
        assert "hmc_acceptance" not in frames[0].info
        assert [f.info["hmc_iterations"] for f in frames[1:]] == [1, 2, 3, 4]
        assert [f.info["hmc_acceptance"] for f in frames[1:]] == pytest.approx(accepted)


def test_log_interval_and_stdout(copper, capsys):
    dyn = HMC(copper, 2 * units.fs, temperature_K=300, n_leapfrog=2, rng=0, logfile="-",
              loginterval=2)
    dyn.run(4)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + 2 and out[0].startswith("Time[ps]")
    assert [int(line.split()[1]) for line in out[1:]] == [2, 4]
