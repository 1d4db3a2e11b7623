"""Training objectives: noise prediction (AMDEN 17), flow matching, shortcut consistency.

Each loss takes a clean :class:`~ase_amden.training.batching.Batch` (ghost atoms, if the
model uses them, are already in it: see :func:`~ase_amden.training.batching.collate`),
noises it at a per-structure time ``t`` in ``[card.t_min, card.t_max]`` (uniform unless a
:class:`TimeSampling` says otherwise), hides properties
at random (so the null embedding learns the unconditional score used by
classifier-free guidance) and compares the network output with its target. Squared
errors are summed over the 3 position components and over the element classes, the
element term weighted by :data:`ELEMENT_WEIGHT`, and averaged over atoms (ghosts
included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ase_amden.diffusion.samplers import ddim_update
from ase_amden.diffusion.schedules import forward_noise
from ase_amden.models.card import ModelCard
from ase_amden.models.denoiser import edm_output_scale
from ase_amden.models.geometry import minimum_image, wrap_positions
from ase_amden.training.batching import Batch

#: Weight lambda of the element term, AMDEN (17).
ELEMENT_WEIGHT = 0.5

#: Fraction of training steps on which a self-conditioning model is given its own estimate
#: (from a first pass without gradient; Chen et al. 2022).
SELF_CONDITION_FRACTION = 0.5

#: Step sizes d of the shortcut loss (AMShortcut): 1/128, 1/64, ..., 1/2.
SHORTCUT_STEP_SIZES = tuple(2.0**-k for k in range(7, 0, -1))


@dataclass
class LossTerms:
    """A loss and its parts.

    Attributes
    ----------
    total
        Scalar to back-propagate.
    positions, elements
        Detached per-atom mean squared errors of the two channels of the main
        objective (elements unweighted).

    """

    total: Tensor
    positions: Tensor
    elements: Tensor


@dataclass
class _Noised:
    """A noised batch at times ``t`` and the regression targets of the objective."""

    positions: Tensor
    elements: Tensor
    t: Tensor
    target_x: Tensor
    target_e: Tensor


def position_loss_weight(t: Tensor, card: ModelCard) -> Tensor | None:
    """EDM loss weight ``1 + sigma^2 / sigma_data^2`` of the position term per structure.

    None for models without ``sigma_data`` (AMDEN's unit weight). With it the gradient
    reaching the network's raw output ``F = eps_x / c(sigma)`` has unit weight at every
    noise level (Karras et al. 2022, eq. 8 with ``lambda = 1 / c_out^2``).
    """
    sigma_data = card.model_config.get("sigma_data")
    if sigma_data is None:
        return None
    return edm_output_scale(t, card.sigma_x_max, sigma_data).square().reciprocal()


def _per_atom_loss(pred_x: Tensor, target_x: Tensor, pred_e: Tensor, target_e: Tensor,
                   card: ModelCard, weight_x: Tensor | None = None) -> LossTerms:
    """Per-atom squared errors; a fixed-composition model has no element term.

    ``weight_x`` (per atom) weights the position term of the total; the reported
    ``positions`` error stays unweighted, comparable between models.
    """
    sq_x = (pred_x - target_x).square().sum(dim=-1)
    err_x = sq_x.mean()
    total_x = err_x if weight_x is None else (weight_x * sq_x).mean()
    if card.fixed_composition:
        return LossTerms(total_x, err_x.detach(), torch.zeros_like(err_x))
    err_e = (pred_e - target_e).square().sum(dim=-1).mean()
    return LossTerms(total_x + ELEMENT_WEIGHT * err_e, err_x.detach(), err_e.detach())


#: Ways of drawing the training time, see :class:`TimeSampling`.
TIME_SAMPLINGS = ("uniform", "lognormal")


@dataclass(frozen=True)
class TimeSampling:
    """Distribution of the diffusion time ``t`` of each training structure.

    ``"uniform"``: ``t ~ U(t_min, t_max)`` (AMDEN (17)). ``"lognormal"``: the position
    noise ``sigma_x(t) = sigma_x_max t`` (Å) is log-normal, ``ln sigma ~ N(mean, std^2)``,
    truncated to ``[t_min, t_max]`` (Karras et al. 2022, EDM); it puts the training
    effort at the 0.1-1 Å noise where a glass's bonding topology is decided. The
    minimiser of the loss at each ``t`` is unchanged; only the network's capacity is
    spent differently.

    Attributes
    ----------
    kind
        One of :data:`TIME_SAMPLINGS`.
    log_sigma_mean, log_sigma_std
        Mean and standard deviation of ``ln(sigma_x / Å)`` for ``"lognormal"``.

    """

    kind: str = "uniform"
    log_sigma_mean: float = -1.2
    log_sigma_std: float = 1.2

    def __post_init__(self):
        if self.kind not in TIME_SAMPLINGS:
            raise ValueError(f"time sampling must be one of {TIME_SAMPLINGS}, got {self.kind!r}")
        if not self.log_sigma_std > 0.0:
            raise ValueError(f"log_sigma_std must be > 0, got {self.log_sigma_std}")

    def sample(self, n: int, card: ModelCard, generator: torch.Generator,
               like: Tensor) -> Tensor:
        """``(n,)`` times in ``[card.t_min, card.t_max]`` on ``like``'s device and dtype."""
        u = torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)
        if self.kind == "uniform":
            return card.t_min + (card.t_max - card.t_min) * u
        # Inverse CDF of the normal in ln(t), restricted to [ln t_min, ln t_max].
        mean = self.log_sigma_mean - math.log(card.sigma_x_max)
        bounds = torch.tensor([math.log(card.t_min), math.log(card.t_max)],
                              device=like.device, dtype=torch.float64)
        low, high = torch.special.ndtr((bounds - mean) / self.log_sigma_std)
        z = torch.special.ndtri(low + (high - low) * u.to(torch.float64))
        t = torch.exp(mean + self.log_sigma_std * z).to(like.dtype)
        return t.clamp(card.t_min, card.t_max)


def drop_properties(mask: Tensor, p_drop: float, generator: torch.Generator) -> Tensor:
    """Hide each given property independently with probability ``p_drop``.

    Parameters
    ----------
    mask
        ``(B, P)`` bool, True where a property value is given.
    p_drop
        Probability in ``[0, 1]`` of replacing a value by the null embedding.
    generator
        Torch generator on ``mask``'s device.

    Returns
    -------
    Tensor
        ``(B, P)`` bool mask with the dropped entries set to False.

    """
    keep = torch.rand(mask.shape, generator=generator, device=mask.device) >= p_drop
    return mask & keep


def _noise_eps(batch: Batch, card: ModelCard, t: Tensor, generator: torch.Generator) -> _Noised:
    noisy = forward_noise(
        batch.positions, batch.elements, batch.cell, batch.system_idx, t,
        card.position_schedule(), card.element_schedule(), generator,
    )
    return _Noised(noisy.positions, noisy.elements, t, noisy.eps_x, noisy.eps_e)


def _noise_flow(batch: Batch, card: ModelCard, t: Tensor, generator: torch.Generator) -> _Noised:
    like = batch.positions
    fractional = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    x_noise = torch.einsum("ni,nij->nj", fractional, batch.cell[batch.system_idx])
    e_noise = float(card.element_schedule().sigma(1.0)) * torch.randn(
        batch.elements.shape, generator=generator, device=like.device, dtype=like.dtype
    )
    velocity_x = minimum_image(batch.positions - x_noise, batch.cell, batch.system_idx)
    velocity_e = batch.elements - e_noise
    s = (1.0 - t)[batch.system_idx].unsqueeze(-1)
    positions = wrap_positions(x_noise + s * velocity_x, batch.cell, batch.system_idx)
    elements = e_noise + s * velocity_e
    return _Noised(positions, elements, t, velocity_x, velocity_e)


def _noise(batch: Batch, card: ModelCard, t: Tensor, generator: torch.Generator) -> _Noised:
    return (_noise_flow if card.objective == "flow" else _noise_eps)(batch, card, t, generator)


def objective_loss(
    model: torch.nn.Module,
    batch: Batch,
    card: ModelCard,
    *,
    generator: torch.Generator,
    p_drop: float = 0.1,
    times: TimeSampling = TimeSampling(),
    passes: int = 1,
) -> LossTerms:
    """Compute the loss of ``card.objective``: denoising or flow matching.

    ``times`` draws the time of each structure (uniform unless told otherwise). A
    self-conditioning model is given, on :data:`SELF_CONDITION_FRACTION` of the calls, the
    clean estimate of 1 to ``passes`` (uniform) chained passes without gradient, each given
    the previous pass's estimate (recycling, as the sampler's chain of steps does).
    """
    t = times.sample(batch.n_systems, card, generator, batch.positions)
    noised = _noise(batch, card, t, generator)
    mask = drop_properties(batch.property_mask, p_drop, generator)
    step_size = torch.zeros_like(t) if card.shortcut else None
    inputs = (noised.positions, noised.elements, batch.cell, batch.system_idx, t,
              batch.properties, mask)
    previous = _first_clean_estimate(model, inputs, card, step_size, generator, passes)
    extra = {} if previous is None else {"previous_clean": previous}
    pred_x, pred_e = model(*inputs, step_size=step_size, generator=generator, **extra)
    weight = position_loss_weight(t, card) if card.objective == "eps" else None
    if weight is not None:
        weight = weight[batch.system_idx]
    return _per_atom_loss(pred_x, noised.target_x, pred_e, noised.target_e, card, weight)


def _first_clean_estimate(
    model: torch.nn.Module,
    inputs: tuple,
    card: ModelCard,
    step_size: Tensor | None,
    generator: torch.Generator,
    passes: int = 1,
) -> Tensor | None:
    """Self-conditioning input of a training call, or None.

    For a self-conditioning model, on :data:`SELF_CONDITION_FRACTION` of the calls: the
    clean positions (Å) implied by 1 to ``passes`` (uniform) chained passes without
    gradient through the bare module (not a DDP wrapper: one synchronised forward per
    backward), each but the first given the estimate of the one before. ``inputs`` are the
    network's positional arguments ``(positions, elements, cell, system_idx, t,
    properties, property_mask)``.
    """
    t = inputs[4]
    if not card.model_config.get("self_condition") or float(
            torch.rand((), generator=generator, device=t.device)) >= SELF_CONDITION_FRACTION:
        return None
    count = 1 if passes == 1 else int(torch.randint(1, passes + 1, (), generator=generator,
                                                    device=t.device))
    inner = getattr(model, "module", model)
    estimate = None
    with torch.no_grad():
        for _ in range(count):
            extra = {} if estimate is None else {"previous_clean": estimate}
            out_x, _ = inner(*inputs, step_size=step_size, generator=generator, **extra)
            estimate = inner.clean_estimate(inputs[0], out_x, inputs[3], t)
    return estimate


def denoising_loss(
    model: torch.nn.Module,
    batch: Batch,
    card: ModelCard,
    *,
    generator: torch.Generator,
    p_drop: float = 0.1,
) -> LossTerms:
    """Noise-prediction loss, AMDEN (17).

    ``|eps_X - eps_X_theta|^2 + 0.5 |eps_E - eps_E_theta|^2`` per atom, with
    ``X_t = wrap(X + sigma_x(t) eps_X)`` and ``E_t = alpha_e(t) E + sigma_e(t) eps_E``
    (:func:`~ase_amden.diffusion.forward_noise`). For energy models the network's
    ``forward`` returns ``eps = -sigma(t) * score`` from the autograd gradient of the
    noise energy, built with ``create_graph`` while gradients are enabled, so this loss
    back-propagates through the double derivative. Shortcut models get step size 0.

    Parameters
    ----------
    model
        The denoiser (possibly DDP-wrapped).
    batch
        Clean structures (with ghosts if the model uses them).
    card
        Supplies ``t_min``, ``t_max``, the noise scales and ``shortcut``.
    generator
        Source of every random number drawn here (also passed to the network for
        its random null embeddings).
    p_drop
        Property dropout probability.

    """
    if card.objective != "eps":
        raise ValueError(f"denoising_loss needs an 'eps' model card, got {card.objective!r}")
    return objective_loss(model, batch, card, generator=generator, p_drop=p_drop)


def flow_matching_loss(
    model: torch.nn.Module,
    batch: Batch,
    card: ModelCard,
    *,
    generator: torch.Generator,
    p_drop: float = 0.1,
) -> LossTerms:
    """Flow-matching loss (``flow``; AMShortcut's material ODE).

    With flow time ``s = 1 - t`` (``s = 0`` noise, ``s = 1`` data), noise
    ``X_0`` uniform in the cell and ``E_0 ~ N(0, sigma_e_max^2)``:
    ``X_s = wrap(X_0 + s d)`` with ``d = minimum_image(X_data - X_0)`` and
    ``E_s = (1 - s) E_0 + s E_data``. The network, called at diffusion time ``t``,
    predicts the velocity ``(d, E_data - E_0)``; a sampler integrates
    ``x <- x + ds * v`` from ``s = 0`` (``t = 1``) to ``s = 1`` (``t = 0``).
    Loss weights and averaging are those of :func:`denoising_loss`.
    """
    if card.objective != "flow":
        raise ValueError(f"flow_matching_loss needs a 'flow' model card, got {card.objective!r}")
    return objective_loss(model, batch, card, generator=generator, p_drop=p_drop)


def _shortcut_velocity(
    out_x: Tensor, out_e: Tensor, elements: Tensor, t: Tensor, d: Tensor, system_idx: Tensor,
    card: ModelCard,
) -> tuple[Tensor, Tensor]:
    """Velocity ``u`` such that one step of size ``d`` is ``x_{t-d} = x_t - d u``.

    ``eps`` models: the deterministic (probability-flow / DDIM) update (AMDEN eq. 6-7 as an ODE),
    ``u_X = sigma_x_max eps_X`` and ``u_E = (E_t - E_{t-d}) / d`` with the DDIM map
    (end time clipped at 0). ``flow`` models: ``u = -v``.
    """
    if card.objective == "flow":
        return -out_x, -out_e
    schedule = card.element_schedule()
    t_atom = t[system_idx].unsqueeze(-1)
    d_atom = d[system_idx].unsqueeze(-1)
    t_end = (t_atom - d_atom).clamp(min=0.0)
    e_end = ddim_update(schedule, elements, out_e, t_atom, t_end)
    return card.sigma_x_max * out_x, (elements - e_end) / d_atom


def shortcut_loss(
    model: torch.nn.Module,
    batch: Batch,
    card: ModelCard,
    *,
    generator: torch.Generator,
    p_drop: float = 0.1,
) -> LossTerms:
    """Shortcut self-consistency loss (AMShortcut).

    Per structure ``d`` is drawn from :data:`SHORTCUT_STEP_SIZES` and
    ``t ~ U(min(2d, t_max), t_max)``; then, without gradient,
    ``u_target = (u(x_t, t, d) + u(x'_{t-d}, t-d, d)) / 2`` with
    ``x'_{t-d} = x_t - d u(x_t, t, d)`` (positions wrapped), and the loss is
    ``|u_theta(x_t, t, 2d) - u_target|^2`` weighted and averaged as in
    :func:`denoising_loss`; for ``eps`` models the element term is measured in noise
    units (the velocity error times ``2d / B``, ``B`` the noise coefficient of the DDIM
    element step), so that it does not swamp the positions where ``alpha_e -> 0``. The
    model must take a step size (``card.shortcut``). The finest teacher steps (``d`` the
    smallest of :data:`SHORTCUT_STEP_SIZES`, a size no term trains) query the network at
    step size 0, the instantaneous prediction the denoising loss trains, as AMShortcut takes
    its finest steps with the flow-matching target. A self-conditioning model sees what
    the sampler gives it: on :data:`SELF_CONDITION_FRACTION` of the calls a first estimate
    in the full step and the first half step, and the first half step's estimate in the
    second.
    """
    if not card.shortcut:
        raise ValueError("shortcut_loss needs a model trained with shortcut=True")
    like = batch.positions
    choice = torch.randint(len(SHORTCUT_STEP_SIZES), (batch.n_systems,), generator=generator,
                           device=like.device)
    d = torch.tensor(SHORTCUT_STEP_SIZES, dtype=like.dtype, device=like.device)[choice]
    low = torch.clamp(2.0 * d, max=card.t_max)
    u = torch.rand(batch.n_systems, generator=generator, device=like.device, dtype=like.dtype)
    t = low + (card.t_max - low) * u
    noised = _noise(batch, card, t, generator)
    mask = drop_properties(batch.property_mask, p_drop, generator)
    idx, cell = batch.system_idx, batch.cell

    def velocity(net, positions: Tensor, elements: Tensor, time: Tensor, step: Tensor,
                 previous: Tensor | None, queried: Tensor | None = None):
        """Velocity over ``step``; the network is asked at ``queried`` (default ``step``)."""
        extra = {} if previous is None else {"previous_clean": previous}
        out_x, out_e = net(positions, elements, cell, idx, time, batch.properties, mask,
                           step_size=step if queried is None else queried,
                           generator=generator, **extra)
        u = _shortcut_velocity(out_x, out_e, elements, time, step, idx, card)
        return u, out_x

    teacher = torch.where(d > SHORTCUT_STEP_SIZES[0], d, torch.zeros_like(d))

    # Self-conditioning as in sampling: the first call may see an earlier estimate, the
    # second sees the one implied by the first.
    first = _first_clean_estimate(
        model, (noised.positions, noised.elements, cell, idx, t, batch.properties, mask),
        card, torch.zeros_like(t), generator)
    # The targets use the bare module (not a DDP wrapper: one synchronised forward per
    # backward).
    inner = getattr(model, "module", model)
    with torch.no_grad():
        (u1_x, u1_e), out1_x = velocity(inner, noised.positions, noised.elements, t, d, first,
                                        teacher)
        second = (inner.clean_estimate(noised.positions, out1_x, idx, t)
                  if card.model_config.get("self_condition") else None)
        d_atom = d[idx].unsqueeze(-1)
        x_mid = wrap_positions(noised.positions - d_atom * u1_x.detach(), cell, idx)
        e_mid = noised.elements - d_atom * u1_e.detach()
        (u2_x, u2_e), _ = velocity(inner, x_mid, e_mid, (t - d).clamp(min=0.0), d, second,
                                   teacher)
        target_x = (0.5 * (u1_x + u2_x)).detach()
        target_e = (0.5 * (u1_e + u2_e)).detach()
    (pred_x, pred_e), _ = velocity(model, noised.positions, noised.elements, t, 2.0 * d, first)
    if card.objective == "eps" and not card.fixed_composition:
        scale = _element_noise_units(card, t, 2.0 * d, idx, like=noised.elements)
        pred_e, target_e = scale * pred_e, scale * target_e
    return _per_atom_loss(pred_x, target_x, pred_e, target_e, card)


def _element_noise_units(card: ModelCard, t: Tensor, step: Tensor, system_idx: Tensor,
                         like: Tensor) -> Tensor:
    """``(N, 1)`` factor that turns an element velocity error into a noise error.

    The DDIM element step ``E' = A E + B eps`` over ``step`` makes ``u_E = ((1 - A) E -
    B eps) / step``, so ``step / B`` times a velocity difference is the difference of the
    noise predictions it implies. Compared as velocities, the loss would weigh the
    element channel by ``(B / step)^2 ~ (sigma_e / alpha_e)^2``, about ``10^6`` near
    ``t = 1`` where ``alpha_e -> 0``: it would swamp the position term.
    """
    t_atom = t[system_idx].unsqueeze(-1)
    step_atom = step[system_idx].unsqueeze(-1)
    t_end = (t_atom - step_atom).clamp(min=0.0)
    b = ddim_update(card.element_schedule(), torch.zeros_like(t_atom), torch.ones_like(t_atom),
                    t_atom, t_end)
    return (step_atom / b).expand_as(like[:, :1])
