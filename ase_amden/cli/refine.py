"""``ase-amden refine``: short NVT then NPT MD of structures in a file (DM2's last step)."""

from __future__ import annotations

import argparse
import os


def add_refine_parser(subparsers) -> None:
    """Register ``refine``."""
    parser = subparsers.add_parser(
        "refine", help="refine structures by short MD (NVT then NPT) with a named potential")
    parser.add_argument("input", help="structures, any ase.io format (all frames are read)")
    parser.add_argument("--output", required=True, help="file; the format follows the extension")
    parser.add_argument("--potential", required=True,
                        help="registered LAMMPS potential, e.g. jakse-sio2 or bmp")
    parser.add_argument("--nvt-ps", type=float, default=25.0, help="NVT length, ps")
    parser.add_argument("--npt-ps", type=float, default=25.0, help="NPT length, ps")
    parser.add_argument("--temperature", type=float, default=300.0, help="temperature, K")
    parser.add_argument("--pressure", type=float, default=0.0, help="NPT pressure, GPa")
    parser.add_argument("--timestep-fs", type=float, default=1.0, help="MD timestep, fs")
    parser.add_argument("--seed", type=int, default=0, help="seed of structure k is seed + k")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_refine)


def _refine(args: argparse.Namespace) -> int:
    from ase.io import read, write

    from ..refinement import refine_all

    images = read(args.input, index=":")
    refined = refine_all(images, args.potential, nvt_ps=args.nvt_ps, npt_ps=args.npt_ps,
                         temperature=args.temperature, pressure=args.pressure,
                         timestep_fs=args.timestep_fs, seed=args.seed, verbose=not args.quiet)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write(args.output, refined)
    if not args.quiet:
        densities = ", ".join(f"{atoms.info['refine_density']:.3f}" for atoms in refined)
        print(f"wrote {len(refined)} refined structures to {args.output} (g/cm3: {densities})")
    return 0
