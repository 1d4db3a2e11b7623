"""One random stream per structure, so a structure does not depend on its batch.

:class:`AmorphousGenerator` seeds structure ``i`` of a call with seed ``s`` from
``(s, i)`` alone (:func:`structure_seed`). Every random draw of a sampler goes through
:func:`randn` / :func:`rand`, which, given :class:`SystemStreams`, draws each structure's
rows from its own generator. Structure 2 of ``generate(3, seed=7)`` then sees the same noise
whether it was sampled alone, with a batch size of 1 or together with the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

__all__ = ["RandomStream", "SystemStreams", "rand", "randn", "structure_seed"]


def structure_seed(seed: int, index: int) -> int:
    """Seed (``0 <= seed < 2**63``) of structure ``index`` of a call made with ``seed``.

    >>> structure_seed(7, 0) == structure_seed(7, 0) != structure_seed(7, 1)
    True
    """
    entropy = [abs(int(seed)), int(seed < 0), int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


class SystemStreams:
    """Independent torch generators, one per structure of a batch (in batch order).

    Parameters
    ----------
    seeds
        One seed per structure.
    device
        Device of the generators (that of the tensors drawn).

    """

    def __init__(self, seeds: Iterable[int], device: torch.device | str = "cpu") -> None:
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.generators = [
            torch.Generator(device=self.device).manual_seed(s) for s in self.seeds
        ]

    @classmethod
    def for_structures(cls, seed: int, indices: Iterable[int],
                       device: torch.device | str = "cpu") -> SystemStreams:
        """Streams of structures ``indices`` of a call made with ``seed``."""
        return cls((structure_seed(seed, i) for i in indices), device)

    def __len__(self) -> int:
        return len(self.generators)

    def draw_seeds(self) -> list[int]:
        """One fresh seed from each stream (advances them): for a child set of streams."""
        return [int(torch.randint(2**62, (1,), generator=g, device=self.device))
                for g in self.generators]


#: What samplers accept as a source of randomness.
RandomStream = torch.Generator | SystemStreams | None


def _draw(fn: Callable, shape: Sequence[int], generator: RandomStream, dtype: torch.dtype,
          device: torch.device | str, rows: torch.Tensor | None) -> torch.Tensor:
    shape = tuple(int(n) for n in shape)
    if not isinstance(generator, SystemStreams):
        return fn(shape, generator=generator, dtype=dtype, device=device)
    n_streams = len(generator)
    if rows is None:
        rows = torch.arange(shape[0]) % n_streams
    rows = rows.cpu()
    counts = torch.bincount(rows, minlength=n_streams).tolist()
    parts = [fn((count, *shape[1:]), generator=g, dtype=dtype, device=device)
             for g, count in zip(generator.generators, counts, strict=True)]
    order = torch.sort(rows, stable=True).indices.to(device)
    out = torch.empty(shape, dtype=dtype, device=device)
    out[order] = torch.cat(parts)
    return out


def randn(shape: Sequence[int], generator: RandomStream, *, dtype: torch.dtype,
          device: torch.device | str, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Standard normal draws of ``shape``.

    With :class:`SystemStreams`, row ``r`` (first axis) belongs to structure ``rows[r]``
    (e.g. ``system_idx`` for per-atom tensors); ``rows=None`` means row ``r`` belongs to
    structure ``r % len(streams)`` (per-structure tensors, also when doubled for guidance).
    Each structure's rows come from its own stream, in order.
    """
    return _draw(torch.randn, shape, generator, dtype, device, rows)


def rand(shape: Sequence[int], generator: RandomStream, *, dtype: torch.dtype,
         device: torch.device | str, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Uniform ``[0, 1)`` draws of ``shape``; ``rows`` as in :func:`randn`."""
    return _draw(torch.rand, shape, generator, dtype, device, rows)
