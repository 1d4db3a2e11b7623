"""``ase-amden analyze FILE [--reference FILE] ...``: a table, JSON and a PNG report."""

from __future__ import annotations

import argparse
import json
import math
import os

from ase import Atoms

from ..errors import AmdenError
from .bonds import Cutoff, pair_cutoffs
from .compare import compare, summary
from .plot import plot_report

_HDF5_SUFFIXES = (".h5", ".hdf5")


def add_analyze_parser(subparsers) -> None:
    """Register the ``analyze`` subcommand on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "analyze",
        help="structural analysis of structures, optionally against a reference set",
        description=(
            "Coordination, rings, QUESTS entropy (and relaxed energies with --calculator) of "
            "the structures in FILE; with --reference also RDF/ADF RMSD and overlap."
        ),
    )
    parser.add_argument("file", help="structures: any ase.io format, or an .h5 dataset")
    parser.add_argument("--reference", default=None, help="reference structures, same formats")
    parser.add_argument(
        "--calculator", default=None, help="potential for relaxed energies, e.g. sw-si"
    )
    parser.add_argument(
        "--cutoff",
        type=parse_cutoff,
        default=None,
        help="bond cutoff in Å, or per pair like Si-O=2.0,Si-Si=2.6 "
        "(default 1.3 x sum of covalent radii)",
    )
    parser.add_argument("--plot", default=None, help="write a PNG report here")
    parser.add_argument("--json", default=None, help="write the results as JSON here")
    parser.add_argument("--quiet", action="store_true", help="do not print the table")
    parser.set_defaults(handler=run_analyze)


def parse_cutoff(text: str) -> Cutoff:
    """``"2.0"`` -> 2.0; ``"Si-O=2.0,Si-Si=2.6"`` -> ``{"Si-O": 2.0, "Si-Si": 2.6}``."""
    try:
        if "=" not in text:
            cutoff = float(text)
        else:
            pairs = (item.split("=") for item in text.split(",") if item.strip())
            cutoff = {key.strip(): float(value) for key, value in pairs}
        pair_cutoffs(cutoff)
        return cutoff
    except AmdenError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid cutoff {text!r}; give a distance like 2.0 or pairs like Si-O=2.0,Si-Si=2.6"
        ) from None


def load_structures(path: str) -> list[Atoms]:
    """All structures of a file: an ase_amden HDF5 dataset or anything ase.io reads."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if path.lower().endswith(_HDF5_SUFFIXES):
        from ..data import AmorphousDataset

        return list(AmorphousDataset(path))
    from ..structures import read_structures

    return read_structures(path)


def _finite(value):
    """JSON-safe copy: NaN and infinities become None (null)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_table(results: dict) -> str:
    """Format as a plain-text table :func:`summary` or :func:`compare` results."""
    columns = {k: v for k, v in results.items() if isinstance(v, dict)} or {"value": results}
    names = [k for k, v in next(iter(columns.values())).items() if not isinstance(v, list)]
    lines = ["quantity".ljust(16) + "".join(c.rjust(14) for c in columns)]
    for name in names:
        cells = "".join(f"{columns[c].get(name, float('nan')):14.5g}" for c in columns)
        lines.append(name.ljust(16) + cells)
    for name, value in results.items():
        if not isinstance(value, dict):
            lines.append(name.ljust(16) + f"{value:14.5g}")
    return "\n".join(lines)


def run_analyze(args: argparse.Namespace) -> int:
    """Run ``ase-amden analyze`` with parsed arguments; returns the exit status."""
    images = load_structures(args.file)
    reference = None if args.reference is None else load_structures(args.reference)
    if reference is None:
        results = summary(images, args.calculator, args.cutoff)
    else:
        results = compare(images, reference, args.calculator, args.cutoff)
    if not args.quiet:
        print(format_table(results))
    if args.json is not None:
        with open(args.json, "w") as f:
            json.dump(_finite(results), f, indent=2)
    if args.plot is not None:
        generated = results.get("generated", results)
        plot_report(
            images,
            reference,
            args.plot,
            energies=generated.get("energies"),
            reference_energies=results.get("reference", {}).get("energies"),
            cutoff=args.cutoff,
        )
    return 0
