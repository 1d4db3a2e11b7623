"""The ``ase-amden`` command line."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..analysis.cli import add_analyze_parser
from ..errors import AmdenError
from ..training.cli import add_train_parser
from .dataset import add_dataset_parser
from .generate import add_generate_parser
from .refine import add_refine_parser
from .models import add_models_parser


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one subcommand per job)."""
    parser = argparse.ArgumentParser(
        prog="ase-amden", description="Diffusion models for amorphous materials, in ASE."
    )
    parser.add_argument("--version", action="version", version=f"ase_amden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_dataset_parser(sub)
    add_train_parser(sub)
    add_generate_parser(sub)
    add_refine_parser(sub)
    add_models_parser(sub)
    add_analyze_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ase-amden`` script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (AmdenError, FileNotFoundError) as err:
        print(f"ase-amden: error: {err}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
