"""``ase-amden refine``: short NVT then NPT MD of structures in a file (DM2's last step)."""

from __future__ import annotations

import argparse

from .arguments import finite_float, nonnegative_float, positive_float, seed

#: The MD settings of a refinement (defaults: ``refinement.REFINE_DEFAULTS``): name, type, help.
_SETTINGS = (
    ("nvt_ps", nonnegative_float, "NVT length, ps"),
    ("npt_ps", nonnegative_float, "NPT length, ps"),
    ("temperature", positive_float, "temperature, K"),
    ("pressure", finite_float, "NPT pressure, GPa"),
    ("timestep_fs", positive_float, "MD timestep, fs"),
)


def add_refinement_settings(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Add ``--{prefix}nvt-ps`` ... ``--{prefix}timestep-fs`` (:func:`refinement.refine`)."""
    from ..refinement import REFINE_DEFAULTS

    for name, kind, text in _SETTINGS:
        default = REFINE_DEFAULTS[name]
        parser.add_argument(f"--{prefix}{name.replace('_', '-')}", type=kind, default=default,
                            help=f"{text} (default {default:g})")


def refinement_settings(args: argparse.Namespace, prefix: str = "") -> dict[str, float]:
    """The keywords of :func:`ase_amden.refinement.refine` read back from ``args``."""
    return {name: getattr(args, prefix.replace("-", "_") + name) for name, *_ in _SETTINGS}


def add_refine_parser(subparsers) -> None:
    """Register ``refine``."""
    parser = subparsers.add_parser(
        "refine", help="refine structures by short MD (NVT then NPT) with a named potential")
    parser.add_argument("input", help="structures, any ase.io format (all frames are read)")
    parser.add_argument("--output", required=True,
                        help="file; the format follows the extension (or --format); replaced "
                        "atomically")
    parser.add_argument("--format", default=None, help="ase.io format of --output")
    parser.add_argument("--potential", required=True,
                        help="registered LAMMPS potential, e.g. jakse-sio2, bmp or sw-si")
    add_refinement_settings(parser)
    parser.add_argument("--seed", type=seed, default=0, help="seed of structure k is seed + k")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_refine)


def _refine(args: argparse.Namespace) -> int:
    from ..refinement import refine_all
    from ..structures import read_structures
    from .output import check_output, write_structures

    images = read_structures(args.input)
    elements = sorted({s for atoms in images for s in atoms.get_chemical_symbols()})
    fmt = check_output(args.output, len(images), elements, args.format)
    refined = refine_all(images, args.potential, seed=args.seed, verbose=not args.quiet,
                         **refinement_settings(args))
    write_structures(args.output, refined, fmt)
    if not args.quiet:
        densities = ", ".join(f"{atoms.info['refine_density']:.3f}" for atoms in refined)
        print(f"wrote {len(refined)} refined structures to {args.output} (g/cm3: {densities})")
    return 0
