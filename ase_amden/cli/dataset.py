"""``ase-amden dataset make|import|merge|info|exploits|pairs``."""

from __future__ import annotations

import argparse
import json

from .arguments import nonnegative_float, positive_float, positive_int


def add_dataset_parser(subparsers) -> None:
    """Register ``dataset make``, ``import``, ``merge``, ``info``, ``exploits``, ``pairs``."""
    from ..data import PROTOCOLS

    parser = subparsers.add_parser("dataset", help="make or inspect melt-quench datasets")
    sub = parser.add_subparsers(dest="dataset_command", required=True)

    make = sub.add_parser("make", help="run a melt-quench protocol in LAMMPS (resumable)")
    make.add_argument("protocol", help=f"one of: {', '.join(sorted(PROTOCOLS))}")
    make.add_argument("--count", type=positive_int, required=True,
                      help="samples wanted in the file")
    make.add_argument("--output", required=True, help="HDF5 file (extended if it exists)")
    make.add_argument("--workers", type=positive_int, default=1, help="local Dask worker processes")
    make.add_argument("--scheduler", default=None, help="address of a Dask scheduler")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(handler=_make)

    imp = sub.add_parser(
        "import", help="import structures made elsewhere (LAMMPS data, extxyz, ASE db)",
        description="Read structure files into one HDF5 dataset, with per-sample properties "
        "from --property (all files) or from the file names (--name-pattern), and the "
        "data's source and licence recorded.")
    imp.add_argument("files", nargs="+", help="structure files")
    imp.add_argument("--output", required=True, help="HDF5 file to write")
    imp.add_argument("--type-map", default=None, metavar="1=O,2=Si",
                     help="LAMMPS atom type to element (default: inferred from the masses)")
    imp.add_argument("--property", action="append", default=[], metavar="NAME=VALUE",
                     help="a property value for every structure (repeatable)")
    imp.add_argument("--name-pattern", default=None, metavar="REGEX",
                     help="regular expression with named groups giving properties from each "
                     "file name; '_' in a number is a decimal point, e.g. "
                     r"'glass_(?P<cooling_rate>[0-9_]+)k_'")
    imp.add_argument("--units", action="append", default=[], metavar="NAME=UNIT",
                     help="units of a property, e.g. cooling_rate=K/ps (repeatable)")
    imp.add_argument("--held-out", default=None, metavar="REGEX",
                     help="files whose names match form the held-out split (default: by hash)")
    imp.add_argument("--source", default="", help="where the data come from")
    imp.add_argument("--licence", default="", help="licence name, e.g. MIT")
    imp.add_argument("--licence-file", default=None, help="file with the licence text")
    imp.add_argument("--lammps-style", default="atomic", help="atom_style of LAMMPS data files")
    imp.add_argument("--lammps-units", default="metal", help="units of LAMMPS data files")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(handler=_import)

    merge = sub.add_parser("merge", help="join datasets into one, each sample keeping its split")
    merge.add_argument("inputs", nargs="+", help="HDF5 datasets")
    merge.add_argument("--output", required=True, help="HDF5 file to write")
    merge.add_argument("--properties", default=None, metavar="NAMES",
                       help="comma-separated property columns to keep (default: those all "
                       "inputs have)")
    merge.set_defaults(handler=_merge)

    info = sub.add_parser("info", help="counts and property ranges of a dataset")
    info.add_argument("path")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=_info)

    exploits = sub.add_parser(
        "exploits", help="ranked pairs for an energy model: descents of its noise energy "
        "that a true potential refuses (training data for 'train --ranking')",
        description="Descend the noise energy of an energy model (FIRE at time --t) from "
        "each start glass, relax start and end with --potential, and keep each descent that "
        "lowered the noise energy while the relaxed true energy rose by more than --min-rise, "
        "as a pair (start, exploit). Pairs are appended to --output if it exists.")
    exploits.add_argument("model", help="energy-model checkpoint (.pt) or shipped model name")
    exploits.add_argument("starts", help="HDF5 dataset of glasses to start from")
    _ranking_output_arguments(exploits, "the starts")
    exploits.add_argument("--first", type=int, default=0, help="first start in the split")
    exploits.add_argument("--count", type=positive_int, default=None,
                          help="number of starts (default: the rest of the split)")
    exploits.add_argument("--t", type=positive_float, default=0.05,
                          help="diffusion time of the noise energy (default 0.05)")
    exploits.add_argument("--steps", type=positive_int, default=300,
                          help="FIRE steps on the noise energy (default 300)")
    exploits.add_argument("--min-rise", type=nonnegative_float, default=1e-3,
                          help="least rise of the relaxed true energy, eV/atom (default 0.001)")
    exploits.set_defaults(handler=_exploits)

    pairs = sub.add_parser(
        "pairs", help="ranked pairs from data of known order (anchors for 'train --ranking')",
        description="Pair the k-th structure of one dataset with the k-th of another, relax "
        "both with --potential and store them as a ranked pair (ordered by relaxed energy), "
        "e.g. annealed against quenched glasses. Pairs are appended to --output if it exists.")
    pairs.add_argument("first_data", help="HDF5 dataset")
    pairs.add_argument("second_data", help="HDF5 dataset (same atom counts)")
    _ranking_output_arguments(pairs, "both datasets")
    pairs.add_argument("--count", type=positive_int, default=None,
                       help="number of pairs (default: as many as both splits have)")
    pairs.set_defaults(handler=_pairs_of_data)


def _ranking_output_arguments(parser: argparse.ArgumentParser, split_of: str) -> None:
    """``--potential``, ``--output``, ``--split`` and ``--quiet`` of the ranked-pair commands."""
    parser.add_argument("--potential", required=True,
                        help="true potential (ase_amden.potentials name), e.g. sw-si")
    parser.add_argument("--output", required=True, help="HDF5 file of ranked pairs")
    parser.add_argument("--split", choices=("train", "test"), default="train",
                        help=f"split of {split_of} (default train)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _make(args: argparse.Namespace) -> int:
    from ..data import make_dataset

    ds = make_dataset(
        args.protocol, args.count, args.output, workers=args.workers,
        scheduler=args.scheduler, verbose=not args.quiet,
    )
    if not args.quiet:
        print(f"{ds.path}: {len(ds)} samples")
    return 0


def _pairs(items: list[str], what: str) -> dict[str, str]:
    from ..errors import AmdenError

    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise AmdenError(f"bad {what} {item!r}: write NAME=VALUE")
        pairs[name.strip()] = value.strip()
    return pairs


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data import import_structures, parse_type_map
    from ..errors import AmdenError

    properties = {}
    for name, value in _pairs(args.property, "--property").items():
        try:
            properties[name] = float(value)
        except ValueError:
            raise AmdenError(f"--property {name}={value}: the value is not a number") from None
    ds = import_structures(
        args.files, args.output,
        type_map=parse_type_map(args.type_map) if args.type_map else None,
        properties=properties, name_pattern=args.name_pattern, held_out_pattern=args.held_out,
        units=_pairs(args.units, "--units"), source=args.source, licence=args.licence,
        licence_text=Path(args.licence_file).read_text() if args.licence_file else "",
        lammps_style=args.lammps_style, lammps_units=args.lammps_units,
        verbose=not args.quiet,
    )
    if not args.quiet:
        print(f"{ds.path}: {len(ds)} samples")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from ..data import AmorphousDataset

    names = args.properties.split(",") if args.properties else None
    ds = AmorphousDataset.merge(args.output, args.inputs, properties=names)
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


def _exploits(args: argparse.Namespace) -> int:
    import os

    from ..calculators import NoiseEnergyCalculator
    from ..data import AmorphousDataset
    from ..errors import AmdenError
    from ..training.ranking import find_exploits

    if args.first < 0:
        raise AmdenError(f"--first must be >= 0, got {args.first}")
    if os.path.exists(args.model):
        calc = NoiseEnergyCalculator(args.model, t=args.t)
    else:
        calc = NoiseEnergyCalculator.pretrained(args.model, t=args.t)
    split = AmorphousDataset(args.starts).subset(args.split)
    end = None if args.count is None else args.first + args.count
    starts = split[args.first:end]
    earlier, first_pair = _earlier_pairs(args.output)
    pairs = find_exploits(calc, starts, args.potential, steps=args.steps,
                          min_rise=args.min_rise, first_pair=first_pair,
                          progress=not args.quiet)
    _write_pairs(args, earlier, pairs, {"kind": "ranking pairs", "model": args.model,
                                        "t": args.t, "potential": args.potential,
                                        "steps": args.steps})
    if not args.quiet:
        print(f"{len(pairs) // 2} exploit(s) from {len(starts)} start(s)")
    return 0


def _pairs_of_data(args: argparse.Namespace) -> int:
    from ..data import AmorphousDataset
    from ..training.ranking import relaxed_pairs

    firsts, seconds = (AmorphousDataset(path).subset(args.split)[:args.count]
                       for path in (args.first_data, args.second_data))
    n = min(len(firsts), len(seconds))
    earlier, first_pair = _earlier_pairs(args.output)
    pairs = relaxed_pairs(firsts[:n], seconds[:n], args.potential, first_pair=first_pair,
                          progress=not args.quiet)
    _write_pairs(args, earlier, pairs, {"kind": "ranking pairs", "potential": args.potential,
                                        "data": [args.first_data, args.second_data]})
    return 0


def _earlier_pairs(path: str) -> tuple[list, int]:
    """Pairs already in ``path`` (if it exists) and the number of the next pair."""
    import os

    from ..data import AmorphousDataset
    from ..training.ranking import RANK_PAIR

    earlier = list(AmorphousDataset(path)) if os.path.exists(path) else []
    return earlier, 1 + max((int(a.info[RANK_PAIR]) for a in earlier), default=-1)


def _write_pairs(args: argparse.Namespace, earlier: list, pairs: list, protocol: dict) -> None:
    """Write earlier and new pairs to ``args.output`` (atomically), all in the train split."""
    from ..data import AmorphousDataset
    from ..training.ranking import TRUE_ENERGY

    everything = earlier + pairs
    for atoms in everything:
        atoms.info.pop("sample_index", None)
    AmorphousDataset.write(args.output, everything, units={TRUE_ENERGY: "eV/atom"},
                           protocol=protocol, held_out_mask=[False] * len(everything))
    if not args.quiet:
        print(f"{args.output}: {len(pairs) // 2} new pair(s), {len(everything) // 2} in all")
