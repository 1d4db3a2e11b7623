"""Exponential moving average of model weights (used for inference)."""

from __future__ import annotations

from typing import Any

import torch


class ExponentialMovingAverage:
    """Shadow copy of a model's weights, ``w_ema <- d w_ema + (1 - d) w``.

    The effective decay is ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so
    that the average is not dominated by the random initial weights in short runs.
    Floating parameters are averaged; buffers and integer tensors are copied.

    Parameters
    ----------
    model
        The model whose ``state_dict`` is tracked.
    decay
        Target decay per update, in ``[0, 1)``.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> ema = ExponentialMovingAverage(net, decay=0.9)
    >>> ema.update(net)
    >>> sorted(ema.shadow) == sorted(net.state_dict())
    True

    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}; 0.999 is typical.")
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the current weights of ``model`` into the average."""
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for key, value in model.state_dict().items():
            shadow = self.shadow[key]
            if shadow.is_floating_point():
                shadow.mul_(decay).add_(value.detach(), alpha=1.0 - decay)
            else:
                shadow.copy_(value)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        """Load the averaged weights into ``model``."""
        model.load_state_dict(self.shadow)

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state (decay, update count, averaged weights)."""
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict`."""
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for key, value in state["shadow"].items():
            self.shadow[key] = value.detach().clone().to(self.shadow[key].device)
