"""Argument types of the command line: numbers checked as argparse reads them."""

from __future__ import annotations

import argparse
import ast
import math
import sys

#: Seeds must fit an unsigned 63-bit integer (numpy and torch seeds, HDF5 and info fields).
SEED_LIMIT = 2**63


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str):
        """Print ``prog: error: message`` and exit with status 2."""
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts, steps, sizes)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed(text: str) -> int:
    """A seed in ``[0, 2**63)``."""
    value = _integer(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"seeds lie in [0, 2**63), got {value}")
    return value


def finite_float(text: str) -> float:
    """Any finite number."""
    return _number(text)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value:g}")
    return value


def target_pair(pair: str) -> tuple[str, float]:
    """``NAME=VALUE`` of a target property: the name and a finite number."""
    name, sep, value = pair.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--target wants NAME=VALUE, e.g. shear_modulus=30, "
                                         f"got {pair!r}")
    try:
        return name.strip(), _number(value)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"--target {pair!r}: {error}") from None


def sampler_option(pair: str) -> tuple[str, str]:
    """``NAME=VALUE`` of a sampler option: the name and the value's text."""
    name, sep, text = pair.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--sampler-option wants NAME=VALUE, e.g. dt0=0.2, "
                                         f"got {pair!r}")
    return name.strip(), text


def sampler_options(pairs: list[tuple[str, str]]) -> dict[str, object]:
    """``{name: value}`` of parsed options: Python literals (numbers, booleans) or text."""
    options: dict[str, object] = {}
    for name, text in pairs:
        try:
            options[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[name] = text
    return options
