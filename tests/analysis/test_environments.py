import numpy as np
import pytest

from ase_amden.analysis import (
    environment_descriptors,
    environment_entropy,
    environment_overlap,
)


def test_descriptors_shape(diamond, cristobalite):
    x = environment_descriptors([diamond, cristobalite], k=16, cutoff=5.0)
    assert x.shape == (len(diamond) + len(cristobalite), 2 * 16 - 1)
    assert x.dtype == np.float64


def test_entropy_orders_crystal_glass_gas(diamond, gas):
    assert environment_entropy(diamond) == pytest.approx(0.0, abs=1e-8)  # one environment
    rattled = diamond.copy()
    rattled.rattle(0.1, seed=0)
    h_rattled = environment_entropy(rattled)
    h_gas = environment_entropy(gas[0])
    assert 0.5 < h_rattled <= np.log(len(rattled)) + 1e-9
    assert h_gas <= np.log(len(gas[0])) + 1e-9
    # a larger bandwidth merges environments: lower entropy
    assert environment_entropy(rattled, h=0.15) < h_rattled


def test_overlap(diamond, gas):
    rattled = diamond.copy()
    rattled.rattle(0.1, seed=0)
    assert environment_overlap(rattled, rattled) == 1.0
    assert environment_overlap(diamond, [rattled, diamond]) == 1.0
    assert environment_overlap(gas[0], diamond) == 0.0


def test_torch_thread_setting_survives_quests():
    import torch
    from ase.build import bulk

    from ase_amden.analysis import environment_entropy, environment_overlap

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        crystal = bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2)
        environment_entropy(crystal)
        environment_overlap(crystal, crystal)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
