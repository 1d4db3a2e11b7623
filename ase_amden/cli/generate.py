"""``ase-amden generate``: structures from a trained model, written with their provenance."""

from __future__ import annotations

import argparse
import ast
import os


def _targets(pairs: list[str]) -> dict[str, float]:
    targets = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--target wants NAME=VALUE, got {pair!r}")
        targets[name] = float(value)
    return targets


def _sampler_options(pairs: list[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--sampler-option wants NAME=VALUE, got {pair!r}")
        try:
            options[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[name] = text
    return options


def add_generate_parser(subparsers) -> None:
    """Register ``generate``."""
    parser = subparsers.add_parser("generate", help="generate structures with a trained model")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", help="name of a shipped model (see ase_amden/pretrained; "
                       "default a-Si)")
    model.add_argument("--checkpoint", help="path of a checkpoint written by 'ase-amden train'")
    parser.add_argument("--count", type=int, default=1, help="number of structures")
    parser.add_argument("--output", required=True, help="file; the format follows the extension")
    parser.add_argument("--cell", type=float, nargs="+", help="edge (Å), 3 edges, or 9 numbers")
    parser.add_argument("--n-atoms", type=int, help="number of atoms (cubic cell from density)")
    parser.add_argument("--density", type=float, help="number density, atoms/Å^3")
    parser.add_argument("--composition", help="fixed composition, e.g. Si64O128")
    parser.add_argument("--target", action="append", default=[], metavar="NAME=VALUE",
                        help="target property (repeatable), e.g. shear_modulus=30")
    parser.add_argument("--sampler", default=None,
                        help="sde, ode, langevin, hmc, flow or shortcut (default: the one the "
                             "model card names, else sde)")
    parser.add_argument("--steps", type=int, default=None,
                        help="sampler steps (default: the model card's for its sampler, else "
                             "the sampler's own: 200 for sde, ode and flow, 2000 for hmc, 4 "
                             "for shortcut, 3000 for langevin)")
    parser.add_argument("--sampler-option", action="append", default=[], metavar="NAME=VALUE",
                        help="sampler option (repeatable), e.g. dt0=0.2 for hmc")
    parser.add_argument("--guidance", type=float, default=0.0, help="classifier-free weight w")
    parser.add_argument("--batch-size", type=int, help="structures per network batch")
    parser.add_argument("--seed", type=int, help="random seed (same seed, same structures)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    import numpy as np

    from ..generator import DEFAULT_MODEL, AmorphousGenerator
    from ..provenance import write_structures

    if args.checkpoint:
        gen = AmorphousGenerator.from_checkpoint(args.checkpoint, device=args.device)
    else:
        gen = AmorphousGenerator.pretrained(args.model or DEFAULT_MODEL, device=args.device)
    cell = None
    if args.cell:
        values = np.asarray(args.cell, dtype=float)
        cell = values.reshape(3, 3) if values.size == 9 else values.squeeze()
    images = gen.generate(
        args.count, cell=cell, n_atoms=args.n_atoms, density=args.density,
        composition=args.composition, targets=_targets(args.target) or None,
        sampler=args.sampler, steps=args.steps,
        sampler_options=_sampler_options(args.sampler_option) or None, guidance=args.guidance,
        batch_size=args.batch_size, seed=args.seed, progress=not args.quiet,
    )
    folder = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(folder, exist_ok=True)
    write_structures(args.output, images)
    if not args.quiet:
        sizes = ", ".join(atoms.get_chemical_formula() for atoms in images)
        print(f"wrote {len(images)} structures to {args.output}: {sizes}")
    return 0
