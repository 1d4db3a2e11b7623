import itertools

import pytest
import torch

from ase_amden.models.angular import AngularMoments
from ase_amden.models.egnn import radial_basis, smooth_cutoff

DTYPE = torch.float64


def _neighbourhood(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two centres with 4 and 3 neighbours: edge vectors, basis, cutoff weights, owners."""
    g = torch.Generator().manual_seed(seed)
    vectors = torch.randn(7, 3, dtype=DTYPE, generator=g)
    vectors = vectors / vectors.norm(dim=-1, keepdim=True) * (2.0 + torch.rand(7, 1, dtype=DTYPE,
                                                                              generator=g))
    length = vectors.norm(dim=-1, keepdim=True)
    return (vectors, radial_basis(length, 5.0, 6), smooth_cutoff(length, 5.0),
            torch.tensor([0, 0, 0, 0, 1, 1, 1]))


def test_moments_are_the_pair_sums_of_cosine_powers():
    """q_i^(c,l) = sum_{j,k} w_c(r_ij) w_c(r_ik) cos(theta_jik)^l, the diagonal j = k included."""
    torch.manual_seed(0)
    moments = AngularMoments(n_basis=6, channels=3, max_power=4).to(DTYPE)
    vectors, basis, cut, src = _neighbourhood(1)
    features = moments(vectors, basis, cut, src, 2).view(2, 3, 5)
    weight = moments.radial(basis) * cut
    unit = vectors / vectors.norm(dim=-1, keepdim=True)
    for i in range(2):
        edges = (src == i).nonzero().flatten().tolist()
        for c, power in itertools.product(range(3), range(5)):
            expected = sum(weight[j, c] * weight[k, c] * (unit[j] @ unit[k]) ** power
                           for j in edges for k in edges)
            torch.testing.assert_close(features[i, c, power], expected)


def test_moments_see_the_angle_and_not_only_the_distances():
    """Three neighbours at 2.35 Å: tetrahedral against planar at 120 degrees. Power 0 (a
    count) is equal; the odd powers (sum of cos^l over pairs) tell them apart."""
    torch.manual_seed(0)
    moments = AngularMoments(n_basis=6, channels=1, max_power=3).to(DTYPE)
    tetrahedral = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]],
                               dtype=DTYPE) / 3**0.5
    angle = torch.arange(3, dtype=DTYPE) * 2 * torch.pi / 3
    planar = torch.stack([angle.cos(), angle.sin(), torch.zeros(3, dtype=DTYPE)], dim=-1)
    out = []
    for unit in (tetrahedral, planar):
        vectors = 2.35 * unit
        length = vectors.norm(dim=-1, keepdim=True)
        out.append(moments(vectors, radial_basis(length, 5.0, 6), smooth_cutoff(length, 5.0),
                           torch.zeros(3, dtype=torch.long), 1)[0])
    torch.testing.assert_close(out[0][0], out[1][0])
    w2 = out[0][0] / 9  # the weight squared: power 0 counts the 9 ordered pairs
    # pairs j != k: cos = -1/3 (tetrahedral) and -1/2 (planar); diagonal terms 1
    torch.testing.assert_close(out[0][1], w2 * (3 + 6 * (-1 / 3)))
    torch.testing.assert_close(out[1][1], w2 * (3 + 6 * (-1 / 2)))
    torch.testing.assert_close(out[0][3], w2 * (3 + 6 * (-1 / 3) ** 3))


def test_moments_are_rotation_invariant_and_differentiable():
    torch.manual_seed(0)
    moments = AngularMoments(n_basis=6, channels=2, max_power=3).to(DTYPE)
    vectors, basis, cut, src = _neighbourhood(2)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=DTYPE, generator=torch.Generator()
                                       .manual_seed(3)))
    torch.testing.assert_close(moments(vectors @ q.T, basis, cut, src, 2),
                               moments(vectors, basis, cut, src, 2))
    vectors = vectors.clone().requires_grad_(True)
    torch.autograd.gradcheck(lambda v: moments(v, basis, cut, src, 2), (vectors,))


def test_moments_need_a_channel_and_a_power():
    with pytest.raises(ValueError, match="max_power >= 1"):
        AngularMoments(n_basis=4, channels=2, max_power=0)
