"""Reverse-process samplers over one trained network (AMDEN eq. 6-7; AMShortcut).

A sampler says which times it visits (:meth:`Sampler.time_grid`), where it starts
(:meth:`Sampler.prior`) and how it moves from ``t`` to ``t_next`` (:meth:`Sampler.step`).
:func:`run_sampler` is the shared loop: it wraps positions after every step, holds a fixed
composition, and stops with :class:`~ase_amden.errors.SamplingError` on NaN. New samplers
subclass :class:`Sampler` and register with :func:`register_sampler`; nothing else changes.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

import torch
from torch import Tensor

from ase_amden.diffusion.schedules import ElementSchedule, NoiseSchedule, PositionSchedule
from ase_amden.errors import SamplingError, unknown_name
from ase_amden.models.geometry import wrap_positions
from ase_amden.random_streams import RandomStream, rand, randn

if TYPE_CHECKING:
    from ase_amden.models.card import ModelCard

__all__ = [
    "SAMPLERS",
    "DenoiseFn",
    "ODESampler",
    "SDESampler",
    "Sampler",
    "SamplerState",
    "ancestral_update",
    "ddim_update",
    "get_sampler",
    "register_sampler",
    "run_sampler",
]


class DenoiseFn(Protocol):
    """The network as samplers see it (properties and guidance already bound).

    ``(positions (N,3), elements (N,C), cell (B,3,3), system_idx (N,), t (B,),
    step_size (B,) or None) -> (out_x (N,3), out_e (N,C))``; for ``"eps"`` models the
    outputs are the predicted noise.
    """

    def __call__(
        self,
        positions: Tensor,
        elements: Tensor,
        cell: Tensor,
        system_idx: Tensor,
        t: Tensor,
        step_size: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Predict the network output for a noisy batch."""


@dataclass
class SamplerState:
    """A batch of structures part-way through the reverse process.

    Attributes
    ----------
    positions
        ``(N, 3)`` positions, Å.
    elements
        ``(N, C)`` element channel.
    cell
        ``(B, 3, 3)`` cells, Å; rows are lattice vectors.
    system_idx
        ``(N,)`` long, structure of each atom.
    fixed_elements
        ``(N, C)`` one-hot of a given composition (inpainting) or None. When set, the element
        channel is not generated: the network sees this one-hot noised to the current time and
        the final elements are exactly it.
    diagnostics
        Per-structure ``(B,)`` statistics a sampler keeps while it runs (e.g. the HMC
        acceptance rate); samplers update this dict in place and
        :class:`~ase_amden.AmorphousGenerator` copies each entry into ``atoms.info``.
    fixed_positions, fixed_mask
        ``(N, 3)`` known positions (Å) and ``(N,)`` bool, True for the atoms they hold
        (positional inpainting), or None. Before every step the fixed atoms are set to their
        known positions noised to the current time (RePaint); at the end they are exactly
        the known positions.

    """

    positions: Tensor
    elements: Tensor
    cell: Tensor
    system_idx: Tensor
    fixed_elements: Tensor | None = None
    diagnostics: dict[str, Tensor] = field(default_factory=dict)
    fixed_positions: Tensor | None = None
    fixed_mask: Tensor | None = None

    @property
    def n_systems(self) -> int:
        """Number of structures ``B``."""
        return int(self.cell.shape[0])

    def __post_init__(self) -> None:
        n = self.positions.shape[0]
        if self.positions.shape != (n, 3):
            raise ValueError(f"positions must be (N, 3), got {tuple(self.positions.shape)}")
        if self.elements.ndim != 2 or self.elements.shape[0] != n:
            raise ValueError(
                f"elements must be (N={n}, C), got {tuple(self.elements.shape)}"
            )
        if self.cell.ndim != 3 or self.cell.shape[1:] != (3, 3):
            raise ValueError(f"cell must be (B, 3, 3), got {tuple(self.cell.shape)}")
        if self.system_idx.shape != (n,):
            raise ValueError(f"system_idx must be (N={n},), got {tuple(self.system_idx.shape)}")
        if self.fixed_elements is not None and self.fixed_elements.shape != self.elements.shape:
            raise ValueError(
                f"fixed_elements must match elements {tuple(self.elements.shape)}, "
                f"got {tuple(self.fixed_elements.shape)}"
            )
        if (self.fixed_positions is None) != (self.fixed_mask is None):
            raise ValueError("fixed_positions and fixed_mask are given together or not at all")
        if self.fixed_positions is not None and (
            self.fixed_positions.shape != (n, 3) or self.fixed_mask.shape != (n,)
        ):
            raise ValueError(
                f"fixed_positions must be (N={n}, 3) and fixed_mask (N,), got "
                f"{tuple(self.fixed_positions.shape)} and {tuple(self.fixed_mask.shape)}"
            )


def _randn_like(x: Tensor, generator: RandomStream, system_idx: Tensor | None) -> Tensor:
    """Normal noise like per-atom ``x``, each structure's rows from its own stream."""
    return randn(x.shape, generator, dtype=x.dtype, device=x.device, rows=system_idx)


class Sampler(ABC):
    """Base class of the samplers: time grid, prior, and one step.

    Parameters
    ----------
    pos_schedule, el_schedule
        Schedules the model was trained with (default: AMDEN's, 1.5 Å and 1.5).
    t_start, t_end
        First and last time of the evenly spaced grid (AMDEN: 0.99 and 0.01); when
        ``t_end > 0`` a final step goes from ``t_end`` to 0.

    """

    name: ClassVar[str]
    #: Training objectives (``ModelCard.objective``) whose network output this sampler reads.
    objectives: ClassVar[tuple[str, ...]] = ("eps",)
    #: Number of steps used when the caller gives none.
    default_steps: ClassVar[int] = 200
    #: False for samplers that cannot apply classifier-free guidance.
    supports_guidance: ClassVar[bool] = True
    #: False for samplers that cannot hold atoms at known positions (positional inpainting).
    supports_inpainting: ClassVar[bool] = True
    #: False for samplers that cannot be steered by the gradient of a measured observable.
    supports_observables: ClassVar[bool] = True

    def __init__(
        self,
        *,
        pos_schedule: NoiseSchedule | None = None,
        el_schedule: NoiseSchedule | None = None,
        t_start: float = 0.99,
        t_end: float = 0.01,
    ) -> None:
        if not 0.0 <= t_end < t_start <= 1.0:
            raise ValueError(
                f"need 0 <= t_end < t_start <= 1, got t_start={t_start}, t_end={t_end}"
            )
        self.pos_schedule = pos_schedule if pos_schedule is not None else PositionSchedule()
        self.el_schedule = el_schedule if el_schedule is not None else ElementSchedule()
        self.t_start = float(t_start)
        self.t_end = float(t_end)

    @classmethod
    def from_card(cls, card: ModelCard, **options) -> Sampler:
        """Build the sampler for a model: its noise schedules come from ``card``."""
        return cls(
            pos_schedule=card.position_schedule(),
            el_schedule=card.element_schedule(),
            **options,
        )

    @classmethod
    def incompatibility(cls, card: ModelCard) -> str | None:
        """Say why this sampler cannot use the model of ``card`` (None: it can)."""
        if card.objective not in cls.objectives:
            return (
                f"the model was trained with objective {card.objective!r} and this sampler "
                f"reads the output of {' or '.join(map(repr, cls.objectives))} models"
            )
        return None

    def time_grid(self, steps: int) -> Tensor:
        """Return the decreasing times visited.

        ``steps`` even intervals from ``t_start`` to ``t_end``, then (when ``t_end > 0``) a
        final step to 0: a float64 tensor of ``steps + 2`` times, i.e. ``steps + 1`` network
        calls (``steps + 1`` times and ``steps`` calls when ``t_end = 0``).
        """
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        grid = torch.linspace(self.t_start, self.t_end, steps + 1, dtype=torch.float64)
        if self.t_end == 0.0:
            return grid
        return torch.cat([grid, grid.new_zeros(1)])

    def prior(
        self, cell: Tensor, system_idx: Tensor, n_classes: int, generator: RandomStream
    ) -> tuple[Tensor, Tensor]:
        """Draw the starting noise: positions uniform in each cell, elements ``N(0, sigma_e^2)``.

        Returns ``positions (N, 3)`` and ``elements (N, n_classes)`` in the cell's dtype.
        """
        n = system_idx.shape[0]
        like = {"dtype": cell.dtype, "device": cell.device, "rows": system_idx}
        fractional = rand((n, 3), generator, **like)
        positions = torch.einsum("ni,nij->nj", fractional, cell[system_idx])
        noise = randn((n, n_classes), generator, **like)
        return positions, float(self.el_schedule.sigma(self.t_start)) * noise

    def noised_known_elements(
        self, elements: Tensor, t: float, generator: RandomStream,
        system_idx: Tensor | None = None,
    ) -> Tensor:
        """Noise a given (fixed) element channel to time ``t``, as the network expects it.

        ``system_idx`` (``(N,)``) says which stream of :class:`SystemStreams` each row uses.
        """
        alpha = float(self.el_schedule.alpha(t))
        sigma = float(self.el_schedule.sigma(t))
        return alpha * elements + sigma * _randn_like(elements, generator, system_idx)

    def noised_known_positions(
        self, positions: Tensor, t: float, generator: RandomStream, system_idx: Tensor
    ) -> Tensor:
        """Noise known (fixed) positions to time ``t`` with the position schedule, Å."""
        return self.pos_schedule.add_noise(
            positions, torch.as_tensor(t, dtype=positions.dtype, device=positions.device),
            _randn_like(positions, generator, system_idx),
        )

    @abstractmethod
    def step(
        self,
        state: SamplerState,
        t: float,
        t_next: float,
        denoise: DenoiseFn,
        generator: RandomStream,
    ) -> tuple[Tensor, Tensor]:
        """Move from ``t`` to ``t_next < t``; return new ``(positions, elements)`` (unwrapped)."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(pos_schedule={self.pos_schedule!r}, "
            f"el_schedule={self.el_schedule!r}, t_start={self.t_start}, t_end={self.t_end})"
        )


#: Registered samplers by name.
SAMPLERS: dict[str, type[Sampler]] = {}


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """Class decorator adding a :class:`Sampler` subclass to :data:`SAMPLERS` under ``cls.name``."""
    SAMPLERS[cls.name] = cls
    return cls


def get_sampler(name: str, **options) -> Sampler:
    """Build the sampler registered as ``name`` with keyword ``options``.

    >>> get_sampler("ode", t_start=0.9).t_start
    0.9
    """
    if name not in SAMPLERS:
        raise unknown_name("sampler", name, SAMPLERS)
    return SAMPLERS[name](**options)


def _time_tensor(t: float, like: Tensor, n_systems: int) -> Tensor:
    return torch.full((n_systems,), t, dtype=like.dtype, device=like.device)


def _reverse_sde_update(
    schedule: NoiseSchedule,
    x: Tensor,
    eps: Tensor,
    t: float,
    dt: float,
    generator: RandomStream,
    system_idx: Tensor | None = None,
) -> Tensor:
    """One Euler-Maruyama step of the reverse SDE, AMDEN (6).

    ``x - (f x - g^2 s) dt + g sqrt(dt) z`` with the score ``s = -eps / sigma(t)``.
    """
    f = float(schedule.drift(t))
    g2 = float(schedule.diffusion(t)) ** 2
    score = -eps / float(schedule.sigma(t))
    noise = _randn_like(x, generator, system_idx)
    return x - (f * x - g2 * score) * dt + (g2 * dt) ** 0.5 * noise


def ddim_update(
    schedule: NoiseSchedule,
    x: Tensor,
    eps: Tensor,
    t: float | Tensor,
    t_next: float | Tensor,
) -> Tensor:
    """Take a deterministic (DDIM / probability-flow) step from ``t`` to ``t_next``.

    ``x0 = (x - sigma(t) eps) / alpha(t)``, ``x' = alpha(t_next) x0 + sigma(t_next) eps``.
    ``t`` and ``t_next`` are floats (one time for the batch) or tensors that broadcast
    against ``x`` (e.g. ``(N, 1)`` per-atom times of structures at different times).

    >>> import torch
    >>> x = torch.tensor([3.0])
    >>> ddim_update(PositionSchedule(1.5), x, torch.tensor([2.0]), 0.5, 0.0)
    tensor([1.5000])
    """
    sigma, alpha = schedule.sigma(t), schedule.alpha(t)
    sigma_next, alpha_next = schedule.sigma(t_next), schedule.alpha(t_next)
    if not isinstance(t, Tensor):
        sigma, alpha = float(sigma), float(alpha)
    if not isinstance(t_next, Tensor):
        sigma_next, alpha_next = float(sigma_next), float(alpha_next)
    x0 = (x - sigma * eps) / alpha
    return alpha_next * x0 + sigma_next * eps


def ancestral_update(
    schedule: NoiseSchedule,
    x: Tensor,
    eps: Tensor,
    t: float,
    t_next: float,
    generator: RandomStream,
    system_idx: Tensor | None = None,
) -> Tensor:
    """Draw ``x'`` at ``t_next`` from the forward posterior ``q(x' | x, x0)`` (DDPM's step).

    With ``x0 = (x - sigma(t) eps) / alpha(t)`` and ``s2 = sigma(t)^2 - (alpha(t) /
    alpha(t'))^2 sigma(t')^2`` (the forward variance from ``t'`` to ``t``),
    ``x' = alpha(t') x0 + sqrt(sigma(t')^2 - c^2) eps + c z``, ``c^2 = sigma(t')^2 s2 /
    sigma(t)^2`` (DDIM with ``eta = 1``). Unlike an Euler-Maruyama step it is exact for any
    step length when the prediction is, so it stays stable on coarse grids.

    >>> import torch
    >>> ancestral_update(PositionSchedule(1.5), torch.tensor([3.0]), torch.tensor([2.0]),
    ...                  0.5, 0.0, None)
    tensor([1.5000])
    """
    alpha, sigma = float(schedule.alpha(t)), float(schedule.sigma(t))
    alpha_next, sigma_next = float(schedule.alpha(t_next)), float(schedule.sigma(t_next))
    s2 = sigma**2 - (alpha / alpha_next) ** 2 * sigma_next**2
    c2 = sigma_next**2 * s2 / sigma**2
    x0 = (x - sigma * eps) / alpha
    mean = alpha_next * x0 + max(sigma_next**2 - c2, 0.0) ** 0.5 * eps
    if c2 <= 0.0:
        return mean
    return mean + c2**0.5 * _randn_like(x, generator, system_idx)


@register_sampler
class SDESampler(Sampler):
    """AMDEN's sampler: Euler-Maruyama on the reverse SDE, AMDEN (6)-(7).

    ``X <- X + g_x^2 s_x dt + g_x sqrt(dt) z`` and
    ``E <- E - (f_e E - g_e^2 s_e) dt + g_e sqrt(dt) z'`` with ``s = -eps / sigma(t)``.
    """

    name = "sde"

    def step(self, state, t, t_next, denoise, generator):
        """One Euler-Maruyama step from ``t`` to ``t_next``."""
        tb = _time_tensor(t, state.positions, state.n_systems)
        eps_x, eps_e = denoise(state.positions, state.elements, state.cell, state.system_idx, tb)
        dt = t - t_next
        idx = state.system_idx
        positions = _reverse_sde_update(
            self.pos_schedule, state.positions, eps_x, t, dt, generator, idx
        )
        elements = _reverse_sde_update(
            self.el_schedule, state.elements, eps_e, t, dt, generator, idx
        )
        return positions, elements


@register_sampler
class ODESampler(Sampler):
    """Probability-flow ODE of the same process (deterministic given the prior).

    Positions: ``X <- X - (sigma_x(t) - sigma_x(t')) eps_x`` (``= sigma_x_max dt eps_x``);
    elements: the DDIM map ``E0 = (E - sigma_e eps_e) / alpha_e``,
    ``E' = alpha_e(t') E0 + sigma_e(t') eps_e``.
    """

    name = "ode"

    def step(self, state, t, t_next, denoise, generator):
        """One deterministic step from ``t`` to ``t_next``."""
        tb = _time_tensor(t, state.positions, state.n_systems)
        eps_x, eps_e = denoise(state.positions, state.elements, state.cell, state.system_idx, tb)
        positions = ddim_update(self.pos_schedule, state.positions, eps_x, t, t_next)
        elements = ddim_update(self.el_schedule, state.elements, eps_e, t, t_next)
        return positions, elements


def run_sampler(
    sampler: Sampler,
    state: SamplerState,
    denoise: DenoiseFn,
    steps: int,
    generator: RandomStream = None,
    callback: Callable[[int], object] | None = None,
) -> SamplerState:
    """Run the reverse process from ``state`` (usually drawn by :meth:`Sampler.prior`) to t = 0.

    Parameters
    ----------
    sampler
        The sampler.
    state
        Starting state at ``sampler.t_start``.
    denoise
        The network, see :class:`DenoiseFn`.
    steps
        Number of grid intervals (see :meth:`Sampler.time_grid`).
    generator
        Torch generator on the state's device, or
        :class:`~ase_amden.random_streams.SystemStreams` (one stream per structure), or None
        (torch's global generator).
    callback
        Called with 1 after each step (e.g. ``tqdm.update``).

    Returns
    -------
    SamplerState
        Final state: positions wrapped into their cells (fixed atoms: exactly
        ``state.fixed_positions``, unwrapped); the element channel is continuous (take the
        argmax for classes), or exactly ``state.fixed_elements`` when given.

    Raises
    ------
    SamplingError
        When positions or elements stop being finite, naming the step and time.

    """
    grid = sampler.time_grid(steps).tolist()
    n_steps = len(grid) - 1
    fixed = state.fixed_elements
    known, mask = state.fixed_positions, state.fixed_mask
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:], strict=True)):
        if fixed is not None:
            state = dataclasses.replace(
                state, elements=sampler.noised_known_elements(fixed, t, generator, state.system_idx)
            )
        if known is not None:
            noised = sampler.noised_known_positions(known, t, generator, state.system_idx)
            state = dataclasses.replace(
                state, positions=torch.where(mask[:, None], noised, state.positions)
            )
        positions, elements = sampler.step(state, t, t_next, denoise, generator)
        if fixed is not None:
            # The element update is not used (the next step re-noises the known channel),
            # and is undefined for a model whose element channel carries no noise.
            elements = state.elements
        if not (torch.isfinite(positions).all() and torch.isfinite(elements).all()):
            raise SamplingError(
                f"non-finite values (NaN/inf) appeared at step {i + 1} of {n_steps} "
                f"(t = {t:.4f} -> {t_next:.4f}) of the {sampler.name!r} sampler; check the "
                "model weights and inputs (targets far outside the training range), or use "
                "more steps"
            )
        positions = wrap_positions(positions, state.cell, state.system_idx)
        state = dataclasses.replace(state, positions=positions, elements=elements)
        if callback is not None:
            callback(1)
    if fixed is not None:
        state = dataclasses.replace(state, elements=fixed.clone())
    if known is not None:
        state = dataclasses.replace(
            state, positions=torch.where(mask[:, None], known, state.positions)
        )
    return state
