import numpy as np
import pytest
import torch

from ase_amden.errors import UnknownNameError
from ase_amden.training.batching import (
    collate,
    data_hash,
    element_vocabulary,
    property_statistics,
)


def test_collate_shapes_onehot_and_normalisation(make_structures):
    structures = make_structures(3, n_atoms=5)
    del structures[1].info["g"]
    elements = element_vocabulary(structures)
    assert elements == ["O", "Si"]
    mean, std, ranges = property_statistics(structures, ["g"])
    values = [a.info["g"] for a in structures if "g" in a.info]
    assert ranges == [[min(values), max(values)]]
    batch = collate(structures, elements, ["g"], mean, std)
    assert batch.positions.shape == (15, 3)
    assert batch.elements.shape == (15, 3)
    assert batch.cell.shape == (3, 3, 3)
    assert batch.system_idx.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    # one-hot of the real classes, ghost column empty
    assert torch.all(batch.elements.sum(1) == 1) and torch.all(batch.elements[:, 2] == 0)
    expected = [14 if s == "Si" else 8 for s in np.array(elements)[batch.elements.argmax(1)]]
    assert expected == np.concatenate([a.numbers for a in structures]).tolist()
    assert batch.property_mask[:, 0].tolist() == [True, False, True]
    given = batch.properties[batch.property_mask]
    assert abs(float(given.mean())) < 1e-12  # normalised with the stats of the given values
    np.testing.assert_allclose(batch.cell[1].numpy(), structures[1].cell[:])


def test_with_ghosts_fills_to_rho_max(make_structures):
    structures = make_structures(2, n_atoms=5, length=4.0)
    batch = collate(structures, ["O", "Si"])
    volumes = [s.cell.volume for s in structures]
    rho_max = 10 / min(volumes) + 1e-9
    ghosted = batch.with_ghosts(rho_max, torch.Generator().manual_seed(0))
    counts = torch.bincount(ghosted.system_idx).tolist()
    assert counts == [int(np.floor(rho_max * v)) for v in volumes]
    assert int(ghosted.elements[:, -1].sum()) == sum(counts) - 10


def test_data_hash_changes_with_data(make_structures):
    structures = make_structures(2)
    reference = data_hash(structures, ["g"])
    assert reference == data_hash(make_structures(2), ["g"])
    moved = make_structures(2)
    moved[0].positions[0, 0] += 1e-6
    assert data_hash(moved, ["g"]) != reference
    changed = make_structures(2)
    changed[1].info["g"] += 1.0
    assert data_hash(changed, ["g"]) != reference


def test_unknown_element_and_property_are_named(make_structures):
    structures = make_structures(1)
    with pytest.raises(UnknownNameError, match="'Si'"):
        collate(structures, ["O"])
    with pytest.raises(UnknownNameError, match="shear"):
        property_statistics(structures, ["shear"])


def test_log10_properties_are_normalised_on_the_log_scale(make_structures):
    structures = make_structures(3, n_atoms=4)
    for atoms, rate in zip(structures, [0.1, 10.0, 1000.0], strict=True):
        atoms.info["rate"] = rate
    mean, std, ranges = property_statistics(structures, ["rate"], [True])
    assert mean == [pytest.approx(1.0)] and ranges == [[-1.0, 3.0]]
    batch = collate(structures, ["O", "Si"], ["rate"], mean, std, [True])
    expected = (np.array([-1.0, 1.0, 3.0]) - 1.0) / std[0]
    np.testing.assert_allclose(batch.properties[:, 0].numpy(), expected)
