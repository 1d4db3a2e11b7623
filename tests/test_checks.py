"""Checks of generated structures (ase_amden.checks) and their place in generate."""

from dataclasses import asdict

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from ase_amden.checks import (
    check_number_density,
    check_structures,
    min_distance_limits,
    pair_min_distances,
)
from ase_amden.errors import InvalidArgumentError, StructureCheckError
from ase_amden.generator import AmorphousGenerator
from ase_amden.models import DenoiserConfig, ModelCard


def _quartz_like():
    atoms = Atoms("Si2O", positions=[[0, 0, 0], [3.1, 0, 0], [1.55, 0.0, 0.0]],
                  cell=[8.0, 8.0, 8.0], pbc=True)
    return atoms


def test_pair_min_distances_match_known_geometry():
    diamond = bulk("Si", "diamond", a=5.431, cubic=True)
    closest = pair_min_distances([diamond, _quartz_like()])
    assert closest["Si-Si"] == pytest.approx(5.431 * np.sqrt(3) / 4)  # 2.352 Å bond
    assert closest["O-Si"] == pytest.approx(1.55)
    assert "O-O" not in closest  # one O per cell of 8 Å: none within the search cutoff


def test_limits_come_from_training_data_else_covalent_radii():
    limits = min_distance_limits(["O", "Si"], {"min_distances": {"O-Si": 1.6}})
    assert limits["O-Si"] == pytest.approx(0.75 * 1.6)
    assert limits["Si-Si"] == pytest.approx(0.6 * 2 * 1.11)  # ASE covalent radius of Si
    assert limits["O-O"] == pytest.approx(0.6 * 2 * 0.66)


def test_check_records_closest_pair_and_problems():
    good = bulk("Si", "diamond", a=5.431, cubic=True)
    close = good.copy()
    close.positions[1] = close.positions[0] + [0.5, 0.5, 0.0]
    with pytest.warns(UserWarning, match="1 of 2 structure\\(s\\).*structure 1: 1 Si-Si pair"):
        check_structures([good, close], ["Si"])
    assert good.info["check_warnings"] == "none"
    assert good.info["check_min_distance"] == pytest.approx(2.352, abs=1e-3)
    assert close.info["check_min_distance"] == pytest.approx(np.sqrt(0.5))
    assert "closer than 1.33 Å" in close.info["check_warnings"]
    with pytest.raises(StructureCheckError, match="structure 1"):
        check_structures([good, close], ["Si"], mode="strict")


def test_check_flags_composition_empty_and_huge_output():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    with pytest.warns(UserWarning, match="composition Si8 differs.*O2Si6"):
        check_structures([atoms], ["O", "Si"], symbols=["Si"] * 6 + ["O"] * 2)
    with pytest.warns(UserWarning, match="network output reached 1e\\+04"):
        check_structures([atoms], ["Si"], largest_output=1e4)
    empty = Atoms(cell=[5, 5, 5], pbc=True)
    with pytest.warns(UserWarning, match="no atoms"):
        check_structures([empty], ["Si"])
    assert "no atoms" in empty.info["check_warnings"]


def test_off_leaves_info_alone_and_unknown_mode_is_refused():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    check_structures([atoms], ["Si"], mode="off")
    assert "check_warnings" not in atoms.info
    with pytest.raises(InvalidArgumentError, match="check must be one of"):
        check_structures([atoms], ["Si"], mode="loud")


def test_number_density_in_g_cm3_is_refused():
    check_number_density(0.05)
    with pytest.raises(InvalidArgumentError, match="2.33 looks like g/cm3"):
        check_number_density(2.33)


class HugeOutput(torch.nn.Module):
    """Denoiser stand-in whose noise prediction is 1e4 everywhere (garbage, but finite)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1e4, dtype=torch.float64))

    def forward(self, positions, elements, cell, system_idx, t, properties=None,
                property_mask=None, step_size=None):
        return self.scale * torch.ones_like(positions), torch.zeros_like(elements)


def test_generate_warns_about_garbage_network_output():
    config = DenoiserConfig(n_classes=2, hidden=8, n_layers=1, n_vector=2, cutoff=3.0)
    card = ModelCard(name="garbage", elements=["Si"], model_config=asdict(config))
    generator = AmorphousGenerator(HugeOutput(), card, device="cpu")
    with pytest.warns(UserWarning, match="network output reached 1e\\+04"):
        (atoms,) = generator.generate(cell=8.0, n_atoms=8, steps=3, seed=0, progress=False)
    assert "noise wrapped into the cell" in atoms.info["check_warnings"]
    with pytest.raises(StructureCheckError, match="network output"):
        generator.generate(cell=8.0, n_atoms=8, steps=3, seed=0, progress=False,
                           check="strict")


def test_shipped_models_carry_checksums_and_training_closest_pairs():
    from ase_amden.generator import PRETRAINED_DIR
    from ase_amden.training import read_checkpoint
    from ase_amden.training.checkpoint import weights_checksum

    for path in sorted(PRETRAINED_DIR.glob("*.pt")):
        payload = read_checkpoint(path)
        assert payload["checksum"] == weights_checksum(payload["model"])
        card = payload["card"]
        closest = card["training"]["min_distances"]
        elements = sorted(card["elements"], key=lambda s: Atoms(s).numbers[0])
        expected = {f"{a}-{b}" for i, a in enumerate(elements) for b in elements[i:]}
        assert set(closest) == expected
        assert all(1.0 < value < 2.5 for value in closest.values())  # Å, bonded neighbours
