"""``ase-amden train``: train a denoiser from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ase_amden.cli.arguments import finite_float, positive_float, positive_int, seed
from ase_amden.models.denoiser import BACKBONES
from ase_amden.training.loss import TIME_SAMPLINGS
from ase_amden.training.trainer import LR_SCHEDULES, TrainConfig, train

_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand on ``subparsers`` (from ``add_subparsers``).

    The handler is stored as the parser default ``handler``; call ``args.handler(args)``.
    """
    parser = subparsers.add_parser(
        "train",
        help="train a diffusion model on a dataset",
        description="Train a denoiser on an ase_amden HDF5 dataset (its train split) or on "
        "any structure file ase.io.read understands; writes OUT/last.pt (resumable).",
    )
    parser.add_argument("dataset", help="HDF5 dataset (.h5) or a file ase.io.read can read")
    parser.add_argument("--name", required=True, help="model name stored in the model card")
    parser.add_argument("--out", required=True, help="output folder for last.pt and log.csv")
    parser.add_argument("--epochs", type=positive_int, default=100, help="passes over the data")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="total optimiser steps (overrides --epochs)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="structures per step")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="AdamW learning rate")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                        help="constant, or cosine decay to --lr-final x --lr at the last step")
    parser.add_argument("--lr-final", type=finite_float, default=0.1,
                        help="final learning rate of the cosine schedule, as a fraction of --lr")
    parser.add_argument("--time-sampling", choices=TIME_SAMPLINGS, default="uniform",
                        help="training times: uniform in t, or lognormal in the position "
                        "noise (ln sigma/Å ~ N(--log-sigma-mean, --log-sigma-std^2))")
    parser.add_argument("--log-sigma-mean", type=finite_float, default=-1.2,
                        help="mean of ln(sigma_x/Å) for --time-sampling lognormal")
    parser.add_argument("--log-sigma-std", type=positive_float, default=1.2,
                        help="standard deviation of ln(sigma_x/Å) for lognormal")
    parser.add_argument("--hidden", type=positive_int, default=None,
                        help="hidden width (default 128)")
    parser.add_argument("--layers", type=positive_int, default=None,
                        help="EGNN layers (default 4); more than an --init-from EGNN's adds "
                        "layers after its own that start as the identity")
    parser.add_argument("--cutoff", type=positive_float, default=None,
                        help="graph cutoff, Å (default 6.5)")
    parser.add_argument("--radial", type=int, default=None, metavar="N",
                        help="add N Gaussians of the distance to the edge attributes "
                             "(default 0: AMDEN's network)")
    parser.add_argument("--backbone", choices=BACKBONES, default=None,
                        help="message-passing network: egnn (AMDEN's, default) or painn "
                        "(scalar and vector features, many-body angles; give it --radial)")
    parser.add_argument("--channel-distances", action="store_true",
                        help="feed every EGNN layer the distances between its vector "
                        "channels (default: AMDEN's network, input distances only); "
                        "may be added to an --init-from model without them (the new "
                        "weights start at zero)")
    parser.add_argument("--channel-angles", action="store_true",
                        help="feed every layer's node update the dot products of the atom's "
                        "vector channels (bond angles as invariant features); may be added to "
                        "an --init-from model without them (the new weights start at zero)")
    parser.add_argument("--angular", type=positive_int, default=None, metavar="L",
                        help="feed the node embedding the bond-angle moments cos^0..L of every "
                        "atom's neighbourhood (needs --radial; default 0: off); may be added "
                        "to an --init-from model without them (the new weights start at zero)")
    parser.add_argument("--angular-channels", type=positive_int, default=None, metavar="C",
                        help="learned radial channels of the bond-angle moments (default 8)")
    parser.add_argument("--layer-angular", action="store_true",
                        help="with --angular, every EGNN layer also gets the bond-angle moments "
                        "of the structure built so far, neighbours weighted by their features; "
                        "may be added to an --init-from model without them (new map at zero)")
    parser.add_argument("--self-condition", action="store_true",
                        help="self-conditioning: the network is given its previous estimate of "
                        "the clean structure (in training, on half the steps); may be added to "
                        "an --init-from model without it (the new gate starts at zero)")
    parser.add_argument("--self-condition-passes", type=positive_int, default=1, metavar="N",
                        help="with --self-condition, the estimate a training step is given "
                        "comes from 1 to N chained passes without gradient (default 1)")
    parser.add_argument("--properties", default="",
                        help="comma-separated conditioning properties, e.g. "
                        "shear_modulus,ring_size (default: none, an unconditional model)")
    parser.add_argument("--log10-properties", default="", metavar="NAMES",
                        help="comma-separated properties the network sees as log10 of "
                        "their value, e.g. cooling_rate (values must be positive)")
    parser.add_argument("--property-basis", type=int, default=None, metavar="N",
                        help="embed each property with N Gaussians and a SoftPlus MLP, added "
                        "to every layer (Yang and Schwalbe-Koda; default 0: AMDEN's linear "
                        "embedding)")
    parser.add_argument("--fixed-composition", action="store_true",
                        help="positions-only model: the composition is always given by the "
                        "user (no element noise, no ghosts)")
    parser.add_argument("--sigma-x-max", type=positive_float, default=1.5,
                        help="largest position noise, Å (AMDEN: 1.5; 1.7 for multi-element "
                        "glass)")
    parser.add_argument("--sigma-data", type=positive_float, default=None, metavar="ANGSTROM",
                        help="EDM preconditioning of the position output with this data "
                        "scale, Å (output scale and loss weight; default: AMDEN's plain "
                        "noise prediction)")
    parser.add_argument("--ghosts", action="store_true",
                        help="train with ghost atoms (density control at generation)")
    parser.add_argument("--energy", action="store_true",
                        help="energy-based variant (enables HMC denoising; slower)")
    parser.add_argument("--shortcut", action="store_true",
                        help="add the shortcut self-consistency loss and the step-size input "
                        "(few-step 'shortcut' sampling, AMShortcut); may be added to an "
                        "--init-from model without it (the new weights start at zero)")
    parser.add_argument("--shortcut-fraction", type=float, default=0.25,
                        help="fraction of steps with the shortcut term (default 0.25)")
    parser.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                        help="start from this checkpoint's weights (fine-tuning); the "
                        "network settings must match it")
    parser.add_argument("--checkpoint-every", type=positive_int, default=500,
                        help="steps between checkpoints")
    parser.add_argument("--keep-every", type=positive_int, default=None, metavar="STEPS",
                        help="also keep the checkpoint of every STEPS steps as "
                        "OUT/step_<step>.pt (for a curve of quality against training)")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision: the network under bfloat16 autocast (GPU; "
                        "also runs on CPU), weights and loss in float32")
    parser.add_argument("--data-on-device", action="store_true",
                        help="hold the training structures as tensors on the device and "
                        "batch them there (no per-step host work)")
    parser.add_argument("--compile", action="store_true",
                        help="run the network through torch.compile (not with --energy)")
    parser.add_argument("--ranking", default=None, metavar="PAIRS.h5",
                        help="energy models: add a ranking loss on these ranked structure "
                        "pairs (from 'ase-amden dataset exploits')")
    parser.add_argument("--ranking-weight", type=positive_float, default=1.0,
                        help="weight of the ranking loss (default 1)")
    parser.add_argument("--ranking-pairs", type=positive_int, default=2,
                        help="ranked pairs per step (default 2)")
    parser.add_argument("--time-limit", type=positive_float, default=None, metavar="MINUTES",
                        help="stop cleanly after this many minutes of this call, writing "
                        "last.pt (resumable); a cosine schedule then ends at the limit")
    parser.add_argument("--seed", type=seed, default=0, help="random seed")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from OUT/last.pt if it exists (default: yes)")
    parser.set_defaults(handler=run_train)
    return parser


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _read_data(path: Path) -> Any:
    if path.suffix.lower() in _HDF5_SUFFIXES:
        from ase_amden.data import AmorphousDataset

        return AmorphousDataset(path)
    from ase_amden.structures import read_structures

    return read_structures(path)


def run_train(args: argparse.Namespace) -> int:
    """Handle ``ase-amden train``; print the checkpoint path and return exit status 0."""
    model = {key: value for key, value in (
        ("hidden", args.hidden), ("n_layers", args.layers), ("cutoff", args.cutoff),
        ("n_radial", args.radial), ("property_basis", args.property_basis),
        ("channel_distances", args.channel_distances or None),
        ("channel_angles", args.channel_angles or None),
        ("self_condition", args.self_condition or None),
        ("sigma_data", args.sigma_data), ("backbone", args.backbone),
        ("angular_power", args.angular), ("angular_channels", args.angular_channels),
        ("layer_angular", args.layer_angular or None))
             if value is not None}
    properties = _names(args.properties)
    config = TrainConfig(
        out_dir=args.out,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        lr_final=args.lr_final,
        time_sampling=args.time_sampling,
        log_sigma_mean=args.log_sigma_mean,
        log_sigma_std=args.log_sigma_std,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        keep_every=args.keep_every,
        device=args.device,
        property_names=properties,
        property_log10=_names(args.log10_properties),
        model=model,
        fixed_composition=args.fixed_composition,
        sigma_x_max=args.sigma_x_max,
        ghosts=args.ghosts,
        energy=args.energy,
        shortcut=args.shortcut,
        shortcut_fraction=args.shortcut_fraction,
        init_from=args.init_from,
        amp=args.amp,
        data_on_device=args.data_on_device,
        compile=args.compile,
        self_condition_passes=args.self_condition_passes,
        time_limit_min=args.time_limit,
        ranking=args.ranking,
        ranking_weight=args.ranking_weight,
        ranking_pairs=args.ranking_pairs,
    )
    data = _read_data(Path(args.dataset))
    path = train(data, config, args.name, resume=args.resume, verbose=not args.quiet)
    print(path)
    return 0
