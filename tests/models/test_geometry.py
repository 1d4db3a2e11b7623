import numpy as np
import torch
from ase.cell import Cell
from ase.geometry import find_mic
from ase.geometry import wrap_positions as ase_wrap_positions

from ase_amden.models import cell_volume, minimum_image, wrap_positions

DTYPE = torch.float64


def test_wrap_positions_moves_by_lattice_vectors_into_the_cell(triclinic_cell):
    cells = torch.stack([triclinic_cell, 4.0 * torch.eye(3, dtype=DTYPE)])
    g = torch.Generator().manual_seed(0)
    positions = 30.0 * torch.randn(40, 3, generator=g, dtype=DTYPE)
    system_idx = torch.randint(0, 2, (40,), generator=g)
    wrapped = wrap_positions(positions, cells, system_idx)
    inverse = torch.linalg.inv(cells)[system_idx]
    fractional = torch.einsum("ni,nij->nj", wrapped, inverse)
    assert torch.all(fractional >= 0.0) and torch.all(fractional < 1.0)
    moved = torch.einsum("ni,nij->nj", positions - wrapped, inverse)
    assert torch.allclose(moved, moved.round(), atol=1e-9)
    # Matches ASE for each system.
    for b in range(2):
        mine = wrapped[system_idx == b].numpy()
        expected = ase_wrap_positions(positions[system_idx == b].numpy(), cells[b].numpy(), eps=0.0)
        np.testing.assert_allclose(mine, expected, atol=1e-9)


def test_wrap_positions_has_identity_jacobian(triclinic_cell):
    positions = torch.tensor([[9.1, -3.2, 20.5]], dtype=DTYPE, requires_grad=True)
    wrapped = wrap_positions(positions, triclinic_cell[None], torch.tensor([0]))
    jacobian = torch.stack(
        [torch.autograd.grad(wrapped[0, a], positions, retain_graph=True)[0][0] for a in range(3)]
    )
    assert torch.equal(jacobian, torch.eye(3, dtype=DTYPE))


def test_minimum_image_matches_ase_for_near_orthogonal_triclinic_cell(triclinic_cell):
    g = torch.Generator().manual_seed(1)
    displacement = 15.0 * torch.randn(200, 3, generator=g, dtype=DTYPE)
    mine = minimum_image(displacement, triclinic_cell[None], torch.zeros(200, dtype=torch.long))
    expected, _ = find_mic(displacement.numpy(), triclinic_cell.numpy(), pbc=True)
    # Rounding is exact for displacements shorter than half the smallest cell height.
    lengths = np.linalg.norm(expected, axis=1)
    short = lengths < 0.5 * 6.4
    np.testing.assert_allclose(mine.numpy()[short], expected[short], atol=1e-9)
    # Elsewhere the result is still an image of the input and never longer than it.
    fractional = (displacement - mine) @ torch.linalg.inv(triclinic_cell)
    assert torch.allclose(fractional, fractional.round(), atol=1e-9)
    assert np.all(np.linalg.norm(mine.numpy(), axis=1) <= lengths * 1.5 + 1e-9)


def test_minimum_image_is_exact_for_orthorhombic_cells():
    cell = torch.diag(torch.tensor([4.0, 5.0, 6.0], dtype=DTYPE))[None]
    displacement = torch.tensor([[3.5, -7.0, 2.9], [-2.1, 2.4, 11.9]], dtype=DTYPE)
    mine = minimum_image(displacement, cell, torch.zeros(2, dtype=torch.long))
    expected = torch.tensor([[-0.5, -2.0, 2.9], [1.9, 2.4, -0.1]], dtype=DTYPE)
    assert torch.allclose(mine, expected, atol=1e-12)


def test_cell_volume_matches_ase_for_both_handednesses(triclinic_cell):
    mirrored = triclinic_cell.clone()
    mirrored[0] = -mirrored[0]
    volumes = cell_volume(torch.stack([triclinic_cell, mirrored]))
    expected = Cell(triclinic_cell.numpy()).volume
    assert torch.allclose(volumes, torch.tensor([expected, expected], dtype=DTYPE))
