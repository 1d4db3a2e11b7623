"""Information entropy and overlap of atomic environments (QUESTS).

Schwalbe-Koda et al., Nat. Commun. 16, 4014 (2025); used for generated glasses by Yang and
Schwalbe-Koda (their eqs. 7-9): descriptors of the k nearest neighbours within a cutoff,
no element types, Gaussian kernel of bandwidth h.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from ..structures import Images, as_images

#: Threshold on the differential entropy below which an environment counts as covered;
#: the paper's criterion is dH <= 0, QUESTS' ``overlap`` command uses 1e-5 for round-off.
OVERLAP_EPS = 1e-5


@contextlib.contextmanager
def _torch_threads_kept() -> Iterator[None]:
    """Restore torch's CPU thread count, which numba's OpenMP start-up inside quests resets."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def environment_descriptors(images: Images, k: int = 32, cutoff: float = 5.0) -> np.ndarray:
    """QUESTS descriptors of every atomic environment of every image.

    Parameters
    ----------
    images
        One periodic structure or a list of them.
    k
        Number of nearest neighbours in each descriptor.
    cutoff
        Cutoff of the smooth weight function, Å.

    Returns
    -------
    numpy.ndarray, shape (n_atoms_total, 2k - 1)
        One row per atom, float64.

    """
    from quests.descriptor import get_descriptors

    items = as_images(images)
    if k < 2 or cutoff <= 0:
        raise ValueError(f"need k >= 2 and cutoff > 0, got k={k}, cutoff={cutoff}")
    with _torch_threads_kept(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unsafe cast.*")  # numba note in quests
        return get_descriptors(items, k=k, cutoff=cutoff)


#: Environments per block of QUESTS' kernel sums (memory ~ 8 x this x all environments, bytes).
ENTROPY_BATCH_SIZE = 1000


def _batch(batch_size: int) -> int:
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    return int(batch_size)


def environment_entropy(
    images: Images, k: int = 32, cutoff: float = 5.0, h: float = 0.015,
    batch_size: int = ENTROPY_BATCH_SIZE,
) -> float:
    """Information entropy of the distribution of atomic environments, nats.

    H = -(1/n) sum_i log[(1/n) sum_j exp(-|X_i - X_j|^2 / 2h^2)] over all n environments
    of all images pooled; 0 for a perfect crystal with one environment, at most log(n).

    Parameters
    ----------
    images
        One periodic structure or a list of them.
    k, cutoff
        Descriptor settings, see :func:`environment_descriptors`.
    h
        Kernel bandwidth, 1/Å.
    batch_size
        Environments per block of the kernel sum: memory ~ ``8 batch_size n`` bytes for
        ``n`` environments (QUESTS' own default, 20,000, takes 2.6 GB for 64 x 256 atoms).

    Returns
    -------
    float
        Entropy in nats.

    """
    from quests.entropy import entropy

    descriptors = environment_descriptors(images, k, cutoff)
    with _torch_threads_kept():
        return float(entropy(descriptors, h=h, batch_size=_batch(batch_size)))


def environment_overlap(
    generated: Images,
    reference: Images,
    k: int = 32,
    cutoff: float = 5.0,
    h: float = 0.015,
    eps: float = OVERLAP_EPS,
    batch_size: int = ENTROPY_BATCH_SIZE,
) -> float:
    """Fraction of generated environments that the reference distribution covers.

    An environment Y is covered when its differential entropy
    dH(Y | X) = -log sum_i exp(-|Y - X_i|^2 / 2h^2) over the reference environments X is
    below ``eps`` (i.e. <= 0 up to round-off). 1 means the generated environments lie
    within the support of the reference ones, 0 disjoint supports.

    Parameters
    ----------
    generated, reference
        Structures, one or a list each.
    k, cutoff, h
        As in :func:`environment_entropy`.
    eps
        Threshold on dH, nats.
    batch_size
        As in :func:`environment_entropy`.

    Returns
    -------
    float
        Overlap in [0, 1].

    """
    from quests.entropy import delta_entropy

    x_gen = environment_descriptors(generated, k, cutoff)
    x_ref = environment_descriptors(reference, k, cutoff)
    with _torch_threads_kept(), np.errstate(divide="ignore"):  # dH = inf: uncovered
        delta = delta_entropy(x_gen, x_ref, h=h, batch_size=_batch(batch_size))
    return float(np.mean(delta < eps))
