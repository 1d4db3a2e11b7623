"""What every benchmark shares: model loading, the true potential, references, JSON and tables."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

import ase_amden
from ase_amden.data import AmorphousDataset
from ase_amden.errors import AmdenError
from ase_amden.generator import AmorphousGenerator

#: Default output folder of all benchmarks.
DEFAULT_OUT = Path(__file__).parent / "results"

#: The classical potential that made each shipped model's training data, by element set.
TRUE_POTENTIALS = {("Si",): "sw-si", ("O", "Si"): "tersoff-sio2", ("Cu", "Zr"): "eam-cuzr"}


def add_common_arguments(parser: argparse.ArgumentParser, *, several_models: bool) -> None:
    """Add ``--model/--checkpoint/--device/--out/--seed/--threads/--quick/--quiet``."""
    action = "append" if several_models else "store"
    more = " (repeat for several)" if several_models else ""
    parser.add_argument("--model", action=action, help=f"name of a shipped model{more}")
    parser.add_argument("--checkpoint", action=action, help=f"checkpoint file (.pt){more}")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for JSON and PNG")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first structure")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="fast smoke mode (tiny sizes)")
    parser.add_argument("--quiet", action="store_true", help="print nothing")


def fill_defaults(args: argparse.Namespace, defaults: dict[str, tuple]) -> argparse.Namespace:
    """Set each option left at None to its ``(full, quick)`` default, by ``args.quick``."""
    for name, (full, fast) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, fast if args.quick else full)
    return args


def apply_threads(threads: int | None) -> None:
    """Set torch's CPU thread count for this benchmark process (None: leave torch's default)."""
    if threads is not None:
        torch.set_num_threads(threads)


def load_generators(
    models: Sequence[str] | str | None,
    checkpoints: Sequence[str] | str | None,
    device: str,
) -> list[AmorphousGenerator]:
    """Generators for the named shipped models and checkpoints, in that order.

    With neither given: every shipped model (:meth:`AmorphousGenerator.available_pretrained`).
    """
    models = [models] if isinstance(models, str) else list(models or [])
    checkpoints = [checkpoints] if isinstance(checkpoints, str) else list(checkpoints or [])
    if not models and not checkpoints:
        models = AmorphousGenerator.available_pretrained()
        if not models:
            raise AmdenError(
                "no shipped models found; give --model NAME or --checkpoint PATH.pt"
            )
    generators = [AmorphousGenerator.pretrained(name, device=device) for name in models]
    generators += [AmorphousGenerator.from_checkpoint(path, device=device) for path in checkpoints]
    return generators


def load_energy_generator(args: argparse.Namespace,
                          needs: str = "E_hat needs") -> AmorphousGenerator:
    """The one generator of ``--model``/``--checkpoint``; an error unless it is energy-based.

    ``needs`` completes the message: what needs an energy model, with its verb.
    """
    (generator,) = load_generators(args.model, args.checkpoint, args.device)
    if not generator.card.energy:
        raise AmdenError(f"model {generator.card.name!r} is not energy-based: {needs} one "
                         "(e.g. --model a-Si-energy)")
    return generator


def true_potential(elements: Sequence[str], override: str | None = None) -> str:
    """Name of the potential that judges structures of these elements (or ``override``)."""
    if override:
        return override
    key = tuple(sorted(elements))
    if key not in TRUE_POTENTIALS:
        known = ", ".join(f"{'+'.join(k)} -> {v}" for k, v in TRUE_POTENTIALS.items())
        raise AmdenError(
            f"no default potential for elements {list(elements)} (known: {known}); "
            "give --calculator NAME"
        )
    return TRUE_POTENTIALS[key]


def training_references(path: str | os.PathLike, limit: int) -> list[Atoms]:
    """The first ``limit`` training-split structures of a dataset (for noise floors)."""
    dataset = AmorphousDataset(path)
    return [dataset[int(i)] for i in dataset.split_indices("train")[:limit]]


def held_out_references(
    path: str | os.PathLike, limit: int | None, split: str = "test"
) -> tuple[list[Atoms], str]:
    """The held-out structures of a dataset (all of them if it has no held-out split).

    ``split="all"`` takes every structure, training ones included (for a dataset whose
    held-out split is still too small to average over). Returns the structures (at most
    ``limit``) and the split used, ``"test"`` or ``"all"``.
    """
    dataset = AmorphousDataset(path)
    test = dataset.split_indices("test") if split == "test" else []
    split = "test" if len(test) else "all"
    rows = test if len(test) else np.arange(len(dataset))
    if limit is not None:
        rows = rows[:limit]
    if len(rows) == 0:
        raise AmdenError(f"dataset {path} holds no structures")
    return [dataset[int(i)] for i in rows], split


def environment(device: torch.device | str) -> dict:
    """Software and hardware the numbers were measured on."""
    device = torch.device(device)
    info = {
        "ase_amden": ase_amden.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if device.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work so that a wall-clock reading is complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux ``ru_maxrss``), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextmanager
def counting_unconverged(counter: dict) -> Iterator[None]:
    """Count ASE relaxations that stop before ``fmax`` in ``counter["unconverged"]``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        yield
    unconverged = [w for w in caught if "did not reach fmax" in str(w.message)]
    counter["unconverged"] = counter.get("unconverged", 0) + len(unconverged)
    for w in caught:
        if w not in unconverged:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n"}`` of the finite values (NaN when none)."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(array.mean()), "std": float(array.std()), "n": int(array.size)}


def plain(value):
    """JSON-ready copy: numpy to Python, non-finite floats to None (valid JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(out: str | os.PathLike, name: str, data: dict) -> Path:
    """Write ``data`` to ``out/name`` (folder created) and return the path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(plain(data), indent=2, ensure_ascii=False) + "\n")
    return path


def format_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Plain-text table; floats with 4 significant digits, missing values as ``-``."""

    def cell(value) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in text]
    return "\n".join(lines)


def reporter(quiet: bool) -> Callable[[str], None]:
    """``print`` unless ``quiet``."""
    return (lambda _text: None) if quiet else print
