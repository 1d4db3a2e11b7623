"""Polarizable atom interaction layers with vector features (PaiNN; Schütt et al. 2021).

An alternative backbone to the EGNN of :mod:`ase_amden.models.egnn`: every atom
carries ``F`` invariant features ``s`` and ``F`` equivariant vectors ``v``, so many-body
angular information (sums over neighbour pairs of ``r_ij . r_ik``) reaches the invariant
features through the scalar products ``<U v, V v>`` of the update block, without the
vector channels having to be built up as positions first.
"""

from __future__ import annotations

import torch
from torch import nn

#: Added under the square root of the vector norms, Å^0; keeps the gradient finite at v = 0.
_NORM_EPS = 1e-8


class PaiNNLayer(nn.Module):
    """One PaiNN message block and one update block (Schütt et al. 2021, eqs. 7-10).

    With ``r_ij`` the unit vector from atom ``i`` to neighbour ``j``, ``phi(s_j)`` a
    two-layer SiLU MLP and ``W(e_ij)`` a linear filter of the edge attributes times the
    smooth cutoff::

        (a, b, c)_ij = phi(s_j) * W(e_ij)                       (3 F each)
        s_i += sum_j a_ij / n_norm
        v_i += sum_j (b_ij v_j + c_ij r_ij) / n_norm
        (a_vv, a_sv, a_ss)_i = MLP([s_i, |V v_i|])
        v_i += a_vv U v_i
        s_i += a_sv <U v_i, V v_i> + a_ss

    ``U`` and ``V`` mix the vector channels without bias (equivariant). The neighbour
    sums are normalised by ``n_norm`` as in the EGNN layers.

    Parameters
    ----------
    hidden
        Number of features ``F`` (scalar and vector).
    edge_dim
        Width of the edge attributes.
    n_norm
        Normalisation of the neighbour sums (about the mean neighbour count).

    """

    def __init__(self, hidden: int, edge_dim: int, n_norm: float):
        super().__init__()
        self.hidden = hidden
        self.n_norm = n_norm
        self.context = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, 3 * hidden))
        self.filter = nn.Linear(edge_dim, 3 * hidden)
        self.mix = nn.Linear(hidden, 2 * hidden, bias=False)
        self.update = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(),
                                    nn.Linear(hidden, 3 * hidden))

    def forward(
        self,
        s: torch.Tensor,
        v: torch.Tensor,
        src: torch.Tensor,
        dst: torch.Tensor,
        unit: torch.Tensor,
        edge_attr: torch.Tensor,
        edge_weight: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the scalar and vector features.

        Parameters
        ----------
        s
            ``(N, F)`` scalar features.
        v
            ``(N, 3, F)`` vector features (Cartesian axis second).
        src, dst
            ``(E,)`` edges; messages flow from ``dst`` into ``src``.
        unit
            ``(E, 3)`` unit vectors from ``src`` to the image of ``dst``.
        edge_attr
            ``(E, edge_dim)`` edge attributes.
        edge_weight
            ``(E, 1)`` smooth cutoff.

        Returns
        -------
        s, v
            Updated ``(N, F)`` and ``(N, 3, F)`` features.

        """
        f = self.hidden
        x = self.context(s).index_select(0, dst) * self.filter(edge_attr) * edge_weight
        a, b, c = x.split(f, dim=-1)
        message = b.unsqueeze(1) * v.index_select(0, dst) + c.unsqueeze(1) * unit.unsqueeze(-1)
        s = s + a.new_zeros(s.shape).index_add_(0, src, a) / self.n_norm
        v = v + message.new_zeros(v.shape).index_add_(0, src, message) / self.n_norm

        uv, vv = self.mix(v).split(f, dim=-1)
        norm = (vv.square().sum(1) + _NORM_EPS).sqrt()
        a_vv, a_sv, a_ss = self.update(torch.cat([s, norm], dim=-1)).split(f, dim=-1)
        v = v + a_vv.unsqueeze(1) * uv
        s = s + a_sv * (uv * vv).sum(1) + a_ss
        return s, v


class PaiNNReadout(nn.Module):
    """The equivariant output vector of each atom: a bias-free map of its vector features.

    Parameters
    ----------
    hidden
        Number of vector features ``F``.
    init_scale
        Scale of the initial weights; small values make an untrained network predict a
        vector close to zero (as the EGNN's coordinate layers do).

    """

    def __init__(self, hidden: int, init_scale: float = 1e-3):
        super().__init__()
        self.linear = nn.Linear(hidden, 1, bias=False)
        nn.init.uniform_(self.linear.weight, -init_scale, init_scale)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 3)`` output vectors from ``(N, 3, F)`` vector features."""
        return self.linear(v).transpose(1, 2)
