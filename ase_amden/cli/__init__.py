"""The ``ase-amden`` command line."""

from __future__ import annotations

import argparse
import sys
import warnings

from .. import __version__
from ..errors import AmdenError
from .arguments import Parser


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one subcommand per job)."""
    from ..analysis.cli import add_analyze_parser
    from ..training.cli import add_train_parser
    from .dataset import add_dataset_parser
    from .generate import add_generate_parser
    from .models import add_models_parser
    from .refine import add_refine_parser

    parser = Parser(
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


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"ase-amden: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ase-amden`` script.

    Usage mistakes and domain errors (:class:`~ase_amden.errors.AmdenError`, missing or
    unreadable files) print one line, ``ase-amden: error: ...``, and return 2; an
    interrupt returns 130. Warnings print as ``ase-amden: warning: ...``.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _warning_line
        try:
            return int(args.handler(args) or 0)
        except (AmdenError, OSError) as err:
            print(f"ase-amden: error: {_one_line(err)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("ase-amden: interrupted; files being written were left as they were",
                  file=sys.stderr)
            return 130


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.strerror}: {error.filename}"
    return " ".join(str(error).split())


__all__ = ["build_parser", "main"]
