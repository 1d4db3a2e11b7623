import pytest
import torch

from ase_amden.models import Denoiser, DenoiserConfig

DTYPE = torch.float64


def _random_orthogonal(seed: int, proper: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=DTYPE))
    q = q * torch.sign(torch.diagonal(r))
    if bool(torch.linalg.det(q) > 0) != proper:
        q[:, 0] = -q[:, 0]
    return q


def _make_model(seed: int = 0, *, scale: float = 0.3, **overrides) -> Denoiser:
    config = DenoiserConfig(
        **{"n_classes": 3, "hidden": 16, "n_layers": 2, "n_vector": 4, "time_dim": 4, **overrides}
    )
    torch.manual_seed(seed)
    model = Denoiser(config).to(DTYPE)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, scale)
    return model.eval()


def _random_system(n_atoms: int, cell: torch.Tensor, seed: int, n_classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    positions = torch.rand(n_atoms, 3, generator=g, dtype=DTYPE) @ cell
    elements = torch.randn(n_atoms, n_classes, generator=g, dtype=DTYPE)
    return positions, elements


@pytest.fixture
def random_orthogonal():
    """``f(seed, proper)``: random 3x3 orthogonal matrix, det +1 (proper) or -1 (mirror)."""
    return _random_orthogonal


@pytest.fixture
def make_model():
    """``f(seed, scale=0.3, **config)``: tiny float64 model with all weights redrawn.

    The library starts its output layers near zero; redrawn O(1) weights make
    equivariance and continuity checks sensitive.
    """
    return _make_model


@pytest.fixture
def random_system():
    """``f(n_atoms, cell, seed)``: random positions in ``cell`` and noisy element vectors."""
    return _random_system


@pytest.fixture
def triclinic_cell() -> torch.Tensor:
    """A skewed cell (rows are lattice vectors), smaller than twice the 6.5 Å cutoff."""
    return torch.tensor([[7.0, 0.0, 0.0], [1.2, 6.5, 0.0], [-0.8, 0.9, 7.5]], dtype=DTYPE)
