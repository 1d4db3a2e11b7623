"""Training loop: AdamW, gradient clipping, EMA, atomic checkpoints, exact resume, DDP."""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from tqdm.auto import tqdm

import ase_amden
from ase_amden.atomic import atomic_write, remove_stale_tmp
from ase_amden.checks import pair_min_distances
from ase_amden.data.dataset import AmorphousDataset
from ase_amden.errors import CheckpointError, InvalidArgumentError, InvalidStructureError
from ase_amden.models import Denoiser, DenoiserConfig
from ase_amden.models.card import ModelCard
from ase_amden.models.denoiser import (
    with_angular,
    with_channel_angles,
    with_channel_distances,
    with_layer_angular,
    with_layers,
    with_self_condition,
    with_step_size,
)
from ase_amden.structures import as_images
from ase_amden.training.batching import (
    Batch,
    collate_for,
    concatenate,
    data_hash,
    element_vocabulary,
    mass_density,
    number_density,
    property_statistics,
    property_values,
)
from ase_amden.training.checkpoint import backup_path, read_checkpoint, save_checkpoint
from ase_amden.training.distributed import DistributedContext, epoch_shard, init_distributed
from ase_amden.training.ema import ExponentialMovingAverage
from ase_amden.training.loss import LossTerms, TimeSampling, objective_loss, shortcut_loss
from ase_amden.training.ranking import RankingPairs, check_ranking_times, ranking_loss

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_OBJECTIVES = ("eps", "flow")
LR_SCHEDULES = ("constant", "cosine")
#: Network options an ``init_from`` parent may lack: new weights start at zero.
_GROWTHS = {"channel_distances": with_channel_distances, "channel_angles": with_channel_angles,
            "shortcut": with_step_size, "self_condition": with_self_condition,
            "angular_power": with_angular, "layer_angular": with_layer_angular}


@dataclass
class TrainConfig:
    """Hyperparameters of a training run.

    Attributes
    ----------
    out_dir
        Folder for ``last.pt`` and ``log.csv``.
    epochs
        Passes over the training structures (ignored when ``max_steps`` is set).
    max_steps
        Total optimiser steps; overrides ``epochs``.
    batch_size
        Structures per step and per process.
    lr, weight_decay
        AdamW (peak) learning rate and weight decay.
    lr_schedule
        ``"constant"``, or ``"cosine"``: ``lr`` decays along half a cosine to
        ``lr * lr_final`` at the last step (a function of the step and the planned
        total, so a run resumed with the same total follows the uninterrupted curve).
    lr_final
        Final learning rate of the cosine schedule as a fraction of ``lr``.
    grad_clip
        Largest gradient norm (None: no clipping).
    ema_decay
        Decay of the weight average used for inference.
    p_drop
        Probability of hiding each property (trains the null embedding for CFG).
    seed
        Seeds the weights, the data order and all training noise.
    checkpoint_every
        Write ``last.pt`` every this many steps (and always at the end).
    keep_every
        Also keep the checkpoint of every this many steps as ``step_<step>.pt``
        (six digits), so a curve of quality against training can be measured later;
        ``None`` keeps only ``last.pt``.
    log_every
        Append a line to ``log.csv`` every this many steps.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    dtype
        ``"float32"`` or ``"float64"`` weights and tensors.
    property_names
        Conditioning properties (keys of ``atoms.info``); None: all properties of an
        :class:`~ase_amden.data.AmorphousDataset`, none for a list of Atoms.
    property_units
        Units per property name (datasets bring their own).
    property_log10
        Properties the network sees as ``log10`` of their value (e.g. ``cooling_rate``
        in K/ps, whose training values span decades); values must be positive.
    elements
        Element vocabulary; None: the elements of the training data, by atomic number.
    model
        Overrides of :class:`~ase_amden.models.DenoiserConfig` (``hidden``, ``n_layers``...).
    ghosts
        Train with ghost atoms up to ``rho_max`` = densest training structure times
        ``rho_margin`` (density control at generation).
    rho_margin
        Safety factor on ``rho_max``.
    energy
        Energy-based variant (AMDEN eq. 18-24; double backward, slower).
    fixed_composition
        Positions-only model: the element channel is never noised and has no loss;
        generation always takes the composition from the user (AMDEN, ghost atoms).
    objective
        ``"eps"`` (noise prediction) or ``"flow"`` (flow matching, velocity prediction).
    shortcut
        Add the shortcut self-consistency loss on ``shortcut_fraction`` of the steps.
    shortcut_fraction
        Fraction of steps with the shortcut term.
    sigma_x_max, sigma_e_max, t_min, t_max
        Forward-process settings (Å, dimensionless, time range).
    time_sampling, log_sigma_mean, log_sigma_std
        How training times are drawn: ``"uniform"`` in ``[t_min, t_max]``, or
        ``"lognormal"`` in the position noise, ``ln(sigma_x / Å) ~ N(mean, std^2)``
        (:class:`~ase_amden.training.loss.TimeSampling`). Validation losses always use
        uniform times, so runs with different samplings compare.
    init_from
        Checkpoint (or shipped model file) whose weights start the run (fine-tuning,
        e.g. a model trained on cheap melt data adapted to scarce anneal data). Its
        network configuration must equal this run's; optimiser state starts afresh.
    amp
        Mixed precision: the network runs under bfloat16 autocast (CUDA, and CPU where
        torch supports it), the loss, the optimiser and the weights stay in ``dtype``.
    data_on_device
        Convert every training structure to tensors on the training device once, and
        build each batch there by concatenation (no per-step host work or transfer).
    compile
        Run the network through :func:`torch.compile` (noise-prediction models; the
        energy variant's double backward is not supported by it).
    ranking
        Dataset (.h5) of ranked structure pairs (``rank_pair``, ``true_energy``; see
        :mod:`ase_amden.training.ranking`) for energy models: every step adds
        ``ranking_weight`` times the logistic ranking loss of ``ranking_pairs`` random
        pairs at ``t`` uniform in ``ranking_times``.
    ranking_weight, ranking_pairs, ranking_times
        Weight of the ranking loss, pairs per step, range of its diffusion times.
    self_condition_passes
        Self-conditioning models: the estimate a training call is given comes from 1 to
        this many chained passes without gradient (uniform; 1: a single first pass).
    time_limit_min
        Wall-clock budget of this call, minutes: after the step that reaches it, the run
        writes ``last.pt`` and returns (resume continues it). The cosine schedule then
        decays over whichever comes first, the planned steps or the training time
        (accumulated over resumes): ``progress = max(step / total, time / limit)``.

    """

    out_dir: str = "runs/model"
    epochs: int = 100
    max_steps: int | None = None
    batch_size: int = 8
    lr: float = 1e-3
    lr_schedule: str = "constant"
    lr_final: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float = 0.999
    p_drop: float = 0.1
    seed: int = 0
    checkpoint_every: int = 500
    keep_every: int | None = None
    log_every: int = 10
    device: str = "auto"
    dtype: str = "float32"
    property_names: Sequence[str] | None = None
    property_units: dict[str, str] = field(default_factory=dict)
    property_log10: Sequence[str] = ()
    elements: Sequence[str] | None = None
    model: dict[str, Any] = field(default_factory=dict)
    ghosts: bool = False
    rho_margin: float = 1.05
    energy: bool = False
    fixed_composition: bool = False
    objective: str = "eps"
    shortcut: bool = False
    shortcut_fraction: float = 0.25
    sigma_x_max: float = 1.5
    sigma_e_max: float = 1.5
    t_min: float = 1e-3
    t_max: float = 0.999
    time_sampling: str = "uniform"
    log_sigma_mean: float = -1.2
    log_sigma_std: float = 1.2
    init_from: str | None = None
    amp: bool = False
    data_on_device: bool = False
    compile: bool = False
    self_condition_passes: int = 1
    time_limit_min: float | None = None
    ranking: str | None = None
    ranking_weight: float = 1.0
    ranking_pairs: int = 2
    ranking_times: tuple[float, float] = (0.02, 0.1)

    def __post_init__(self):
        if self.objective not in _OBJECTIVES:
            raise InvalidArgumentError(
                f"objective must be one of {_OBJECTIVES}, got {self.objective!r}")
        if self.dtype not in _DTYPES:
            raise InvalidArgumentError(
                f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if self.batch_size < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise InvalidArgumentError("batch_size, checkpoint_every and log_every must be >= 1")
        if self.keep_every is not None and self.keep_every < 1:
            raise InvalidArgumentError(
                f"keep_every must be >= 1 (or None to keep only last.pt), got {self.keep_every}")
        if self.max_steps is None and self.epochs < 1:
            raise InvalidArgumentError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise InvalidArgumentError(
                f"max_steps must be >= 1, got {self.max_steps}: a run of no steps writes no "
                "checkpoint"
            )
        if not (math.isfinite(self.lr) and self.lr >= 0):
            raise InvalidArgumentError(f"the learning rate lr must be a number >= 0, "
                                       f"got {self.lr}")
        if self.fixed_composition and self.ghosts:
            raise InvalidArgumentError(
                "a fixed-composition model takes its atoms from the user and cannot use "
                "ghost atoms; choose fixed_composition or ghosts"
            )
        if self.energy and self.objective != "eps":
            raise InvalidArgumentError("the energy variant is trained with objective='eps'")
        if self.model.get("self_condition") and self.objective != "eps":
            raise InvalidArgumentError("self-conditioning is for noise prediction; train it "
                                       "with objective='eps'")
        if not 0.0 <= self.shortcut_fraction <= 1.0:
            raise InvalidArgumentError(
                f"shortcut_fraction must lie in [0, 1], got {self.shortcut_fraction}")
        if not 0.0 <= self.p_drop <= 1.0:
            raise InvalidArgumentError(f"p_drop must lie in [0, 1], got {self.p_drop}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InvalidArgumentError(f"lr_schedule must be one of {LR_SCHEDULES}, "
                             f"got {self.lr_schedule!r}")
        if not 0.0 <= self.lr_final <= 1.0:
            raise InvalidArgumentError(f"lr_final must lie in [0, 1], got {self.lr_final}")
        if self.compile and self.energy:
            raise InvalidArgumentError("compile does not support the energy variant (double "
                                       "backward); train it without compile")
        if self.self_condition_passes < 1:
            raise InvalidArgumentError(
                f"self_condition_passes must be >= 1, got {self.self_condition_passes}")
        if self.time_limit_min is not None and self.time_limit_min <= 0:
            raise InvalidArgumentError(
                f"time_limit_min must be positive, got {self.time_limit_min}")
        if self.ranking is not None and not self.energy:
            raise InvalidArgumentError(
                "ranking pairs train the noise energy of an energy model; train with "
                "energy=True (--energy) or drop ranking")
        if not (math.isfinite(self.ranking_weight) and self.ranking_weight >= 0
                and self.ranking_pairs >= 1):
            raise InvalidArgumentError(
                f"ranking_weight must be a number >= 0 and ranking_pairs >= 1, got "
                f"{self.ranking_weight} and {self.ranking_pairs}")
        check_ranking_times(self.ranking_times)
        self.times()  # validates the time sampling

    def times(self) -> TimeSampling:
        """The distribution of training times this configuration asks for."""
        return TimeSampling(self.time_sampling, self.log_sigma_mean, self.log_sigma_std)

    def learning_rate(self, step: int, total: int, elapsed_s: float = 0.0) -> float:
        """Learning rate of optimiser step ``step`` (0-based) of ``total``.

        With ``time_limit_min``, ``elapsed_s`` seconds of training advance the cosine as
        well (it ends at the time limit if that comes before the last step).

        >>> cfg = TrainConfig(lr=1e-3, lr_schedule="cosine", lr_final=0.1)
        >>> [round(cfg.learning_rate(s, 101), 6) for s in (0, 50, 100)]
        [0.001, 0.00055, 0.0001]
        """
        if self.lr_schedule == "constant" or total <= 1:
            return self.lr
        progress = min(step, total - 1) / (total - 1)
        if self.time_limit_min is not None:
            progress = min(1.0, max(progress, elapsed_s / (60.0 * self.time_limit_min)))
        return self.lr * (self.lr_final + (1.0 - self.lr_final)
                          * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _plain(value: Any) -> Any:
    """JSON round trip: tuples become lists, so the card stays plain data."""
    return json.loads(json.dumps(value))


def _step_seed(seed: int, step: int, rank: int, stream: int = 0) -> int:
    return int(np.random.SeedSequence([seed, step, rank, stream]).generate_state(1, np.uint64)[0]
               % 2**63)


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float)))


def _median_composition(structures: Sequence[Atoms]) -> dict[str, int]:
    """Element counts of the training structure with the median number of atoms."""
    sizes = [len(a) for a in structures]
    atoms = structures[int(np.argsort(sizes)[len(sizes) // 2])]
    symbols = atoms.get_chemical_symbols()
    return {symbol: symbols.count(symbol) for symbol in sorted(set(symbols))}


def _density_fit(structures: Sequence[Atoms], names: Sequence[str],
                 log10: Sequence[bool]) -> dict[str, Any] | None:
    """Mass density linear in the (only) conditioning property, on the network's scale.

    Yang and Schwalbe-Koda fix the density of a generated cell from its target cooling
    rate this way. None unless there is exactly one property with two or more values.
    """
    if len(names) != 1:
        return None
    x = property_values(structures, names, log10)[:, 0]
    y = np.array([mass_density(a) for a in structures])
    keep = np.isfinite(x)
    if np.unique(x[keep]).size < 2:
        return None
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    return {"property": names[0], "log10": bool(log10[0]), "slope": float(slope),
            "intercept": float(intercept), "unit": "g/cm^3",
            "range": [float(x[keep].min()), float(x[keep].max())]}


class _Autocast(torch.nn.Module):
    """Run a network under bfloat16 autocast and return its outputs in float32.

    ``module`` is the bare model (targets computed without the wrapper stay in full
    precision); calls go through ``net`` (possibly DDP-wrapped).
    """

    def __init__(self, net: torch.nn.Module, device: torch.device):
        super().__init__()
        self.net, self.device_type = net, device.type
        self.module = getattr(net, "module", net)

    def forward(self, *args, **kwargs) -> tuple[torch.Tensor, ...]:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            outputs = self.net(*args, **kwargs)
        return tuple(out.float() for out in outputs)


class Trainer:
    """Train a :class:`~ase_amden.models.Denoiser` on periodic structures.

    Parameters
    ----------
    structures
        Training structures (properties in ``atoms.info``).
    config
        Hyperparameters.
    card_name
        Name written into the model card.
    validation
        Held-out structures; their loss (EMA weights, fixed noise) is logged per epoch.
    property_units
        Units per property (overrides ``config.property_units``).

    Attributes
    ----------
    card
        The model card (filled from the data and the config).
    model, ema
        The raw (not DDP-wrapped) model and its weight average, set by :meth:`run`.
    history
        One record per epoch: ``epoch``, ``step``, ``train_loss`` (and ``val_loss``).

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE > 1``) every process builds a Trainer on the same
    structures; each trains on its shard of every epoch with DDP, and only rank 0
    writes files.

    """

    def __init__(
        self,
        structures: Sequence[Atoms],
        config: TrainConfig,
        card_name: str,
        *,
        validation: Sequence[Atoms] | None = None,
        property_units: dict[str, str] | None = None,
    ):
        if len(structures) == 0:
            raise InvalidStructureError(
                "no training structures (the dataset or its train split is empty); pass at "
                "least one ase.Atoms, or make the dataset first"
            )
        as_images(structures, what="training structure")
        self.structures = list(structures)
        self.validation = list(validation) if validation else []
        self.config = config
        self.dtype = _DTYPES[config.dtype]
        units = {**config.property_units, **(property_units or {})}
        self.card = self._make_card(card_name, units)
        self.out_dir = Path(config.out_dir)
        self.history: list[dict[str, float]] = []
        self.model: Denoiser | None = None
        self.ema: ExponentialMovingAverage | None = None
        self._on_device: list[Batch] | None = None
        self.stopped_by_time = False
        self.ranking = (RankingPairs.from_structures(AmorphousDataset(config.ranking))
                        if config.ranking else None)

    def _make_card(self, name: str, units: dict[str, str]) -> ModelCard:
        cfg = self.config
        names = list(cfg.property_names or ())
        unknown_log = sorted(set(cfg.property_log10) - set(names))
        if unknown_log:
            raise ValueError(
                f"property_log10 names {unknown_log}, which are not conditioning properties "
                f"{names}; add them to property_names or drop them from property_log10"
            )
        log10 = [name in cfg.property_log10 for name in names]
        elements = list(cfg.elements) if cfg.elements else element_vocabulary(self.structures)
        mean, std, ranges = (property_statistics(self.structures, names, log10) if names
                             else ([], [], []))
        densities = [number_density(a) for a in self.structures]
        rho_max = max(densities) * cfg.rho_margin if cfg.ghosts else None
        model_config = DenoiserConfig(
            **{
                **cfg.model,
                "n_classes": len(elements) + 1,
                "property_names": tuple(names),
                "shortcut": cfg.shortcut,
                "energy": cfg.energy,
                "sigma_x_max": cfg.sigma_x_max,
            }
        )
        training = {
            "config": asdict(cfg),
            "n_structures": len(self.structures),
            "default_n_atoms": int(round(_median([len(a) for a in self.structures]))),
            "default_density": _median([mass_density(a) for a in self.structures]),
            "default_density_unit": "g/cm^3",
            "default_number_density": _median(densities),
            "default_number_density_unit": "1/Å^3",
            "min_distances": pair_min_distances(self.structures),
            "min_distances_unit": "Å",
        }
        if cfg.fixed_composition:
            training["default_composition"] = _median_composition(self.structures)
            fit = _density_fit(self.structures, names, log10)
            if fit is not None:
                training["density_fit"] = fit
        return ModelCard(
            name=name,
            elements=elements,
            model_config=_plain(asdict(model_config)),
            rho_max=rho_max,
            property_names=names,
            property_units=[units.get(n, "") for n in names],
            property_mean=mean,
            property_std=std,
            property_log10=log10,
            property_range=ranges,
            sigma_x_max=cfg.sigma_x_max,
            sigma_e_max=cfg.sigma_e_max,
            t_min=cfg.t_min,
            t_max=cfg.t_max,
            objective=cfg.objective,
            energy=cfg.energy,
            shortcut=cfg.shortcut,
            fixed_composition=cfg.fixed_composition,
            data_hash=data_hash(self.structures, names),
            training=_plain(training),
            package_version=ase_amden.__version__,
        )

    def _collate(self, structures: Sequence[Atoms], device: torch.device) -> Batch:
        card = self.card
        batch = collate_for(structures, card)
        return batch.to(device, self.dtype)

    def _training_batch(self, indices: Sequence[int], device: torch.device) -> Batch:
        """Batch of training structures ``indices`` (from device tensors if so configured)."""
        if not self.config.data_on_device:
            return self._collate([self.structures[i] for i in indices], device)
        if self._on_device is None:
            self._on_device = [self._collate([a], device) for a in self.structures]
        return concatenate([self._on_device[i] for i in indices])

    def _generator(self, step: int, rank: int, device: torch.device,
                   stream: int) -> torch.Generator:
        generator = torch.Generator(device=device)
        generator.manual_seed(_step_seed(self.config.seed, step, rank, stream))
        return generator

    def _train_step(self, net: torch.nn.Module, chunk: Sequence[int], step: int,
                    ctx: DistributedContext, device: torch.device) -> LossTerms:
        """Forward and backward passes of one step (gradients left in the parameters).

        With the shortcut term the two losses are back-propagated one after the other,
        the first under DDP's ``no_sync`` so that gradients are reduced once.
        """
        cfg, card = self.config, self.card
        generator = self._generator(step, ctx.rank, device, stream=0)
        batch = self._training_batch(chunk, device).with_ghosts(card.rho_max, generator)
        with_shortcut = card.shortcut and (
            float(torch.rand((), generator=generator, device=device)) < cfg.shortcut_fraction
        )
        forward = _Autocast(net, device) if cfg.amp else net
        main = objective_loss(forward, batch, card, generator=generator, p_drop=cfg.p_drop,
                              times=cfg.times(), passes=cfg.self_condition_passes)
        total = main.total
        if self.ranking is not None:
            total = total + cfg.ranking_weight * self._ranking_loss(net, step, ctx, device)
        hold = net.no_sync() if with_shortcut and ctx.enabled else contextlib.nullcontext()
        with hold:
            total.backward()
        if self.ranking is not None:
            main = LossTerms(total.detach(), main.positions, main.elements)
        if not with_shortcut:
            return main
        extra = shortcut_loss(forward, batch, card, generator=generator, p_drop=cfg.p_drop)
        extra.total.backward()
        return LossTerms((main.total + extra.total).detach(), main.positions, main.elements)

    def _ranking_loss(self, net: torch.nn.Module, step: int, ctx: DistributedContext,
                      device: torch.device) -> torch.Tensor:
        """Ranking loss of ``ranking_pairs`` random pairs (its own random stream)."""
        generator = self._generator(step, ctx.rank, device, stream=2)
        chosen = torch.randint(len(self.ranking), (self.config.ranking_pairs,),
                               generator=generator, device=device).tolist()
        better = self._collate([self.ranking.better[i] for i in chosen], device)
        worse = self._collate([self.ranking.worse[i] for i in chosen], device)
        return ranking_loss(net, better, worse, self.card, times=self.config.ranking_times,
                            generator=generator)

    def validation_loss(self, model: torch.nn.Module, device: torch.device) -> float:
        """Mean loss over the validation structures with fixed noise (seeded per run)."""
        if not self.validation:
            return math.nan
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        size = self.config.batch_size
        with torch.no_grad():
            for k, start in enumerate(range(0, len(self.validation), size)):
                chunk = self.validation[start:start + size]
                generator = self._generator(k, 0, device, stream=1)
                batch = self._collate(chunk, device).with_ghosts(self.card.rho_max, generator)
                terms = objective_loss(model, batch, self.card, generator=generator, p_drop=0.0)
                total += float(terms.total.detach()) * len(chunk)
                count += len(chunk)
        model.train(was_training)
        return total / count

    def run(self, resume: bool = True, verbose: bool = True) -> Path:
        """Train, writing ``out_dir/last.pt``; return its path.

        Parameters
        ----------
        resume
            Continue from ``out_dir/last.pt`` if it exists (same step, weights,
            optimiser, EMA and noise stream), else start afresh.
        verbose
            Show a tqdm progress bar (rank 0 only).

        """
        context, device = init_distributed(self.config.device)
        try:
            return self._run(context, device, resume, verbose)
        finally:
            context.close()

    def _run(self, ctx: DistributedContext, device: torch.device, resume: bool,
             verbose: bool) -> Path:
        cfg = self.config
        path = self.out_dir / "last.pt"
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(cfg.seed)
            model = Denoiser(DenoiserConfig(**self.card.model_config))
        model = model.to(device=device, dtype=self.dtype).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        ema = ExponentialMovingAverage(model, cfg.ema_decay)
        start, self._trained_s = 0, 0.0
        if ctx.is_main:
            remove_stale_tmp(path)
        if resume and (path.exists() or backup_path(path).exists()):
            start = self._restore_or_backup(path, model, optimizer, ema, device)
        elif cfg.init_from is not None:
            self._initialise(Path(cfg.init_from), model, ema, device)
        self.model, self.ema = model, ema
        net: torch.nn.Module = torch.compile(model) if cfg.compile else model
        if ctx.enabled:
            net = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,
            )

        n_local = len(epoch_shard(len(self.structures), 0, cfg.seed, ctx.rank, ctx.world_size))
        steps_per_epoch = -(-n_local // cfg.batch_size)
        total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
        if ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        log = _CsvLog(self.out_dir / "log.csv", start) if ctx.is_main else None
        bar = tqdm(total=total, initial=start, disable=not (verbose and ctx.is_main),
                   desc=f"train {self.card.name}", unit="step")
        epoch_losses: list[float] = []
        log_start = log.elapsed if log is not None else 0.0
        clock = time.perf_counter()
        trained_before = self._trained_s
        deadline = (clock + 60.0 * cfg.time_limit_min if cfg.time_limit_min is not None
                    else math.inf)
        self.stopped_by_time = False
        shard, shard_epoch = None, -1
        for step in range(start, total):
            epoch, k = divmod(step, steps_per_epoch)
            if epoch != shard_epoch:
                shard = epoch_shard(len(self.structures), epoch, cfg.seed, ctx.rank,
                                    ctx.world_size)
                shard_epoch = epoch
            chunk = [int(i) for i in shard[k * cfg.batch_size:(k + 1) * cfg.batch_size]]
            lr = cfg.learning_rate(step, total, self._trained_s)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            terms = self._train_step(net, chunk, step, ctx, device)
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            ema.update(model)
            self._trained_s = trained_before + time.perf_counter() - clock
            done = step + 1
            loss = float(terms.total.detach())
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss} at step {done}; lower the learning rate "
                    "(--lr) or check the data for overlapping atoms"
                )
            epoch_losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", epoch=epoch)
            epoch_end = done % steps_per_epoch == 0 or done == total
            val_loss = ""
            if epoch_end:
                self._end_epoch(ctx, model, ema, device, epoch, epoch_losses, done)
                epoch_losses = []
                if self.validation and ctx.is_main:
                    val_loss = self.history[-1]["val_loss"]
            if log is not None and (done % cfg.log_every == 0 or done == total or val_loss != ""):
                log.write(step=done, epoch=epoch, loss=loss,
                          loss_positions=float(terms.positions),
                          loss_elements=float(terms.elements), lr=lr,
                          elapsed_s=log_start + time.perf_counter() - clock, val_loss=val_loss)
            out_of_time = (done < total and deadline < math.inf
                           and ctx.any_true(time.perf_counter() >= deadline, device))
            if ctx.is_main and (done % cfg.checkpoint_every == 0 or done == total
                                or out_of_time):
                self._save(path, model, optimizer, ema, done, done // steps_per_epoch)
            if ctx.is_main and cfg.keep_every is not None and done % cfg.keep_every == 0:
                self._save(self.out_dir / f"step_{done:06d}.pt", model, optimizer, ema, done,
                           done // steps_per_epoch)
            if out_of_time:
                self.stopped_by_time = True
                break
        bar.close()
        ctx.barrier()
        return path

    def _end_epoch(self, ctx: DistributedContext, model: torch.nn.Module,
                   ema: ExponentialMovingAverage, device: torch.device, epoch: int,
                   losses: list[float], step: int) -> None:
        if not ctx.is_main:
            return
        record = {"epoch": epoch, "step": step,
                  "train_loss": float(np.mean(losses)) if losses else math.nan}
        if self.validation:
            averaged = copy.deepcopy(model)
            ema.copy_to(averaged)
            record["val_loss"] = self.validation_loss(averaged, device)
        self.history.append(record)

    def _save(self, path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              ema: ExponentialMovingAverage, step: int, epoch: int) -> None:
        self.card.training["history"] = _plain(self.history)
        self.card.training["steps"] = step
        self.card.training["training_s"] = self._trained_s
        save_checkpoint(path, model, self.card, optimizer=optimizer, ema=ema, step=step,
                        epoch=epoch, extra={"history": _plain(self.history),
                                            "training_s": self._trained_s})

    def _initialise(self, path: Path, model: torch.nn.Module,
                    ema: ExponentialMovingAverage, device: torch.device) -> None:
        """Start from the (EMA) weights of another checkpoint (fine-tuning)."""
        payload = read_checkpoint(path, device)
        saved = payload["card"]
        weights = payload["ema"]["shadow"] if payload["ema"] is not None else payload["model"]
        config = DenoiserConfig(**self.card.model_config)
        parent = DenoiserConfig(**saved["model_config"])
        growths = {name: grow for name, grow in _GROWTHS.items()
                   if getattr(config, name) and not getattr(parent, name)}
        # A grown option (and the width of the bond-angle moments with it) is the parent's.
        changes = {name: getattr(parent, name) for name in growths}
        if "angular_power" in growths:
            changes["angular_channels"] = parent.angular_channels
        deeper = config.backbone == "egnn" and config.n_layers > parent.n_layers
        if deeper:
            changes["n_layers"] = parent.n_layers
        if not self._same_network(saved["model_config"], **changes):
            raise CheckpointError(
                f"init_from {str(path)!r} holds a network with another configuration "
                f"({saved.get('model_config')}, this run: {self.card.model_config}); use the "
                "same --backbone/--hidden/--cutoff/--radial, properties and variant as that "
                "model (--channel-distances, --channel-angles, --angular, --shortcut, "
                "--self-condition and more EGNN --layers may be added to a model without them)."
            )
        # Options grow on the parent's layers; added layers come last, with all options.
        for grow in growths.values():
            weights = grow(weights, replace(config, n_layers=parent.n_layers))
        if deeper:
            weights = with_layers(weights, config)
        model.load_state_dict(weights)
        ema.load_state_dict({"decay": ema.decay, "num_updates": 0, "shadow": weights})
        self.card.training["init_from"] = {"path": str(path), "name": saved.get("name"),
                                           "data_hash": saved.get("data_hash")}

    def _same_network(self, saved_config: dict, **changes) -> bool:
        """Whether a saved network configuration equals this run's (with ``changes``).

        Compared through :class:`DenoiserConfig`, so a file written before a newer
        option existed (the option then at its default) still matches.
        """
        mine = {**self.card.model_config, **changes}
        return _plain(asdict(DenoiserConfig(**saved_config))) == _plain(mine)

    def _restore_or_backup(self, path: Path, model: torch.nn.Module,
                           optimizer: torch.optim.Optimizer, ema: ExponentialMovingAverage,
                           device: torch.device) -> int:
        """Resume from ``path``; if it is missing or damaged, from its backup (warning)."""
        backup = backup_path(path)
        try:
            if not path.exists():
                raise CheckpointError(f"{str(path)!r} is missing")
            return self._restore(path, model, optimizer, ema, device)
        except CheckpointError as error:
            if not backup.exists() or "trained on other data" in str(error) \
                    or "another configuration" in str(error):
                raise
            warnings.warn(f"{error}; resuming from the backup {str(backup)!r} instead",
                          UserWarning, stacklevel=3)
            return self._restore(backup, model, optimizer, ema, device)

    def _restore(self, path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 ema: ExponentialMovingAverage, device: torch.device) -> int:
        payload = read_checkpoint(path, device)
        saved = payload["card"]
        if saved.get("data_hash") != self.card.data_hash:
            raise CheckpointError(
                f"{str(path)!r} was trained on other data (data hash differs), so it cannot be "
                "resumed; pass resume=False (--no-resume) or choose another output folder."
            )
        if not self._same_network(saved["model_config"]):
            raise CheckpointError(
                f"{str(path)!r} holds a model with another configuration "
                f"({saved.get('model_config')}); pass resume=False (--no-resume) or choose "
                "another output folder."
            )
        model.load_state_dict(payload["model"])
        if payload["optimizer"] is not None:
            optimizer.load_state_dict(payload["optimizer"])
        if payload["ema"] is not None:
            ema.load_state_dict(payload["ema"])
        self.history = list(payload["extra"].get("history", []))
        self._trained_s = float(payload["extra"].get("training_s", 0.0))  # older files: 0
        if "init_from" in saved.get("training", {}):
            self.card.training["init_from"] = saved["training"]["init_from"]
        return int(payload["step"])


class _CsvLog:
    """Append-only CSV of training metrics, resumable at a step.

    Opening it at step ``start`` drops the rows of later steps (a resumed run replays
    them) and continues ``elapsed_s`` from the last row kept (:attr:`elapsed`).
    """

    required = ("step", "epoch", "loss", "loss_positions", "loss_elements", "lr", "elapsed_s")
    columns = (*required, "val_loss")  # val_loss: empty except after a validation pass

    def __init__(self, path: Path, start: int = 0):
        self.path = path
        self.elapsed = 0.0
        if not path.exists():
            return
        text = path.read_text()
        rows = list(csv.DictReader(text.splitlines()))
        kept = [row for row in rows if _number(row.get("step")) <= start
                and all(row.get(column) not in (None, "") for column in self.required)]
        if kept:
            self.elapsed = _number(kept[-1].get("elapsed_s"), 0.0)
        if len(kept) != len(rows) or not text.endswith("\n"):
            with atomic_write(path) as tmp, open(tmp, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)

    def write(self, **row: float) -> None:
        new = not self.path.exists()
        columns = self.columns
        if not new:  # a log begun by an older version keeps its columns
            with open(self.path, newline="") as handle:
                columns = next(csv.reader(handle), None) or self.columns
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


def _number(text: str | None, default: float = math.inf) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return default


def _training_structures(data: Any) -> tuple[list[Atoms], list[str], dict[str, str]]:
    """Structures, property names and units from a dataset or a list of Atoms."""
    if hasattr(data, "split_indices"):
        structures = [data[int(i)] for i in data.split_indices("train")]
        return structures, list(data.property_names), dict(data.property_units)
    return list(data), [], {}


def train(
    dataset_or_atoms: Any,
    config: TrainConfig,
    card_name: str,
    resume: bool = True,
    verbose: bool = True,
    *,
    validation: Sequence[Atoms] | None = None,
) -> Path:
    """Train a denoiser and return the path of its checkpoint.

    Parameters
    ----------
    dataset_or_atoms
        An :class:`~ase_amden.data.AmorphousDataset` (its ``"train"`` split is used) or
        a sequence of periodic ``ase.Atoms``.
    config
        Hyperparameters; ``config.property_names = None`` means all properties of a
        dataset (none for plain Atoms).
    card_name
        Name of the model in its card.
    resume
        Continue from ``config.out_dir/last.pt`` if present.
    verbose
        Show a progress bar.
    validation
        Held-out structures for a per-epoch validation loss (``val_loss`` in ``log.csv``
        and the card's history); default: the dataset's held-out (``"test"``) split, none
        for a list of Atoms.

    Returns
    -------
    Path
        ``config.out_dir/last.pt`` (load it with
        :func:`~ase_amden.training.load_checkpoint`).

    """
    structures, names, units = _training_structures(dataset_or_atoms)
    if validation is None and hasattr(dataset_or_atoms, "subset"):
        validation = dataset_or_atoms.subset("test")
    if config.property_names is None and names:
        config = replace(config, property_names=names)
    trainer = Trainer(structures, config, card_name, validation=validation,
                      property_units=units)
    return trainer.run(resume=resume, verbose=verbose)
