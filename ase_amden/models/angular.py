"""Three-body invariants of each atom's neighbourhood (bond-angle moments)."""

from __future__ import annotations

import torch
from torch import nn


class AngularMoments(nn.Module):
    """Moments of the bond-angle distribution of every atom, with learned radial weights.

    For radial channel ``c`` and power ``l = 0..L``::

        M_i^(c,l) = sum_j w_c(r_ij) u_ij (x) ... (x) u_ij      (l-fold outer product)
        q_i^(c,l) = |M_i^(c,l)|^2 = sum_{j,k} w_c(r_ij) w_c(r_ik) cos(theta_jik)^l

    with unit bond vectors ``u_ij`` and ``w_c(r) = f_cut(r) sum_b W_cb B_b(r)`` on the
    radial basis ``B``. The powers ``cos^0..cos^L`` span the Legendre polynomials up to
    degree ``L``, so the features hold what the three-body term of Stillinger-Weber sees
    (degree 2, ``(cos theta + 1/3)^2``) and the tetrahedral order (degree 3), which the
    distances of message passing reach only indirectly. Invariant under rotations,
    mirrors, translations and permutations; ``O(E C 3^L)`` per call.

    Parameters
    ----------
    n_basis
        Width of the radial basis ``B``.
    channels
        Number of radial channels ``C``.
    max_power
        Largest power ``L`` of ``cos theta``.

    Examples
    --------
    >>> moments = AngularMoments(n_basis=4, channels=2, max_power=3)
    >>> moments.width
    8

    """

    def __init__(self, n_basis: int, channels: int, max_power: int):
        super().__init__()
        if channels < 1 or max_power < 1:
            raise ValueError(f"AngularMoments needs channels >= 1 and max_power >= 1, got "
                             f"{channels} and {max_power}")
        self.max_power = max_power
        self.radial = nn.Linear(n_basis, channels, bias=False)

    @property
    def width(self) -> int:
        """Number of features per atom, ``C (L + 1)``."""
        return self.radial.out_features * (self.max_power + 1)

    def forward(self, edge_vector: torch.Tensor, basis: torch.Tensor, edge_weight: torch.Tensor,
                src: torch.Tensor, n_nodes: int,
                neighbour_weight: torch.Tensor | None = None) -> torch.Tensor:
        """``(n_nodes, C (L + 1))`` features, channel-major.

        Parameters
        ----------
        edge_vector
            ``(E, 3)`` vectors from ``src`` to its neighbour, Å.
        basis
            ``(E, n_basis)`` radial basis of the edge lengths.
        edge_weight
            ``(E, 1)`` smooth cutoff of the edge lengths.
        src
            ``(E,)`` atom each edge belongs to.
        n_nodes
            Number of atoms.
        neighbour_weight
            ``(E, C)`` factors of each neighbour's term per channel (e.g. learned from the
            neighbour's features, as in MACE's atomic basis); None: 1.

        """
        unit = edge_vector * edge_vector.square().sum(-1, keepdim=True).clamp(min=1e-12).rsqrt()
        weight = self.radial(basis) * edge_weight  # (E, C)
        if neighbour_weight is not None:
            weight = weight * neighbour_weight
        power = torch.ones_like(unit[:, :1])
        features = []
        for _ in range(self.max_power + 1):
            terms = weight.unsqueeze(-1) * power.unsqueeze(1)  # (E, C, 3^l)
            moment = terms.new_zeros(n_nodes, *terms.shape[1:]).index_add_(0, src, terms)
            features.append(moment.square().sum(-1))
            power = (power.unsqueeze(-1) * unit.unsqueeze(1)).flatten(1)
        return torch.stack(features, dim=-1).flatten(1)
