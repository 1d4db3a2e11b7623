"""Checkpoints: one ``torch.save``'d dict holding the weights and the model card.

Layout (``format`` = :data:`~ase_amden.models.card.CHECKPOINT_FORMAT`)::

    {"format": int, "card": ModelCard.to_dict(), "model": state_dict,
     "ema": ExponentialMovingAverage.state_dict() | None,
     "optimizer": optimizer.state_dict() | None,
     "step": int, "epoch": int, "extra": dict, "checksum": str}

``checksum`` is the SHA-256 of the weights (``model`` and the EMA ``shadow``,
:func:`weights_checksum`), verified on load, so damaged weights are an error rather
than a silently different model; files written before it existed load unverified.
:func:`save_checkpoint` keeps the previous file as ``<name>.bak`` (:func:`backup_path`).

Every value is plain data (tensors, numbers, strings, lists, dicts) so that files
load with ``torch.load(weights_only=True)``: a checkpoint cannot execute code.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import ase_amden
from ase_amden.atomic import atomic_write
from ase_amden.errors import CheckpointError
from ase_amden.models import Denoiser, DenoiserConfig
from ase_amden.models.card import CHECKPOINT_FORMAT, ModelCard
from ase_amden.training.ema import ExponentialMovingAverage

_REQUIRED_KEYS = ("format", "card", "model", "ema", "optimizer", "step", "epoch", "extra")


def backup_path(path: str | os.PathLike) -> Path:
    """Where :func:`save_checkpoint` keeps the previous version of ``path`` (``<name>.bak``)."""
    path = Path(path)
    return path.with_name(path.name + ".bak")


def weights_checksum(*state_dicts: dict[str, torch.Tensor] | None) -> str:
    """SHA-256 (hex) of the names, dtypes, shapes and bytes of the tensors in ``state_dicts``.

    None entries are skipped; keys are taken in sorted order, so the checksum depends on
    the weights only.
    """
    digest = hashlib.sha256()
    for state in state_dicts:
        if state is None:
            continue
        for key in sorted(state):
            tensor = state[key].detach().cpu().contiguous()
            digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _payload_checksum(payload: dict[str, Any]) -> str:
    ema = payload["ema"]
    return weights_checksum(payload["model"], None if ema is None else ema.get("shadow"))


@dataclass
class LoadedCheckpoint:
    """A model restored from a checkpoint.

    Attributes
    ----------
    model
        The denoiser in eval mode, holding the EMA weights when the checkpoint has
        them (the weights meant for inference), else the raw weights.
    card
        The model card.
    state
        Everything needed to resume training: ``"model"`` (raw weights),
        ``"ema"``, ``"optimizer"``, ``"step"``, ``"epoch"``, ``"extra"``.

    """

    model: Denoiser
    card: ModelCard
    state: dict[str, Any]


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    card: ModelCard,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    ema: ExponentialMovingAverage | None = None,
    step: int = 0,
    epoch: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically, keeping the previous one as ``<name>.bak``.

    The file is written to a temporary file in the same folder, flushed to disk
    and moved over ``path`` with :func:`os.replace`, so an interruption leaves
    either the previous checkpoint or the new one, never a truncated file. An
    existing ``path`` is moved to :func:`backup_path` first; the file stores the
    SHA-256 of its weights (:func:`weights_checksum`), checked by :func:`read_checkpoint`.

    Parameters
    ----------
    path
        Destination file (conventionally ``*.pt``); parent folders are created.
    model
        The denoiser (raw, not DDP-wrapped, weights are stored).
    card
        Its model card.
    optimizer, ema
        Optional training state to resume from.
    step, epoch
        Optimiser steps and completed epochs so far.
    extra
        Further plain data (numbers, strings, tensors, lists, dicts).

    Returns
    -------
    Path
        ``path``.

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "card": card.to_dict(),
        "model": model.state_dict(),
        "ema": None if ema is None else ema.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "step": int(step),
        "epoch": int(epoch),
        "extra": dict(extra or {}),
    }
    _atomic_save(payload, path, backup=backup_path(path))
    return path


def _atomic_save(payload: dict[str, Any], path: Path, backup: Path | None = None) -> None:
    payload = {**payload, "checksum": _payload_checksum(payload)}
    with atomic_write(path, backup=backup) as tmp:
        torch.save(payload, tmp)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Read and validate the raw checkpoint dict (no model is built).

    Raises
    ------
    CheckpointError
        If the file is missing, empty, not a checkpoint (text, truncated), of another
        format, lacks keys, or its weights do not match their stored checksum (the
        message names the backup ``<name>.bak`` when there is one).

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; check the path.")
    backup = backup_path(path)
    fix = (f"restore it from the backup {str(backup)!r}" if backup.is_file()
           else "restore it from a copy or retrain")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty (0 bytes); {fix}.")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many kinds (KeyError, IndexError...) on bad files
        if device != "cpu" and isinstance(err, RuntimeError) and "cuda" in str(err).lower():
            raise CheckpointError(
                f"cannot load {str(path)!r} onto device {device!r}: {_first_line(err)}; "
                "use device='cpu'"
            ) from None
        reason = _first_line(err)
        if "Weights only load failed" in reason:
            reason = "the file holds no torch tensors of plain data"
        raise CheckpointError(
            f"{str(path)!r} is not an ase_amden checkpoint, or it is damaged or truncated "
            f"(torch.load failed: {reason}); pass a file written by ase_amden training, "
            f"or {fix}."
        ) from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError(
            f"{str(path)!r} is not an ase_amden checkpoint (no 'format' entry); "
            "pass a file written by ase_amden training."
        )
    if payload["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {payload['format']!r}, this ase_amden "
            f"{ase_amden.__version__} reads format {CHECKPOINT_FORMAT}; retrain the model or "
            "load it with the ase_amden version that wrote it."
        )
    missing = [key for key in _REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(
            f"{str(path)!r} lacks the entries {missing}; the file is damaged or was not "
            "written by save_checkpoint. Retrain or restore it from a copy."
        )
    stored = payload.get("checksum")
    if stored is not None and stored != _payload_checksum(payload):
        raise CheckpointError(
            f"the weights in checkpoint {str(path)!r} do not match their SHA-256 checksum: "
            f"the file is damaged; {fix}."
        )
    return payload


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Rebuild the denoiser and its card from a checkpoint.

    Parameters
    ----------
    path
        A file written by :func:`save_checkpoint`.
    device
        Where to put the model (``"cpu"``, ``"cuda"``, a ``torch.device``).

    Returns
    -------
    LoadedCheckpoint
        Model in eval mode with EMA weights if stored, card, and resume state.

    Raises
    ------
    CheckpointError
        If the file is not a checkpoint, has another format, lacks entries, or its
        weights do not fit the model this ase_amden version builds from the card.

    """
    payload = read_checkpoint(path, device)
    where = repr(str(path))
    written = str(payload["card"].get("package_version", "")) if isinstance(
        payload["card"], dict
    ) else ""
    version_hint = (
        f" It was written by ase_amden {written}, this is {ase_amden.__version__}: load it "
        f"with ase_amden {written} or retrain."
        if written and _major_minor(written) != _major_minor(ase_amden.__version__)
        else " Retrain the model or restore the file from a copy."
    )
    try:
        card = ModelCard.from_dict(payload["card"])
        model = Denoiser(DenoiserConfig(**card.model_config))
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"checkpoint {where} has a model card this version cannot use ({err}).{version_hint}"
        ) from None
    weights = payload["ema"]["shadow"] if payload["ema"] is not None else payload["model"]
    dtype = next(iter(weights.values())).dtype if weights else torch.float32
    model = model.to(dtype=dtype)  # before loading, so float64 weights keep their precision
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(
            f"the weights in checkpoint {where} do not fit the model built from its card "
            f"({first}).{version_hint}"
        ) from None
    model = model.to(device=device).eval()
    state = {key: payload[key] for key in ("model", "ema", "optimizer", "step", "epoch", "extra")}
    return LoadedCheckpoint(model=model, card=card, state=state)


def export_for_shipping(src: str | os.PathLike, dst: str | os.PathLike,
                        sampling: dict[str, Any] | None = None) -> Path:
    """Write a small inference-only copy of a checkpoint.

    The optimiser state, the raw weights and the training extras are dropped; the
    EMA weights (raw weights if there is no EMA) are kept, in float32, as ``model``.

    Parameters
    ----------
    src
        Checkpoint written by :func:`save_checkpoint`.
    dst
        Destination file (written atomically).
    sampling
        The sampler the shipped model is meant for, written into its card
        (:attr:`ModelCard.sampling`, e.g. ``{"sampler": "shortcut", "steps": 4}``);
        None keeps the checkpoint's.

    Returns
    -------
    Path
        ``dst``.

    """
    payload = read_checkpoint(src)
    weights = payload["ema"]["shadow"] if payload["ema"] is not None else payload["model"]
    card = dict(payload["card"])
    if sampling is not None:
        card["sampling"] = dict(sampling)
    shipped = {
        "format": payload["format"],
        "card": card,
        "model": {
            k: (v.float() if v.is_floating_point() else v).contiguous().clone()
            for k, v in weights.items()
        },
        "ema": None,
        "optimizer": None,
        "step": payload["step"],
        "epoch": payload["epoch"],
        "extra": {},
    }
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(shipped, dst)
    return dst
