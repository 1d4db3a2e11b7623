"""``ase-amden dataset make|info``."""

from __future__ import annotations

import argparse
import json


def add_dataset_parser(subparsers) -> None:
    """Register ``dataset make`` and ``dataset info``."""
    from ..data import PROTOCOLS

    parser = subparsers.add_parser("dataset", help="make or inspect melt-quench datasets")
    sub = parser.add_subparsers(dest="dataset_command", required=True)

    make = sub.add_parser("make", help="run a melt-quench protocol in LAMMPS (resumable)")
    make.add_argument("protocol", help=f"one of: {', '.join(sorted(PROTOCOLS))}")
    make.add_argument("--count", type=int, required=True, help="samples wanted in the file")
    make.add_argument("--output", required=True, help="HDF5 file (extended if it exists)")
    make.add_argument("--workers", type=int, default=1, help="local Dask worker processes")
    make.add_argument("--scheduler", default=None, help="address of a Dask scheduler")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(handler=_make)

    info = sub.add_parser("info", help="counts and property ranges of a dataset")
    info.add_argument("path")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=_info)


def _make(args: argparse.Namespace) -> int:
    from ..data import make_dataset

    ds = make_dataset(
        args.protocol, args.count, args.output, workers=args.workers,
        scheduler=args.scheduler, verbose=not args.quiet,
    )
    if not args.quiet:
        print(f"{ds.path}: {len(ds)} samples")
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..data import AmorphousDataset

    summary = AmorphousDataset(args.path).summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['path']}  protocol={summary['protocol']}")
    lo, hi = summary["atoms_per_sample"]
    print(
        f"samples: {summary['samples']} (train {summary['train']}, held-out {summary['test']}), "
        f"atoms per sample: {lo}-{hi}"
    )
    print(f"{'property':<18}{'units':<10}{'min':>12}{'mean':>12}{'max':>12}")
    for name, c in summary["properties"].items():
        print(f"{name:<18}{c['units']:<10}{c['min']:>12.4g}{c['mean']:>12.4g}{c['max']:>12.4g}")
    return 0
