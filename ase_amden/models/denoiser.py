"""The noise-predicting network (AMDEN eqs. 12-15, 21; AMShortcut B.4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ase_amden.errors import AmdenError, InvalidStructureError, unknown_name
from ase_amden.models.angular import AngularMoments
from ase_amden.models.egnn import (
    EGNNLayer,
    distance_embedding,
    moments_of_vectors,
    radial_basis,
    smooth_cutoff,
)
from ase_amden.models.embeddings import NULL_EMBEDDINGS, PropertyEmbedding, SinusoidalFeatures
from ase_amden.models.geometry import minimum_image
from ase_amden.models.graph import periodic_graph
from ase_amden.models.painn import PaiNNLayer, PaiNNReadout

#: Message-passing networks a :class:`Denoiser` can be built on.
BACKBONES = ("egnn", "painn")


@dataclass
class DenoiserConfig:
    """Hyperparameters of a :class:`Denoiser`.

    ``dataclasses.asdict(config)`` is what :attr:`ModelCard.model_config`
    stores; ``DenoiserConfig(**card.model_config)`` rebuilds it.

    Attributes
    ----------
    n_classes
        Width of the element channel (elements plus the ghost class).
    property_names
        Conditioning properties, in the column order of ``properties``.
    hidden
        Width of the node features.
    n_layers
        Number of message-passing layers ``L``.
    n_vector
        Number of vector channels ``k`` (EGNN; PaiNN has ``hidden`` vector features).
    cutoff
        Graph cutoff radius, Å.
    n_norm
        Normalisation of neighbour sums.
    property_dim
        Embedding width per property.
    time_dim
        Number of sinusoidal time features (and step-size features).
    null_embedding
        ``"learned"`` or ``"random"`` (see :class:`PropertyEmbedding`).
    shortcut
        The network takes the shortcut step size ``d`` as an input.
    energy
        Energy-based variant (AMDEN eq. 18-24): the noise is the gradient of
        a scalar noise energy.
    sigma_x_max
        Largest position noise, Å; the energy variant needs
        ``sigma_x(t) = sigma_x_max * t``.
    n_radial
        Gaussians of the distance added to AMDEN's edge attribute ``e_ij``
        (0: AMDEN's network exactly; see :func:`~ase_amden.models.egnn.radial_basis`).
    channel_distances
        Feed every layer the distances between the current vector channels
        (False: AMDEN's network; see :class:`~ase_amden.models.egnn.EGNNLayer`).
    channel_angles
        Feed every layer's node update the dot products of the atom's vector-channel
        displacements: bond angles as invariant features (False: AMDEN's network; see
        :class:`~ase_amden.models.egnn.EGNNLayer`).
    property_basis
        0: AMDEN's property embedding (node input only). ``n >= 2``: Yang and
        Schwalbe-Koda's: ``n`` Gaussians of each normalised property and a SoftPlus MLP
        (:class:`~ase_amden.models.embeddings.PropertyEmbedding`), whose output also
        enters the node features of every layer through a linear map per layer.
    sigma_data
        None: AMDEN's noise prediction. A value (Å): EDM preconditioning (Karras et al.
        2022) of the position output, ``eps_x = c(sigma) F`` with
        ``c = sigma_data / sqrt(sigma^2 + sigma_data^2)`` and ``sigma = sigma_x_max t``,
        so the network ``F`` regresses a target of about unit size at every noise level
        and its errors move the denoised positions by at most ``sigma_data``; the
        training loss weights the position term by ``1 / c^2`` (see
        :func:`~ase_amden.training.loss.position_loss_weight`). Samplers are unchanged.
    backbone
        ``"egnn"``: AMDEN's EGNN (:class:`~ase_amden.models.egnn.EGNNLayer`). ``"painn"``:
        PaiNN's scalar and vector features (:class:`~ase_amden.models.painn.PaiNNLayer`),
        many-body angular information in every layer; its edge filters see ``e_ij`` and the
        radial basis, so give it ``n_radial >= 2``. The channel options are EGNN's.
    self_condition
        Self-conditioning (Chen et al. 2022): the network may be given its previous estimate
        of the clean positions, and vector channels ``1..k-1`` then start at
        ``g (X0_prev - X)`` (minimum image, Å) instead of zero, with a learned gate ``g``
        that starts at zero; with ``channel_distances`` the first layer sees the estimated
        clean geometry, not only the noisy one. EGNN noise prediction with ``n_vector >= 2``.
    angular_power
        0: off (AMDEN's network). ``L >= 1``: the node embedding also sees the bond-angle
        moments ``cos(theta)^0..L`` of every atom's neighbourhood
        (:class:`~ase_amden.models.angular.AngularMoments`), of the noisy geometry and, with
        ``self_condition``, of the previous clean estimate; needs ``n_radial >= 2``.
    angular_channels
        Learned radial channels of the bond-angle moments.
    layer_angular
        Every EGNN layer's node update also gets the bond-angle moments of the structure
        built so far (vector channel 0), each neighbour weighted by its features (see
        :class:`~ase_amden.models.egnn.EGNNLayer`); needs ``angular_power >= 1``.

    """

    n_classes: int
    property_names: tuple[str, ...] = ()
    hidden: int = 128
    n_layers: int = 4
    n_vector: int = 8
    cutoff: float = 6.5
    n_norm: float = 40.0
    property_dim: int = 8
    time_dim: int = 16
    null_embedding: str = "learned"
    shortcut: bool = False
    energy: bool = False
    sigma_x_max: float = 1.5
    n_radial: int = 0
    channel_distances: bool = False
    property_basis: int = 0
    sigma_data: float | None = None
    channel_angles: bool = False
    backbone: str = "egnn"
    self_condition: bool = False
    angular_power: int = 0
    angular_channels: int = 8
    layer_angular: bool = False

    def __post_init__(self):
        self.property_names = tuple(self.property_names)
        if self.null_embedding not in NULL_EMBEDDINGS:
            raise unknown_name("null embedding", self.null_embedding, NULL_EMBEDDINGS)
        if self.backbone not in BACKBONES:
            raise unknown_name("backbone", self.backbone, BACKBONES)
        if self.backbone != "egnn" and (self.channel_distances or self.channel_angles):
            raise ValueError("channel_distances and channel_angles are options of the EGNN "
                             f"backbone, not of {self.backbone!r}; leave them off")
        if self.self_condition and (self.backbone != "egnn" or self.energy
                                    or self.n_vector < 2):
            raise ValueError("self_condition needs the EGNN backbone, noise prediction (not "
                             "energy) and n_vector >= 2 (channel 0 is the output)")
        positive = {
            "n_classes": self.n_classes,
            "hidden": self.hidden,
            "n_layers": self.n_layers,
            "n_vector": self.n_vector,
            "cutoff": self.cutoff,
            "n_norm": self.n_norm,
            "property_dim": self.property_dim,
            "sigma_x_max": self.sigma_x_max,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"DenoiserConfig.{name} must be positive, got {value!r}")
        if self.n_radial < 0 or self.n_radial == 1:
            raise ValueError(f"DenoiserConfig.n_radial must be 0 or >= 2, got {self.n_radial!r}")
        if self.angular_power < 0 or self.angular_channels < 1:
            raise ValueError("DenoiserConfig.angular_power must be >= 0 and angular_channels "
                             f">= 1, got {self.angular_power!r} and {self.angular_channels!r}")
        if self.angular_power and self.n_radial < 2:
            raise ValueError("angular_power needs the radial basis (its radial weights are "
                             f"learnt on it): give n_radial >= 2, got {self.n_radial!r}")
        if self.layer_angular and (not self.angular_power or self.backbone != "egnn"):
            raise ValueError("layer_angular needs the EGNN backbone and angular_power >= 1")
        if self.property_basis < 0 or self.property_basis == 1:
            raise ValueError(
                f"DenoiserConfig.property_basis must be 0 or >= 2, got {self.property_basis!r}"
            )
        if self.sigma_data is not None:
            if not self.sigma_data > 0:
                raise ValueError(
                    f"DenoiserConfig.sigma_data must be positive or None, got {self.sigma_data!r}")
            if self.energy:
                raise ValueError("EDM preconditioning (sigma_data) is for noise-prediction "
                                 "models; the energy variant's output is a gradient")
        if self.time_dim < 0:
            raise ValueError(f"DenoiserConfig.time_dim must be >= 0, got {self.time_dim!r}")
        if len(set(self.property_names)) != len(self.property_names):
            raise ValueError(f"property_names has duplicates: {self.property_names}")


class Denoiser(nn.Module):
    """EGNN noise predictor for periodic structures, batched over systems.

    Node inputs are ``[time features, noisy element vector, property
    embeddings (, step-size features)]`` mapped linearly to ``hidden``
    features; ``L`` :class:`~ase_amden.models.egnn.EGNNLayer` (or, with
    ``backbone="painn"``, :class:`~ase_amden.models.painn.PaiNNLayer` and a linear readout of
    the vector features as channel 0) follow on the periodic radius graph. The outputs are

    * standard variant: ``eps_x = X - X^(L,0)`` (AMDEN eq. 15), computed as
      minus the summed coordinate updates of the first vector channel, so
      the periodic wrap never enters; ``eps_e = Linear(H^(L))``;
    * energy variant: ``E_hat = (1 / sigma_x(t)) sum_i (0.5 |X_i - X_i^(L,0)|^2
      + gamma e_i)`` with ``e_i = Linear(H^(L))`` and learnable ``gamma``;
      ``eps_x = -sigma_x(t) s = sigma_x(t) grad_X E_hat`` by autograd, and
      ``eps_e = Linear(H^(L))`` as in the standard variant.

    The output layers start small, so an untrained model predicts noise
    close to zero. Everything is invariant (``eps_e``, ``E_hat``) or
    equivariant (``eps_x``) under rotations, mirrors, translations and
    permutations of the atoms, and the cell may be any periodic cell (rows
    are lattice vectors, ASE convention).

    Parameters
    ----------
    config
        Hyperparameters.

    Examples
    --------
    >>> model = Denoiser(DenoiserConfig(n_classes=2, hidden=16, n_layers=1))
    >>> cell = 5.0 * torch.eye(3).unsqueeze(0)
    >>> positions = torch.rand(4, 3) * 5.0
    >>> elements = torch.randn(4, 2)
    >>> eps_x, eps_e = model(positions, elements, cell, torch.zeros(4, dtype=torch.long),
    ...                      torch.tensor([0.5]))
    >>> eps_x.shape, eps_e.shape
    (torch.Size([4, 3]), torch.Size([4, 2]))

    """

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config
        self.time_features = SinusoidalFeatures(config.time_dim)
        width = self.time_features.width + config.n_classes
        self.property_embedding = None
        if config.property_names:
            self.property_embedding = PropertyEmbedding(
                len(config.property_names), config.property_dim, config.null_embedding,
                n_basis=config.property_basis,
            )
            width += self.property_embedding.width
        self.layer_conditions = None
        if config.property_names and config.property_basis:
            self.layer_conditions = nn.ModuleList(
                nn.Linear(self.property_embedding.width, config.hidden)
                for _ in range(config.n_layers)
            )
        self.step_features = None
        if config.shortcut:
            self.step_features = SinusoidalFeatures(config.time_dim)
            width += self.step_features.width
        self.embed = nn.Linear(width, config.hidden)
        self.angular = self.angular_embed = None
        if config.angular_power:
            self.angular = AngularMoments(config.n_radial, config.angular_channels,
                                          config.angular_power)
            geometries = 2 if config.self_condition else 1
            self.angular_embed = nn.Sequential(nn.LayerNorm(geometries * self.angular.width),
                                               nn.Linear(geometries * self.angular.width,
                                                         config.hidden))
            # Starts at zero: a grown network computes its parent's function until trained.
            nn.init.zeros_(self.angular_embed[-1].weight)
            nn.init.zeros_(self.angular_embed[-1].bias)
        edge_dim = 1 + config.n_radial
        self.readout = None
        if config.backbone == "painn":
            self.layers = nn.ModuleList(PaiNNLayer(config.hidden, edge_dim, config.n_norm)
                                        for _ in range(config.n_layers))
            self.readout = PaiNNReadout(config.hidden)
        else:
            self.layers = nn.ModuleList(
                EGNNLayer(config.hidden, config.n_vector, config.n_norm, edge_dim=edge_dim,
                          channel_distances=config.channel_distances, cutoff=config.cutoff,
                          channel_angles=config.channel_angles,
                          angular_power=config.angular_power if config.layer_angular else 0,
                          angular_channels=config.angular_channels,
                          angular_basis=config.n_radial)
                for _ in range(config.n_layers)
            )
        self.element_head = nn.Linear(config.hidden, config.n_classes)
        nn.init.uniform_(self.element_head.weight, -1e-2, 1e-2)
        nn.init.zeros_(self.element_head.bias)
        if config.energy:
            # No bias: a constant per atom would not change the score.
            self.energy_head = nn.Linear(config.hidden, 1, bias=False)
            nn.init.uniform_(self.energy_head.weight, -1e-2, 1e-2)
            self.gamma = nn.Parameter(torch.tensor(1.0))
        if config.self_condition:
            self.self_gate = nn.Parameter(torch.tensor(0.0))

    @property
    def n_properties(self) -> int:
        """Number of conditioning properties ``P``."""
        return len(self.config.property_names)

    def clean_estimate(self, positions: torch.Tensor, eps_x: torch.Tensor,
                       system_idx: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Clean positions ``X - sigma_x(t) eps_x`` (Å) implied by a noise prediction.

        ``positions`` ``(N, 3)`` Å, ``eps_x`` ``(N, 3)``, ``t`` ``(B,)``; the input of a
        self-conditioning model's next call (``previous_clean``).
        """
        sigma = self.config.sigma_x_max * torch.as_tensor(t, dtype=eps_x.dtype,
                                                          device=eps_x.device)
        if sigma.ndim:
            sigma = sigma[system_idx].unsqueeze(-1)
        return positions - sigma * eps_x

    def forward(
        self,
        positions: torch.Tensor,
        elements: torch.Tensor,
        cell: torch.Tensor,
        system_idx: torch.Tensor,
        t: torch.Tensor | float,
        properties: torch.Tensor | None = None,
        property_mask: torch.Tensor | None = None,
        step_size: torch.Tensor | float | None = None,
        *,
        generator: torch.Generator | None = None,
        previous_clean: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict the position and element noise of a batch of noisy structures.

        Parameters
        ----------
        positions
            ``(N, 3)`` noisy positions, Å (wrapped or not).
        elements
            ``(N, n_classes)`` noisy element vectors.
        cell
            ``(B, 3, 3)`` cells, rows are lattice vectors, Å.
        system_idx
            ``(N,)`` long, system of each atom in ``[0, B)``.
        t
            ``(B,)`` diffusion times in ``[0, 1]`` (a scalar is broadcast).
        properties
            ``(B, P)`` normalised property values; entries where
            ``property_mask`` is False may hold anything. None: no property
            is given.
        property_mask
            ``(B, P)`` bool, True where a property is given, False where the
            null embedding is used. None: all given when ``properties`` is
            given, else all absent.
        step_size
            ``(B,)`` shortcut step sizes ``d`` (a scalar is broadcast);
            required by shortcut models and refused by others.
        generator
            Random generator for the ``"random"`` null embedding.
        previous_clean
            ``(N, 3)`` the network's previous estimate of the clean positions, Å
            (:meth:`clean_estimate`; self-conditioning models only). None: no estimate.

        Returns
        -------
        eps_x
            ``(N, 3)`` predicted position noise (dimensionless; positions
            noise is ``sigma_x(t) * eps_x`` Å).
        eps_e
            ``(N, n_classes)`` predicted element noise.

        Notes
        -----
        For energy models the gradient is taken with
        ``create_graph=self.training or torch.is_grad_enabled()``, so a loss
        on ``eps_x`` can be backpropagated to the parameters (double
        backward). Under ``torch.no_grad()`` the gradient is still computed
        and the outputs are detached. ``sigma_x(t)`` cancels between
        ``E_hat`` and ``eps_x``, so ``eps_x`` is finite also at ``t = 0``.

        """
        inputs = self._prepare(
            positions, elements, cell, system_idx, t, properties, property_mask, step_size
        )
        if previous_clean is not None and not self.config.self_condition:
            raise ValueError("this model was not trained with self-conditioning "
                             "(DenoiserConfig.self_condition is False); pass previous_clean=None")
        if not self.config.energy:
            if previous_clean is not None:
                previous_clean = previous_clean.to(inputs[0].device, inputs[0].dtype)
            vectors, h = self._backbone(*inputs, generator=generator, previous_clean=previous_clean)
            eps_x = -vectors[:, 0]
            if self.config.sigma_data is not None:
                scale = edm_output_scale(inputs[4], self.config.sigma_x_max,
                                         self.config.sigma_data)
                eps_x = eps_x * scale[inputs[3]].unsqueeze(-1)
            return eps_x, self.element_head(h)

        create_graph = self.training or torch.is_grad_enabled()
        with torch.enable_grad():
            positions = inputs[0]
            if not positions.requires_grad:
                positions = positions.detach().requires_grad_(True)
            potential, h = self._potential(positions, *inputs[1:], generator=generator)
            (eps_x,) = torch.autograd.grad(potential.sum(), positions, create_graph=create_graph)
            eps_e = self.element_head(h)
        if not create_graph:
            eps_e = eps_e.detach()
        return eps_x, eps_e

    def energy(
        self,
        positions: torch.Tensor,
        elements: torch.Tensor,
        cell: torch.Tensor,
        system_idx: torch.Tensor,
        t: torch.Tensor | float,
        properties: torch.Tensor | None = None,
        property_mask: torch.Tensor | None = None,
        step_size: torch.Tensor | float | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Noise energy ``E_hat`` per structure (energy models only; AMDEN eq. 18-24).

        Arguments are those of :meth:`forward`. ``E_hat`` is in units of kT
        (kT = 1), and ``-grad_X E_hat`` is the position score, Å^-1. It is
        ``inf`` at ``t = 0`` where ``sigma_x(t) = 0``.

        Returns
        -------
        torch.Tensor
            ``(B,)`` noise energies, differentiable with respect to
            ``positions`` and the parameters.

        Raises
        ------
        AmdenError
            If the model is not an energy model.

        """
        if not self.config.energy:
            raise AmdenError(
                "energy() needs an energy-based model; build it with "
                "DenoiserConfig(energy=True) or load an energy checkpoint"
            )
        inputs = self._prepare(
            positions, elements, cell, system_idx, t, properties, property_mask, step_size
        )
        potential, _ = self._potential(*inputs, generator=generator)
        return potential / (self.config.sigma_x_max * inputs[4])

    def _potential(self, *inputs, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``sigma_x(t) * E_hat`` per structure ``(B,)`` and the last node features."""
        vectors, h = self._backbone(*inputs, generator=generator)
        per_atom = 0.5 * vectors[:, 0].square().sum(-1) + self.gamma * self.energy_head(h)[:, 0]
        n_systems = inputs[2].shape[0]
        system_idx = inputs[3]
        potential = torch.zeros(n_systems, dtype=per_atom.dtype, device=per_atom.device)
        return potential.index_add(0, system_idx, per_atom), h

    def _backbone(
        self,
        positions: torch.Tensor,
        elements: torch.Tensor,
        cell: torch.Tensor,
        system_idx: torch.Tensor,
        t: torch.Tensor,
        properties: torch.Tensor | None,
        property_mask: torch.Tensor | None,
        step_size: torch.Tensor | None,
        *,
        generator: torch.Generator | None,
        previous_clean: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Vector-channel displacements ``X^(L) - X`` ``(N, k, 3)`` and ``H^(L)``.

        PaiNN gives one channel (``k = 1``), its readout of the vector features.
        """
        cutoff = self.config.cutoff
        src, dst, shift = periodic_graph(positions, cell, system_idx, cutoff)
        edge_vector = positions.index_select(0, dst) - positions.index_select(0, src) + shift
        distance_sq = edge_vector.square().sum(-1, keepdim=True)
        edge_attr = distance_embedding(distance_sq, cutoff)
        # Clamping keeps the gradient finite for (unphysical) coincident atoms.
        distance = distance_sq.clamp(min=1e-12).sqrt()
        edge_weight = smooth_cutoff(distance, cutoff)
        if self.config.n_radial:
            basis = radial_basis(distance, cutoff, self.config.n_radial)
            edge_attr = torch.cat([edge_attr, basis], dim=-1)

        per_system = [self.time_features(t)]
        conditions = None
        if self.property_embedding is not None:
            embedded = self.property_embedding(properties, property_mask, generator)
            per_system.append(embedded)
            if self.layer_conditions is not None:
                conditions = embedded[system_idx]
        if self.step_features is not None:
            per_system.append(self.step_features(step_size))
        node_input = torch.cat([elements, torch.cat(per_system, dim=-1)[system_idx]], dim=-1)
        h = self.embed(node_input)
        if self.readout is not None:  # PaiNN: vector features (N, 3, F), unit edge vectors
            vectors = positions.new_zeros(positions.shape[0], 3, self.config.hidden)
            edge_vector = edge_vector / distance
        else:
            vectors = positions.new_zeros(positions.shape[0], self.config.n_vector, 3)
        shift = None
        if self.config.self_condition:
            # Without an estimate the gate still enters (times zero), so that every parameter
            # takes part in every step (DDP reduces the same set on every rank).
            shift = (torch.zeros_like(positions) if previous_clean is None
                     else minimum_image(previous_clean - positions, cell, system_idx))
            estimate = (self.self_gate * shift).unsqueeze(1)
            vectors = torch.cat([vectors[:, :1], estimate.expand_as(vectors[:, 1:])], dim=1)
        if self.angular is not None:
            h = h + self._angular_embedding(edge_vector, basis, edge_weight, src, dst, shift,
                                            positions.shape[0])
        for i, layer in enumerate(self.layers):
            if conditions is not None:
                h = h + self.layer_conditions[i](conditions)
            h, vectors = layer(h, vectors, src, dst, edge_vector, edge_attr, edge_weight)
        if self.readout is not None:
            vectors = self.readout(vectors)
        return vectors, h

    def _angular_embedding(self, edge_vector: torch.Tensor, basis: torch.Tensor,
                           edge_weight: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                           shift: torch.Tensor | None, n_nodes: int) -> torch.Tensor:
        """``(N, hidden)`` embedding of the bond-angle moments of the input geometry.

        With self-conditioning also of the estimate ``X + shift`` (the input geometry
        without one), on the edges of the input graph. ``basis`` and ``edge_weight`` are
        the input graph's; only the direction of ``edge_vector`` enters.
        """
        features = [self.angular(edge_vector, basis, edge_weight, src, n_nodes)]
        if shift is not None:
            moved = edge_vector + shift.index_select(0, dst) - shift.index_select(0, src)
            features.append(moments_of_vectors(self.angular, moved, self.config.cutoff, src,
                                               n_nodes))
        return self.angular_embed(torch.cat(features, dim=-1))

    def _prepare(
        self,
        positions: torch.Tensor,
        elements: torch.Tensor,
        cell: torch.Tensor,
        system_idx: torch.Tensor,
        t: torch.Tensor | float,
        properties: torch.Tensor | None,
        property_mask: torch.Tensor | None,
        step_size: torch.Tensor | float | None,
    ) -> tuple:
        """Check shapes and cast inputs to the model's dtype and device."""
        reference = self.embed.weight
        dtype, device = reference.dtype, reference.device
        n_atoms = positions.shape[0]
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise InvalidStructureError(
                f"positions must have shape (N, 3), got {tuple(positions.shape)}"
            )
        if cell.ndim != 3 or cell.shape[1:] != (3, 3):
            raise InvalidStructureError(f"cell must have shape (B, 3, 3), got {tuple(cell.shape)}")
        n_systems = cell.shape[0]
        if elements.shape != (n_atoms, self.config.n_classes):
            raise InvalidStructureError(
                f"elements must have shape (N, n_classes) = ({n_atoms}, {self.config.n_classes}),"
                f" got {tuple(elements.shape)}"
            )
        if system_idx.shape != (n_atoms,):
            raise InvalidStructureError(
                f"system_idx must have shape ({n_atoms},), got {tuple(system_idx.shape)}"
            )
        positions = positions.to(device, dtype)
        elements = elements.to(device, dtype)
        cell = cell.to(device, dtype)
        system_idx = system_idx.to(device, torch.long)
        t = self._per_system(t, "t", n_systems, dtype, device)

        n_properties = self.n_properties
        if n_properties:
            if properties is None:
                properties = torch.zeros(n_systems, n_properties, dtype=dtype, device=device)
                property_mask = torch.zeros(n_systems, n_properties, dtype=torch.bool)
            elif property_mask is None:
                property_mask = torch.ones(n_systems, n_properties, dtype=torch.bool)
            if properties.shape != (n_systems, n_properties):
                raise ValueError(
                    f"properties must have shape (B, P) = ({n_systems}, {n_properties}) for "
                    f"{self.config.property_names}, got {tuple(properties.shape)}"
                )
            if property_mask.shape != (n_systems, n_properties):
                raise ValueError(
                    f"property_mask must have shape ({n_systems}, {n_properties}), "
                    f"got {tuple(property_mask.shape)}"
                )
            properties = properties.to(device, dtype)
            property_mask = property_mask.to(device, torch.bool)
        elif properties is not None and properties.numel() > 0:
            raise ValueError(
                "this model takes no properties (DenoiserConfig.property_names is empty); "
                "pass properties=None"
            )

        if self.config.shortcut:
            if step_size is None:
                raise ValueError("shortcut models need step_size (B,); pass d = 0 for a plain step")
            step_size = self._per_system(step_size, "step_size", n_systems, dtype, device)
        elif step_size is not None:
            raise ValueError(
                "this model was not trained with step sizes (DenoiserConfig.shortcut is False); "
                "pass step_size=None"
            )
        return positions, elements, cell, system_idx, t, properties, property_mask, step_size

    @staticmethod
    def _per_system(
        value: torch.Tensor | float,
        name: str,
        n_systems: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> torch.Tensor:
        """``(B,)`` tensor from a per-system tensor or a scalar."""
        value = torch.as_tensor(value, dtype=dtype, device=device)
        if value.ndim == 0:
            return value.expand(n_systems)
        if value.shape != (n_systems,):
            raise ValueError(
                f"{name} must have shape (B,) = ({n_systems},), got {tuple(value.shape)}"
            )
        return value


def with_channel_distances(weights: dict[str, torch.Tensor],
                           config: DenoiserConfig) -> dict[str, torch.Tensor]:
    """A parent network's weights for the same network with ``channel_distances`` on.

    The parent is ``config`` with ``channel_distances=False``. The channel
    distances are the last columns of each layer's edge attributes, so the
    parent's edge weights fill the first columns and the new ones start at
    zero: the grown network computes exactly the parent's function until it is
    trained (fine-tuning a shipped model into the richer network).

    Parameters
    ----------
    weights
        ``state_dict`` of the parent network.
    config
        Configuration of the grown network (``channel_distances=True``).

    """
    if not config.channel_distances:
        raise ValueError("config must have channel_distances=True")
    keys = [f"layers.{i}.{block}.edge.weight" for i in range(config.n_layers)
            for block in ("edge_in", "coord_in")]
    return _with_zero_columns(weights, keys, config.n_vector)


def with_channel_angles(weights: dict[str, torch.Tensor],
                        config: DenoiserConfig) -> dict[str, torch.Tensor]:
    """A parent network's weights for the same network with ``channel_angles`` on.

    The channel dot products are the last inputs of each layer's node MLP, so the
    parent's weights fill the first columns and the new ones start at zero: the grown
    network computes exactly the parent's function until it is trained.

    Parameters
    ----------
    weights
        ``state_dict`` of the parent network.
    config
        Configuration of the grown network (``channel_angles=True``).

    """
    if not config.channel_angles:
        raise ValueError("config must have channel_angles=True")
    keys = [f"layers.{i}.node_mlp.0.weight" for i in range(config.n_layers)]
    return _with_zero_columns(weights, keys, config.n_vector * (config.n_vector + 1) // 2)


def with_self_condition(weights: dict[str, torch.Tensor],
                        config: DenoiserConfig) -> dict[str, torch.Tensor]:
    """A parent network's weights for the same network with self-conditioning on.

    The new gate starts at zero, so the grown network computes exactly the parent's
    function, with or without a previous estimate, until it is trained.
    """
    if not config.self_condition:
        raise ValueError("config must have self_condition=True")
    reference = weights["embed.weight"]
    return {**weights, "self_gate": reference.new_zeros(())}


def with_angular(weights: dict[str, torch.Tensor],
                 config: DenoiserConfig) -> dict[str, torch.Tensor]:
    """A parent network's weights for the same network with bond-angle moments on.

    The moments' embedding is added to the node embedding through a linear map that
    starts at zero (its radial weights start random), so the grown network computes
    exactly the parent's function until it is trained.

    Parameters
    ----------
    weights
        ``state_dict`` of the parent network.
    config
        Configuration of the grown network (``angular_power >= 1``).

    """
    if not config.angular_power:
        raise ValueError("config must have angular_power >= 1")
    return _with_fresh(weights, config, lambda key: key.startswith(("angular.", "angular_embed.")))


def with_layer_angular(weights: dict[str, torch.Tensor],
                       config: DenoiserConfig) -> dict[str, torch.Tensor]:
    """A parent network's weights for the same network with ``layer_angular`` on.

    Each layer's moments enter its node update through a map that starts at zero, so the
    grown network computes exactly the parent's function until it is trained.
    """
    if not config.layer_angular:
        raise ValueError("config must have layer_angular=True")
    return _with_fresh(weights, config, lambda key: ".moment" in key)


def with_layers(weights: dict[str, torch.Tensor],
                config: DenoiserConfig) -> dict[str, torch.Tensor]:
    """A parent network's weights for the same EGNN with more layers after its own.

    The new layers' last node-MLP and coordinate maps (and their condition maps) start at
    zero, so each passes its input through unchanged: the grown network computes exactly
    the parent's function until it is trained, and the new layers learn to refine the
    geometry the parent builds (a deeper unrolled denoiser).

    Parameters
    ----------
    weights
        ``state_dict`` of the parent network (fewer layers than ``config``).
    config
        Configuration of the grown network (EGNN backbone).

    """
    if config.backbone != "egnn":
        raise ValueError(f"adding layers needs the EGNN backbone, not {config.backbone!r}")
    parent_layers = 1 + max(int(key.split(".")[1]) for key in weights if key.startswith("layers."))
    if config.n_layers <= parent_layers:
        raise ValueError(f"config must have more than the parent's {parent_layers} layers, "
                         f"got n_layers={config.n_layers}")
    new = tuple(f"{block}.{i}." for i in range(parent_layers, config.n_layers)
                for block in ("layers", "layer_conditions"))
    grown = _with_fresh(weights, config, lambda key: key.startswith(new))
    for key in grown:
        if key.startswith(new) and (".node_mlp.3." in key or ".coord_out.2." in key
                                    or key.startswith("layer_conditions.")):
            grown[key] = torch.zeros_like(grown[key])
    return grown


def _with_fresh(weights: dict[str, torch.Tensor], config: DenoiserConfig,
                new: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    """``weights`` plus the freshly initialised weights of ``config``'s network named ``new``."""
    fresh = Denoiser(config).state_dict()
    added = {key: value.to(weights["embed.weight"]) for key, value in fresh.items() if new(key)}
    return {**weights, **added}


def with_step_size(weights: dict[str, torch.Tensor],
                   config: DenoiserConfig) -> dict[str, torch.Tensor]:
    """A parent network's weights for the same network with the shortcut step-size input.

    The parent is ``config`` with ``shortcut=False``. The step-size features are the
    last columns of the input embedding, so the parent's embedding fills the first
    columns and the new ones start at zero: the grown network computes the parent's
    function at every step size until it is trained (fine-tuning a shipped model
    into a shortcut model).

    Parameters
    ----------
    weights
        ``state_dict`` of the parent network.
    config
        Configuration of the grown network (``shortcut=True``).

    """
    if not config.shortcut:
        raise ValueError("config must have shortcut=True")
    return _with_zero_columns(weights, ["embed.weight"],
                              SinusoidalFeatures(config.time_dim).width)


def _with_zero_columns(weights: dict[str, torch.Tensor], keys: list[str],
                       width: int) -> dict[str, torch.Tensor]:
    """``weights`` with ``width`` zero input columns appended to each weight in ``keys``."""
    grown = dict(weights)
    for key in keys:
        parent = weights[key]
        grown[key] = torch.cat([parent, parent.new_zeros(parent.shape[0], width)], dim=1)
    return grown


def edm_output_scale(t: torch.Tensor, sigma_x_max: float, sigma_data: float) -> torch.Tensor:
    """``sigma_data / sqrt(sigma^2 + sigma_data^2)`` with ``sigma = sigma_x_max t`` (Å)."""
    sigma = sigma_x_max * t
    return sigma_data * torch.rsqrt(sigma.square() + sigma_data**2)
