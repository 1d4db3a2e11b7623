"""``ase-amden generate``: structures from a trained model, written with their provenance."""

from __future__ import annotations

import argparse

from ..errors import AmdenError
from .arguments import (
    nonnegative_float,
    positive_float,
    positive_int,
    sampler_option,
    sampler_options,
    seed,
    target_pair,
)
from .refine import add_refinement_settings, refinement_settings


def _index_ranges(text: str) -> list[int]:
    indices: list[int] = []
    for part in text.split(","):
        first, sep, last = part.strip().partition("-")
        try:
            lo = int(first)
            hi = int(last) if sep else lo
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--fixed wants ranges like 0-63,100, got {text!r}") from None
        if lo < 0 or hi < lo:
            raise argparse.ArgumentTypeError(f"--fixed range {part.strip()!r} is empty or "
                                             "negative")
        indices.extend(range(lo, hi + 1))
    return indices


def _observable(pair: str) -> tuple[str, str]:
    kind, sep, path = pair.partition("=")
    if not sep or kind not in ("structure_factor", "rdf"):
        raise argparse.ArgumentTypeError(f"--observable wants structure_factor=FILE or rdf=FILE, "
                                         f"got {pair!r}")
    return kind, path


def _observables(args: argparse.Namespace) -> dict[str, tuple] | None:
    if args.observable is None:
        return None
    import numpy as np

    kind, path = args.observable
    try:
        table = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as error:
        raise AmdenError(f"cannot read the measured curve {path!r} ({error}); give two "
                         "whitespace-separated columns of numbers") from None
    if table.shape[1] < 2 or not np.isfinite(table[:, :2]).all():
        raise AmdenError(f"{path!r} must hold two columns of finite numbers (x, y)")
    options = {key: value for key, value in (("weighting", args.observable_weighting),
                                             ("strength", args.observable_strength))
               if value is not None}
    return {kind: (table[:, 0], table[:, 1], options)}


def _template(args: argparse.Namespace):
    if args.template is None:
        if args.fixed is not None:
            raise AmdenError("--fixed needs --template")
        return None, None
    from ..structures import read_structures

    template = read_structures(args.template)[-1]
    if args.fixed is None:
        return template, None
    import numpy as np

    mask = np.zeros(len(template), dtype=bool)
    if max(args.fixed) >= len(template):
        raise AmdenError(f"--fixed names atom {max(args.fixed)} but the template has "
                         f"{len(template)} atoms (0-based indices)")
    mask[args.fixed] = True
    return template, mask


def add_generate_parser(subparsers) -> None:
    """Register ``generate``."""
    parser = subparsers.add_parser("generate", help="generate structures with a trained model")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", help="name of a shipped model (see ase_amden/pretrained; "
                       "default a-Si)")
    model.add_argument("--checkpoint", help="path of a checkpoint written by 'ase-amden train'")
    parser.add_argument("--count", type=positive_int, default=1, help="number of structures")
    parser.add_argument("--output", required=True,
                        help="file; the format follows the extension (or --format); checked "
                        "before generating and replaced atomically")
    parser.add_argument("--format", default=None,
                        help="ase.io format, e.g. lammps-data for data.lmp (default: from the "
                        "file name)")
    parser.add_argument("--cell", type=positive_float, nargs="+",
                        help="edge (Å), 3 edges, or 9 numbers")
    parser.add_argument("--n-atoms", type=positive_int,
                        help="number of atoms (cubic cell from density)")
    parser.add_argument("--density", type=positive_float,
                        help="number density, atoms/Å^3 (not g/cm^3)")
    parser.add_argument("--composition", help="fixed composition, e.g. Si64O128")
    parser.add_argument("--target", action="append", default=[], metavar="NAME=VALUE",
                        type=target_pair,
                        help="target property (repeatable), e.g. shear_modulus=30")
    parser.add_argument("--sampler", default=None,
                        help="sde, ode, langevin, restart, hmc, flow or shortcut (default: the "
                             "one the model card names, else sde)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="sampler steps (default: the model card's for its sampler, else "
                             "the sampler's own: 200 for sde, ode and flow, 2000 for hmc, 4 "
                             "for shortcut, 3000 for langevin)")
    parser.add_argument("--sampler-option", action="append", default=[], metavar="NAME=VALUE",
                        type=sampler_option,
                        help="sampler option (repeatable), e.g. dt0=0.2 for hmc")
    parser.add_argument("--guidance", type=nonnegative_float, default=0.0,
                        help="classifier-free weight w")
    parser.add_argument("--batch-size", type=positive_int, help="structures per network batch")
    parser.add_argument("--seed", type=seed, help="random seed (same seed, same structures)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--strict", action="store_true",
                        help="fail (write nothing) if a structure fails its checks (atoms too "
                        "close, none left, wrong composition); default: warn and write")
    parser.add_argument("--template", default=None, metavar="FILE",
                        help="inpainting: a structure file whose atoms under FixAtoms (or "
                        "--fixed) are kept exactly; new atoms are generated around them in "
                        "its cell")
    parser.add_argument("--fixed", type=_index_ranges, default=None, metavar="RANGES",
                        help="template atoms to keep, e.g. 0-63,100 (0-based; default: its "
                        "FixAtoms)")
    parser.add_argument("--min-distance", type=positive_float, default=None,
                        help="closest approach of a generated atom to a kept one, Å (default: "
                        "the closest pair of the training data)")
    parser.add_argument("--observable", default=None, metavar="KIND=FILE",
                        type=_observable,
                        help="steer towards a measured curve: structure_factor=sq.dat (q in "
                        "1/Å, S(q)) or rdf=gr.dat (r in Å, g(r)); two whitespace-separated "
                        "columns")
    parser.add_argument("--observable-weighting", choices=("xray", "neutron", "number"),
                        default=None, help="scattering weights of the measured curve")
    parser.add_argument("--observable-strength", type=positive_float, default=None,
                        help="step size of the observable guidance (default 0.05)")
    parser.add_argument("--refine", default=None, metavar="POTENTIAL",
                        help="refine each structure by short MD after denoising with this "
                        "registered LAMMPS potential (e.g. jakse-sio2; DM2: 25 ps NVT then 25 "
                        "ps NPT at 300 K), settings below")
    add_refinement_settings(parser, prefix="refine-")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_generate)


def _cell(values: list[float] | None):
    import numpy as np

    if not values:
        return None
    if len(values) not in (1, 3, 9):
        raise AmdenError(f"--cell takes 1 edge, 3 edges or 9 numbers (a 3x3 matrix), "
                         f"got {len(values)} numbers")
    array = np.asarray(values, dtype=float)
    return array.reshape(3, 3) if array.size == 9 else array.squeeze()


def _generate(args: argparse.Namespace) -> int:
    from ..generator import DEFAULT_MODEL, AmorphousGenerator
    from .output import check_output, write_structures

    cell = _cell(args.cell)
    if args.checkpoint:
        gen = AmorphousGenerator.from_checkpoint(args.checkpoint, device=args.device)
    else:
        gen = AmorphousGenerator.pretrained(args.model or DEFAULT_MODEL, device=args.device)
    fmt = check_output(args.output, args.count, gen.card.elements, args.format)
    template, fixed_mask = _template(args)
    images = gen.generate(
        args.count, cell=cell, n_atoms=args.n_atoms, density=args.density,
        composition=args.composition, targets=dict(args.target) or None,
        sampler=args.sampler, steps=args.steps,
        sampler_options=sampler_options(args.sampler_option) or None, guidance=args.guidance,
        batch_size=args.batch_size, seed=args.seed, progress=not args.quiet,
        check="strict" if args.strict else "warn", template=template, fixed_mask=fixed_mask,
        min_distance=args.min_distance, observables=_observables(args), refine=args.refine,
        refine_options=refinement_settings(args, prefix="refine-") if args.refine else None,
    )
    write_structures(args.output, images, fmt)
    if not args.quiet:
        sizes = ", ".join(atoms.get_chemical_formula() for atoms in images)
        print(f"wrote {len(images)} structures to {args.output}: {sizes}")
    return 0
