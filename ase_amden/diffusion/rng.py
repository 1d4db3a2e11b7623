"""Turning the accepted kinds of random-number argument into the generators code needs."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["RandomLike", "seed_from", "torch_generator"]

#: What an ``rng``/``seed`` argument may be.
RandomLike = int | np.random.Generator | torch.Generator | None

_SEED_BOUND = 2**62


def seed_from(rng: RandomLike) -> int:
    """Return an integer seed from ``rng``.

    An int is returned as is; a generator gives one draw (and advances); None draws fresh
    entropy from the operating system.

    >>> seed_from(7)
    7
    """
    if rng is None:
        return int(np.random.SeedSequence().entropy % _SEED_BOUND)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(_SEED_BOUND))
    if isinstance(rng, torch.Generator):
        return int(torch.randint(_SEED_BOUND, (1,), generator=rng).item())
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if not 0 <= rng < 2**63:
            from ase_amden.errors import InvalidArgumentError

            raise InvalidArgumentError(f"a seed must lie in [0, 2**63), got {rng}")
        return int(rng)
    raise TypeError(
        f"rng must be an int, numpy.random.Generator, torch.Generator or None, got {type(rng)}"
    )


def torch_generator(rng: RandomLike, device: torch.device | str = "cpu") -> torch.Generator:
    """Return a torch generator on ``device`` seeded from ``rng``.

    A torch generator already on ``device`` is returned unchanged, so draws continue its stream.
    """
    device = torch.device(device)
    if isinstance(rng, torch.Generator) and rng.device.type == device.type:
        return rng
    generator = torch.Generator(device=device)
    generator.manual_seed(seed_from(rng))
    return generator
