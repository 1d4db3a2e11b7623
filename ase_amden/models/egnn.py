"""E(3)-equivariant message passing with vector channels (AMDEN eqs. 8-11)."""

from __future__ import annotations

import torch
from torch import nn

from ase_amden.models.angular import AngularMoments


def smooth_cutoff(distance: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Smooth cutoff ``f_cut(r) = 2 tanh(1 - min(r, r_c) / r_c)^2`` (AMDEN eq. 10).

    It falls from ``2 tanh(1)^2 = 1.16`` at ``r = 0`` to zero at ``r = r_c``
    with zero slope there, so anything it multiplies vanishes smoothly as a
    neighbour leaves the cutoff sphere.

    Parameters
    ----------
    distance
        Distances, Å, any shape.
    cutoff
        Cutoff radius ``r_c``, Å.

    Returns
    -------
    torch.Tensor
        Weights of the shape of ``distance``.

    Examples
    --------
    >>> smooth_cutoff(torch.tensor([0.0, 6.5, 7.0]), 6.5)
    tensor([1.1601, 0.0000, 0.0000])

    """
    return 2.0 * torch.tanh(1.0 - distance.clamp(max=cutoff) / cutoff) ** 2


def distance_embedding(distance_sq: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Edge attribute ``e_ij = 2 tanh(r^2 / r_c^2) - 1`` (AMDEN eq. 8).

    Parameters
    ----------
    distance_sq
        Squared distances, Å^2, any shape.
    cutoff
        Cutoff radius ``r_c``, Å.

    Returns
    -------
    torch.Tensor
        Attributes in ``[-1, 1)`` of the shape of ``distance_sq``.

    """
    return 2.0 * torch.tanh(distance_sq / cutoff**2) - 1.0


def radial_basis(distance: torch.Tensor, cutoff: float, n_basis: int) -> torch.Tensor:
    """Gaussians of the distance centred evenly on ``[0, r_c]``, width their spacing.

    An optional, finer edge attribute than :func:`distance_embedding` alone: one
    scalar passed through a linear layer resolves neighbour shells only coarsely,
    while ``n_basis`` overlapping bumps let the network tell, e.g., a 2.35 Å bond
    from a stretched 2.6 Å one (as in SchNet and later interatomic potentials).

    Parameters
    ----------
    distance
        ``(E, 1)`` distances, Å.
    cutoff
        Cutoff radius ``r_c``, Å.
    n_basis
        Number of Gaussians (at least 2).

    Returns
    -------
    torch.Tensor
        ``(E, n_basis)`` values in ``(0, 1]``.

    Examples
    --------
    >>> radial_basis(torch.tensor([[0.0], [5.0]]), 5.0, 3).round(decimals=3)
    tensor([[1.0000, 0.6070, 0.1350],
            [0.1350, 0.6070, 1.0000]])

    """
    centres = torch.linspace(0.0, cutoff, n_basis, dtype=distance.dtype, device=distance.device)
    width = cutoff / (n_basis - 1)
    return torch.exp(-0.5 * ((distance - centres) / width) ** 2)


def moments_of_vectors(moments: AngularMoments, vectors: torch.Tensor, cutoff: float,
                       src: torch.Tensor, n_nodes: int,
                       neighbour_weight: torch.Tensor | None = None) -> torch.Tensor:
    """:class:`~ase_amden.models.angular.AngularMoments` of edges given only as vectors.

    The lengths, their radial basis (as wide as ``moments`` takes) and the smooth cutoff
    are derived from ``vectors`` ``(E, 3)``, Å, for a geometry other than the input
    graph's (a self-conditioning estimate, a layer's vector channel), on its edges.
    """
    length = vectors.square().sum(-1, keepdim=True).clamp(min=1e-12).sqrt()
    return moments(vectors, radial_basis(length, cutoff, moments.radial.in_features),
                   smooth_cutoff(length, cutoff), src, n_nodes, neighbour_weight)


class PairLinear(nn.Module):
    """``Linear([h_i, h_j, e_ij])`` computed as two node maps and one edge term.

    Equal to a linear layer on the concatenation ``[h_src, h_dst, e]`` but
    costs ``O(N h^2 + E h)`` instead of ``O(E h^2)``: the node features are
    projected once per node and then gathered to the edges.

    Parameters
    ----------
    node_dim
        Width of ``h``.
    edge_dim
        Width of the edge attributes ``e``.
    out_dim
        Output width.

    """

    def __init__(self, node_dim: int, edge_dim: int, out_dim: int):
        super().__init__()
        self.source = nn.Linear(node_dim, out_dim)
        self.target = nn.Linear(node_dim, out_dim, bias=False)
        self.edge = nn.Linear(edge_dim, out_dim, bias=False)

    def forward(
        self, h: torch.Tensor, edge_attr: torch.Tensor, src: torch.Tensor, dst: torch.Tensor
    ) -> torch.Tensor:
        """``(E, out_dim)`` pre-activations of the edges ``src -> dst``."""
        # index_select gathers rows several times faster than advanced indexing on the CPU.
        return (self.source(h).index_select(0, src) + self.target(h).index_select(0, dst)
                + self.edge(edge_attr))


class EGNNLayer(nn.Module):
    """One EGNN layer with attention and ``k`` vector channels (AMDEN eq. 9, 11).

    Node features ``H`` (invariant) and per-atom vector channels ``X``
    (``k`` positions per atom, equivariant) are updated as::

        m_ij   = MLP_edge([H_i, H_j, e_ij])
        a_ij   = sigmoid(Linear_att(m_ij))
        H_i   += MLP_node([H_i, sum_j f_cut(r_ij) a_ij m_ij / n_norm])
        Phi_ij = MLP_coord([H_i, H_j, e_ij])              (k x k)
        X_i   += sum_j f_cut(r_ij) Phi_ij (X_i - X_j - o_ij) / n_norm

    ``r_ij`` and ``e_ij`` come from the input positions (layer 0). With
    ``channel_distances`` the edge attributes of both MLPs also hold the
    distance embedding of every vector channel, ``2 tanh(|X^c_i - X^c_j - o_ij|^2
    / r_c^2) - 1`` from the layer's input channels, as in the EGNN of Satorras
    et al. and its multi-channel form (Levy et al. 2023): the invariant features
    then see the geometry the earlier layers have built (AMDEN's layers see only
    the input distances). The
    smooth cutoff multiplies both the messages and the coordinate updates,
    so the output is continuous when atoms cross the cutoff sphere. MLPs are
    ``Linear -> LayerNorm -> SiLU -> Linear``; the edge MLP ends in SiLU.

    Parameters
    ----------
    hidden
        Width of the node features.
    n_vector
        Number of vector channels ``k``.
    n_norm
        Normalisation of the neighbour sums (about the mean neighbour count).
    coord_init_scale
        Scale of the initial weights of the last coordinate-MLP layer; small
        values make an untrained layer move the vector channels little.
    edge_dim
        Width of the edge attributes (1: AMDEN's ``e_ij``; more with a radial basis).
    channel_distances
        Add the ``k`` channel distance embeddings to the edge attributes; needs
        ``cutoff``.
    cutoff
        Cutoff radius ``r_c`` of the channel distance embeddings, Å.
    channel_angles
        Feed the node MLP the ``k (k + 1) / 2`` dot products of the atom's channel
        displacements (see above).
    angular_power
        0: off. ``L >= 1``: the node update also gets the bond-angle moments
        (:class:`~ase_amden.models.angular.AngularMoments`, powers ``0..L``) of the
        geometry of vector channel 0 as the layer receives it (the structure the earlier
        layers have built), each neighbour's term weighted per radial channel by a linear
        map of its node features, through a map that starts at zero; needs ``cutoff``.
    angular_channels
        Radial channels of those moments.
    angular_basis
        Gaussians of the radial basis of those moments (at least 2).

    """

    def __init__(
        self,
        hidden: int,
        n_vector: int,
        n_norm: float,
        coord_init_scale: float = 1e-3,
        edge_dim: int = 1,
        channel_distances: bool = False,
        cutoff: float | None = None,
        channel_angles: bool = False,
        angular_power: int = 0,
        angular_channels: int = 8,
        angular_basis: int = 16,
    ):
        super().__init__()
        if channel_distances and cutoff is None:
            raise ValueError("channel_distances needs the cutoff radius")
        self.n_vector = n_vector
        self.n_norm = n_norm
        self.channel_cutoff = cutoff if channel_distances else None
        if channel_distances:
            edge_dim += n_vector
        self.edge_in = PairLinear(hidden, edge_dim, hidden)
        self.edge_out = nn.Sequential(
            nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )
        self.attention = nn.Linear(hidden, 1)
        self.register_buffer("angle_pairs", torch.triu_indices(n_vector, n_vector)
                             if channel_angles else None, persistent=False)
        n_angles = n_vector * (n_vector + 1) // 2 if channel_angles else 0
        self.node_mlp = nn.Sequential(
            nn.Linear(2 * hidden + n_angles, hidden),
            nn.LayerNorm(hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
        )
        self.moments = None
        if angular_power:
            if cutoff is None:
                raise ValueError("angular_power needs the cutoff radius")
            self.moment_cutoff = cutoff
            self.moments = AngularMoments(angular_basis, angular_channels, angular_power)
            self.moment_neighbour = nn.Linear(hidden, angular_channels)
            self.moment_out = nn.Sequential(nn.LayerNorm(self.moments.width),
                                            nn.Linear(self.moments.width, hidden))
            nn.init.zeros_(self.moment_out[-1].weight)
            nn.init.zeros_(self.moment_out[-1].bias)
        self.coord_in = PairLinear(hidden, edge_dim, hidden)
        self.coord_out = nn.Sequential(
            nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, n_vector * n_vector)
        )
        nn.init.uniform_(self.coord_out[-1].weight, -coord_init_scale, coord_init_scale)
        nn.init.zeros_(self.coord_out[-1].bias)

    def forward(
        self,
        h: torch.Tensor,
        vectors: torch.Tensor,
        src: torch.Tensor,
        dst: torch.Tensor,
        edge_vector: torch.Tensor,
        edge_attr: torch.Tensor,
        edge_weight: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Update node features and vector channels.

        Parameters
        ----------
        h
            ``(N, hidden)`` node features.
        vectors
            ``(N, k, 3)`` displacement of each vector channel from the input
            position of its atom, Å (``X^(l) - X``; zero before the first
            layer). Working with displacements keeps every difference free
            of the periodic wrap.
        src, dst
            ``(E,)`` edges; messages flow from ``dst`` into ``src``.
        edge_vector
            ``(E, 3)`` input-position vector from ``src`` to the image of
            ``dst``, Å (``X_j + o_ji - X_i``).
        edge_attr
            ``(E, edge_dim)`` distance embedding ``e_ij`` (and radial basis).
        edge_weight
            ``(E, 1)`` smooth cutoff ``f_cut(r_ij)``.

        Returns
        -------
        h, vectors
            Updated node features ``(N, hidden)`` and channel displacements
            ``(N, k, 3)``, Å.

        """
        # d_ij = X_i - X_j - o_ij per channel, from displacements and the input edge vector.
        difference = (vectors.index_select(0, src) - vectors.index_select(0, dst)
                      - edge_vector.unsqueeze(1))
        if self.channel_cutoff is not None:
            channel_attr = distance_embedding(difference.square().sum(-1), self.channel_cutoff)
            edge_attr = torch.cat([edge_attr, channel_attr], dim=-1)
        messages = self.edge_out(self.edge_in(h, edge_attr, src, dst))
        messages = torch.sigmoid(self.attention(messages)) * messages * edge_weight
        # sums in the dtype of what is summed (they differ under autocast)
        aggregated = messages.new_zeros(h.shape).index_add_(0, src, messages) / self.n_norm
        node_input = [h, aggregated]
        if self.angle_pairs is not None:
            a, b = self.angle_pairs
            node_input.append((vectors[:, a] * vectors[:, b]).sum(-1).to(h.dtype))
        node_update = self.node_mlp(torch.cat(node_input, dim=-1))
        if self.moments is not None:
            moments = moments_of_vectors(self.moments, difference[:, 0], self.moment_cutoff, src,
                                         h.shape[0], self.moment_neighbour(h).index_select(0, dst))
            node_update = node_update + self.moment_out(moments)
        h = h + node_update

        phi = self.coord_out(self.coord_in(h, edge_attr, src, dst))
        phi = phi.view(-1, self.n_vector, self.n_vector)
        update = torch.einsum("eab,ebc->eac", phi, difference) * edge_weight.unsqueeze(-1)
        vectors = vectors + update.new_zeros(vectors.shape).index_add_(0, src, update) / self.n_norm
        return h, vectors

