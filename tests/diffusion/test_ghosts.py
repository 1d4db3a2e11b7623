import numpy as np
import pytest
import torch

from ase_amden.diffusion import add_ghosts, ghost_count, node_count, remove_ghosts


def test_counts_follow_floor_rho_v():
    assert node_count(1000.0, 0.05) == 50
    assert node_count(999.0, 0.05) == 49  # floor(49.95)
    assert ghost_count(40, 1000.0, 0.05) == 10
    assert ghost_count(60, 1000.0, 0.05) == 0  # denser than rho_max: no ghosts
    # round-off: 0.29 * 100 is 28.999999999999996 in floating point, but floor(rho V) = 29
    assert 0.29 * 100 < 29
    assert node_count(100.0, 0.29) == 29


def test_add_ghosts_batched():
    g = torch.Generator().manual_seed(0)
    cell = torch.stack([torch.diag(torch.tensor([4.0, 5.0, 6.0])),
                        torch.tensor([[5.0, 0.0, 0.0], [1.0, 5.0, 0.0], [0.5, 0.5, 5.0]]),
                        3.0 * torch.eye(3)]).double()
    counts = [3, 5, 20]
    system_idx = torch.arange(3).repeat_interleave(torch.tensor(counts))
    positions = torch.rand(sum(counts), 3, generator=g, dtype=torch.float64)
    classes = torch.randint(2, (sum(counts),), generator=g)
    elements = torch.nn.functional.one_hot(classes, 3).double()
    rho_max = 0.1
    new_pos, new_el, new_idx = add_ghosts(positions, elements, cell, system_idx, rho_max,
                                          generator=g)
    volumes = torch.linalg.det(cell).abs().tolist()
    expected_ghosts = [
        max(0, int(np.floor(rho_max * v)) - n) for v, n in zip(volumes, counts, strict=True)
    ]
    assert expected_ghosts == [9, 7, 0]
    assert torch.all(new_idx[1:] >= new_idx[:-1])  # still sorted by structure
    ghost = new_el[:, 2] == 1
    for b in range(3):
        in_b = new_idx == b
        assert int((in_b & ghost).sum()) == expected_ghosts[b]
        # real atoms first, unchanged and in order
        n = counts[b]
        assert torch.equal(new_pos[in_b][:n], positions[system_idx == b])
        assert torch.equal(new_el[in_b][:n], elements[system_idx == b])
        assert not ghost[in_b][:n].any()
        # ghosts inside the cell
        frac = new_pos[in_b & ghost] @ torch.linalg.inv(cell[b])
        assert (frac >= 0).all() and (frac < 1).all()
    assert torch.all(new_el[ghost].sum(-1) == 1)


def test_ghost_positions_are_uniform():
    cell = 10.0 * torch.eye(3, dtype=torch.float64).unsqueeze(0)
    positions = torch.zeros(0, 3, dtype=torch.float64)
    elements = torch.zeros(0, 2, dtype=torch.float64)
    system_idx = torch.zeros(0, dtype=torch.long)
    new_pos, _, _ = add_ghosts(positions, elements, cell, system_idx, 4.0,
                               generator=torch.Generator().manual_seed(2))
    assert len(new_pos) == 4000
    assert torch.allclose(new_pos.mean(0), torch.full((3,), 5.0, dtype=torch.float64), atol=0.2)
    assert torch.allclose(new_pos.var(0), torch.full((3,), 100 / 12, dtype=torch.float64),
                          rtol=0.08)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_remove_ghosts(lib):
    positions = np.arange(12.0).reshape(4, 3)
    classes = np.array([0, 2, 1, 2])
    if lib == "torch":
        positions, classes = torch.as_tensor(positions), torch.as_tensor(classes)
    pos, cls = remove_ghosts(positions, classes, ghost_index=2)
    assert cls.tolist() == [0, 1]
    assert pos.tolist() == [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]]
