"""``ase-amden analyze FILE [--reference FILE] ...``: a table, JSON and a PNG report."""

from __future__ import annotations

import argparse
import json
import math
import os

from ase import Atoms

from ..errors import AmdenError
from .bonds import Cutoff, pair_cutoffs
from .compare import compare, format_table, summary
from .environments import ENTROPY_BATCH_SIZE
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
        "--split", choices=("train", "test", "all"), default=None,
        help="split of an .h5 reference dataset to compare against (default test: the "
        "held-out structures a model was not trained on)",
    )
    parser.add_argument(
        "--entropy-batch-size", type=int, default=ENTROPY_BATCH_SIZE,
        help="environments per block of the QUESTS entropy and overlap; memory is about "
        f"8 x this x all environments bytes (default {ENTROPY_BATCH_SIZE})",
    )
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
    parser.add_argument("--quiet", action="store_true",
                        help="do not print the table or show progress")
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


def load_structures(path: str, split: str = "all") -> list[Atoms]:
    """Structures of a file: an ase_amden HDF5 dataset or anything ase.io reads.

    Of a dataset, one ``split``: ``"train"``, ``"test"`` (held out) or ``"all"``.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if path.lower().endswith(_HDF5_SUFFIXES):
        from ..data import AmorphousDataset

        dataset = AmorphousDataset(path)
        images = list(dataset) if split == "all" else dataset.subset(split)
        if not images:
            raise AmdenError(f"the {split!r} split of {path} holds no structures; use "
                             "--split all (or another split)")
        return images
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


def run_analyze(args: argparse.Namespace) -> int:
    """Run ``ase-amden analyze`` with parsed arguments; returns the exit status."""
    images = load_structures(args.file)
    reference = None
    if args.reference is not None:
        is_dataset = args.reference.lower().endswith(_HDF5_SUFFIXES)
        if args.split is not None and not is_dataset:
            raise AmdenError(f"--split selects a split of an .h5 dataset; {args.reference} "
                             "is not one, drop --split")
        split = (args.split or "test") if is_dataset else "all"
        reference = load_structures(args.reference, split)
    options = {"entropy_batch_size": args.entropy_batch_size, "progress": not args.quiet}
    if reference is None:
        results = summary(images, args.calculator, args.cutoff, label="structures", **options)
    else:
        results = compare(images, reference, args.calculator, args.cutoff, **options)
    if not args.quiet:
        print(f"structures: {args.file} ({len(images)})")
        if reference is not None:
            print(f"reference: {args.reference} ({split} split, {len(reference)})")
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
            metrics=results,
        )
    return 0
