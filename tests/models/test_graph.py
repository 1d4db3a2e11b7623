import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from ase_amden.errors import InvalidStructureError
from ase_amden.models import periodic_graph

DTYPE = torch.float64


def _edges(src, dst, shift, cell):
    image = np.rint(shift.numpy() @ np.linalg.inv(cell)).astype(int)
    return sorted(zip(src.tolist(), dst.tolist(), map(tuple, image.tolist()), strict=True))


def _ase_edges(atoms, cutoff):
    i, j, image = neighbor_list("ijS", atoms, cutoff)
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, image.tolist()), strict=True))


@pytest.mark.parametrize("threads", [2, 3])
def test_batch_search_in_threads_gives_the_same_graph(threads):
    """The systems of a batch are searched in parallel threads; the edges must not change."""
    g = np.random.default_rng(5)
    cells = torch.tensor(np.stack([np.diag(g.uniform(6.0, 8.0, 3)) for _ in range(5)]))
    counts = [20, 31, 0, 12, 27]  # one empty system
    system_idx = torch.repeat_interleave(torch.arange(5), torch.tensor(counts))
    positions = torch.tensor(g.uniform(0.0, 8.0, (sum(counts), 3)))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = periodic_graph(positions, cells, system_idx, 3.5)
        torch.set_num_threads(threads)
        parallel = periodic_graph(positions, cells, system_idx, 3.5)
    finally:
        torch.set_num_threads(before)
    assert len(serial[0]) > 0
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a, b)


def test_si_primitive_cell_matches_ase_counts_and_distances():
    atoms = bulk("Si", "diamond", a=5.431)  # 2 atoms, cell far below 2 x cutoff
    positions = torch.tensor(atoms.positions, dtype=DTYPE)
    cell = torch.tensor(atoms.cell.array, dtype=DTYPE)[None]
    src, dst, shift = periodic_graph(positions, cell, torch.zeros(2, dtype=torch.long), 6.5)
    i, j, d = neighbor_list("ijd", atoms, 6.5)
    # Diamond shells below 6.5 Å (2.35, 3.84, 4.50, 5.43, 5.92 Å): 4 + 12 + 12 + 6 + 12 = 46;
    # the next shell (24 at 6.65 Å) lies outside.
    assert np.bincount(i).tolist() == [46, 46]
    assert torch.bincount(src).tolist() == [46, 46]
    distances = torch.linalg.vector_norm(positions[dst] - positions[src] + shift, dim=1)
    np.testing.assert_allclose(np.sort(distances.numpy()), np.sort(d), atol=1e-12)
    assert distances.min().item() == pytest.approx(5.431 * np.sqrt(3) / 4, abs=1e-12)


def test_batched_small_triclinic_cells_match_ase(triclinic_cell):
    g = np.random.default_rng(3)
    first = Atoms("Si3", positions=g.uniform(-3, 10, (3, 3)), cell=triclinic_cell.numpy(), pbc=True)
    second = Atoms("Si5", scaled_positions=g.random((5, 3)), cell=4.1 * np.eye(3), pbc=True)
    # Interleave the systems: atoms of a system need not be contiguous.
    system_idx = torch.tensor([0, 1, 1, 0, 1, 1, 0, 1])
    positions = torch.zeros(8, 3, dtype=DTYPE)
    positions[system_idx == 0] = torch.tensor(first.positions)
    positions[system_idx == 1] = torch.tensor(second.positions)
    cells = torch.tensor(np.stack([first.cell.array, second.cell.array]), dtype=DTYPE)
    src, dst, shift = periodic_graph(positions, cells, system_idx, 6.5)
    assert torch.equal(system_idx[src], system_idx[dst])
    for b, atoms in enumerate([first, second]):
        members = torch.nonzero(system_idx == b)[:, 0]
        local = {int(a): k for k, a in enumerate(members)}
        keep = system_idx[src] == b
        mine = _edges(
            torch.tensor([local[int(a)] for a in src[keep]]),
            torch.tensor([local[int(a)] for a in dst[keep]]),
            shift[keep],
            atoms.cell.array,
        )
        assert mine == _ase_edges(atoms, 6.5)


def test_single_atom_has_its_own_images_as_neighbours():
    cell = 3.0 * torch.eye(3, dtype=DTYPE)[None]
    src, dst, shift = periodic_graph(torch.zeros(1, 3, dtype=DTYPE), cell, torch.tensor([0]), 4.3)
    # 6 face images at 3 Å and 12 edge images at 4.24 Å.
    assert len(src) == 18
    assert torch.all(src == 0) and torch.all(dst == 0)


def test_edge_vectors_are_differentiable_with_respect_to_positions(triclinic_cell):
    g = torch.Generator().manual_seed(2)
    positions = (torch.rand(4, 3, generator=g, dtype=DTYPE) @ triclinic_cell).requires_grad_()
    system_idx = torch.zeros(4, dtype=torch.long)

    def total_length(x):
        src, dst, shift = periodic_graph(x, triclinic_cell[None], system_idx, 6.5)
        return torch.linalg.vector_norm(x[dst] - x[src] + shift, dim=1).sum()

    # The graph (and its shifts) are fixed under a small move, so autograd can be compared
    # with finite differences of the same edge set.
    assert torch.autograd.gradcheck(total_length, (positions,), eps=1e-7, atol=1e-6)


def test_zero_volume_cell_is_refused():
    cell = torch.tensor([[[3.0, 0, 0], [0, 3.0, 0], [3.0, 3.0, 0]]], dtype=DTYPE)
    with pytest.raises(InvalidStructureError, match="zero volume"):
        periodic_graph(torch.zeros(1, 3, dtype=DTYPE), cell, torch.tensor([0]), 2.0)


def test_non_finite_positions_are_refused_naming_the_atoms():
    positions = torch.zeros(3, 3, dtype=DTYPE)
    positions[1, 2] = float("nan")
    cell = 5.0 * torch.eye(3, dtype=DTYPE)[None]
    with pytest.raises(InvalidStructureError, match=r"atoms \[1\]"):
        periodic_graph(positions, cell, torch.zeros(3, dtype=torch.long), 2.0)
