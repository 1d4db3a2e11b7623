"""Checking a ``device`` argument before anything is loaded onto it."""

from __future__ import annotations

import torch

from .errors import InvalidArgumentError

__all__ = ["check_device"]


def check_device(device: str | torch.device) -> torch.device:
    """Return ``device`` as a ``torch.device`` (``"auto"``: CUDA when available, else CPU).

    Raises
    ------
    InvalidArgumentError
        For a name torch does not know (``"tpu"``), or CUDA asked for where it is not
        available, or a GPU index beyond those present.

    >>> check_device("cpu")
    device(type='cpu')

    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidArgumentError(
            f"unknown device {str(device)!r}; use 'auto', 'cpu' or 'cuda' (or 'cuda:N')"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgumentError(
                f"device {str(device)!r} asked for, but CUDA is not available on this machine "
                "(no GPU or a CPU-only torch); use device 'cpu' or 'auto'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InvalidArgumentError(
                f"device {str(device)!r}: this machine has {torch.cuda.device_count()} GPU(s); "
                "use a smaller index"
            )
    elif resolved.type not in ("cpu", "mps"):
        raise InvalidArgumentError(
            f"unsupported device {str(device)!r}; use 'auto', 'cpu' or 'cuda' (or 'cuda:N')"
        )
    return resolved
