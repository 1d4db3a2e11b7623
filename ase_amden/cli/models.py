"""``ase-amden models``: the shipped models, what they can do and how good they measured."""

from __future__ import annotations

import argparse
import json


def add_models_parser(subparsers) -> None:
    """Register ``models``."""
    parser = subparsers.add_parser(
        "models", help="list the shipped models: elements, properties, sampler, quality")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=_models)


def _models(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..catalog import format_details
    from ..generator import DEFAULT_MODEL, AmorphousGenerator

    details = AmorphousGenerator.available_pretrained(details=True)
    if args.json:
        print(json.dumps([asdict(d) for d in details], indent=1))
        return 0
    for entry in details:
        default = " (default)" if entry.name == DEFAULT_MODEL else ""
        text = format_details(entry)
        first, _, rest = text.partition("\n")
        name, _, what = first.partition(":")
        print(f"{name}{default}:{what}\n{rest}")
    return 0
