"""Node-input features: diffusion time, step size and property embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ase_amden.errors import unknown_name
from ase_amden.random_streams import RandomStream, randn

#: Null-embedding modes of :class:`PropertyEmbedding`.
NULL_EMBEDDINGS = ("learned", "random")


class SinusoidalFeatures(nn.Module):
    """Raw value plus sines and cosines of a scalar in ``[0, 1]``.

    ``x -> [x, sin(2 pi f_k x), cos(2 pi f_k x)]`` with ``dim // 2``
    frequencies ``f_k`` log-spaced from 1 to ``max_frequency``. Used for the
    diffusion time ``t`` and the shortcut step size ``d``.

    Parameters
    ----------
    dim
        Number of sinusoidal features (``2 * (dim // 2)`` are made).
    max_frequency
        Highest frequency, cycles per unit of the input.

    Examples
    --------
    >>> features = SinusoidalFeatures(4)
    >>> features(torch.tensor([0.0, 0.5])).shape
    torch.Size([2, 5])

    """

    def __init__(self, dim: int, max_frequency: float = 64.0):
        super().__init__()
        n_frequencies = dim // 2
        frequencies = torch.logspace(0.0, math.log10(max_frequency), n_frequencies)
        self.register_buffer("frequencies", frequencies, persistent=False)
        #: Width of the output.
        self.width = 1 + 2 * n_frequencies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of ``x``.

        Parameters
        ----------
        x
            ``(B,)`` values, typically in ``[0, 1]``.

        Returns
        -------
        torch.Tensor
            ``(B, width)`` features.

        """
        angles = 2.0 * math.pi * x.unsqueeze(-1) * self.frequencies.to(x.dtype)
        return torch.cat([x.unsqueeze(-1), torch.sin(angles), torch.cos(angles)], dim=-1)


class PropertyEmbedding(nn.Module):
    """Embed named scalar properties, with a null embedding for absent ones.

    Each property ``y_p`` becomes ``LayerNorm_p(Linear_p(y_p))`` of width
    ``dim`` (AMDEN eq. 13), each property with its own linear map and layer
    norm. With ``n_basis > 0`` it becomes instead
    ``LayerNorm_p(MLP_p(phi(y_p)))``: ``n_basis`` Gaussians ``phi`` with centres
    evenly over ``[-basis_range, basis_range]`` (normalised units) and a width of
    their spacing, then a two-layer MLP with SoftPlus (Yang and Schwalbe-Koda's
    cooling-rate embedding), which can respond non-monotonically to the value.
    Where a property is absent (``mask`` False) its embedding is the
    null embedding: a learned vector per property (``"learned"``; trained
    with property dropout), or a fresh ``N(0, I)`` draw for every structure
    and call (``"random"``, AMShortcut), which has the same distribution as
    the layer-normed embeddings of given properties.

    Parameters
    ----------
    n_properties
        Number of properties ``P``.
    dim
        Embedding width per property.
    null_embedding
        ``"learned"`` or ``"random"``.
    n_basis
        Number of Gaussians (0: AMDEN's linear map).
    basis_range
        Centres of the Gaussians span ``[-basis_range, basis_range]``.

    Examples
    --------
    >>> embed = PropertyEmbedding(2, dim=8)
    >>> values = torch.tensor([[0.3, float("nan")]])
    >>> embed(values, torch.tensor([[True, False]])).shape
    torch.Size([1, 16])
    >>> basis = PropertyEmbedding(1, dim=8, n_basis=9)
    >>> basis(torch.zeros(3, 1), torch.ones(3, 1, dtype=bool)).shape
    torch.Size([3, 8])

    """

    def __init__(self, n_properties: int, dim: int = 8, null_embedding: str = "learned",
                 n_basis: int = 0, basis_range: float = 2.5):
        super().__init__()
        if null_embedding not in NULL_EMBEDDINGS:
            raise unknown_name("null embedding", null_embedding, NULL_EMBEDDINGS)
        if n_basis < 0 or n_basis == 1:
            raise ValueError(f"n_basis must be 0 or >= 2, got {n_basis}")
        self.n_properties = n_properties
        self.dim = dim
        self.null_embedding = null_embedding
        self.n_basis = n_basis
        if n_basis:
            centres = torch.linspace(-basis_range, basis_range, n_basis)
            self.register_buffer("centres", centres, persistent=False)
            self.basis_width = float(centres[1] - centres[0])
            scale = n_basis**-0.5
            self.hidden_weight = nn.Parameter(
                torch.empty(n_properties, n_basis, dim).uniform_(-scale, scale))
            self.hidden_bias = nn.Parameter(torch.zeros(n_properties, dim))
            scale = dim**-0.5
            self.out_weight = nn.Parameter(
                torch.empty(n_properties, dim, dim).uniform_(-scale, scale))
            self.out_bias = nn.Parameter(torch.zeros(n_properties, dim))
        else:
            bound = 1.0  # nn.Linear(1, dim) initialisation: U(-1/sqrt(1), 1/sqrt(1))
            self.linear_weight = nn.Parameter(
                torch.empty(n_properties, dim).uniform_(-bound, bound))
            self.linear_bias = nn.Parameter(
                torch.empty(n_properties, dim).uniform_(-bound, bound))
        self.norm_weight = nn.Parameter(torch.ones(n_properties, dim))
        self.norm_bias = nn.Parameter(torch.zeros(n_properties, dim))
        if null_embedding == "learned":
            self.null = nn.Parameter(torch.randn(n_properties, dim))

    @property
    def width(self) -> int:
        """Width of the output, ``n_properties * dim``."""
        return self.n_properties * self.dim

    def forward(
        self,
        values: torch.Tensor,
        mask: torch.Tensor,
        generator: RandomStream = None,
    ) -> torch.Tensor:
        """Embeddings of a batch of property vectors.

        Parameters
        ----------
        values
            ``(B, P)`` normalised property values; entries where ``mask`` is
            False are ignored and may hold anything (NaN included).
        mask
            ``(B, P)`` bool, True where the property is given.
        generator
            Random generator for the ``"random"`` null embedding (None: torch's
            global generator).

        Returns
        -------
        torch.Tensor
            ``(B, P * dim)`` concatenated embeddings.

        """
        mask = mask.unsqueeze(-1)
        # Zero the ignored entries first so NaN there cannot reach gradients.
        values = torch.where(mask, values.unsqueeze(-1), 0.0)
        if self.n_basis:
            z = (values - self.centres.to(values.dtype)) / self.basis_width
            phi = torch.exp(-0.5 * z.square())
            hidden = F.softplus(torch.einsum("bpk,pkd->bpd", phi, self.hidden_weight)
                                + self.hidden_bias)
            embedded = torch.einsum("bpd,pde->bpe", hidden, self.out_weight) + self.out_bias
        else:
            embedded = values * self.linear_weight + self.linear_bias
        embedded = F.layer_norm(embedded, (self.dim,)) * self.norm_weight + self.norm_bias
        if self.null_embedding == "learned":
            null = self.null.expand_as(embedded)
        else:
            null = randn(embedded.shape, generator, dtype=embedded.dtype,
                         device=embedded.device)
        return torch.where(mask, embedded, null).flatten(start_dim=1)
