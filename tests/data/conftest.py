import pytest

from ase_amden.data import Protocol, Stage


@pytest.fixture
def tiny_protocol():
    """A protocol that runs in well under a second: 16 Si, 0.2 ps at 2500 K."""
    return Protocol(
        name="tiny-si",
        potential="sw-si",
        formula={"Si": 1},
        n_atoms=(16, 24),
        density_g_cm3=2.33,
        timestep_fs=2.0,
        stages=(Stage("minimize"), Stage("nvt", 2500.0, 1000.0, 0.2, measure_msd=True)),
        seed=7,
    )
