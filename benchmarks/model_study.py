"""A controlled study of training recipes: the same data, seed and budget, one table.

Each arm is a checkpoint (``--arm NAME=PATH``, optionally ``NAME=PATH@prop=value,...`` for
the targets a conditioned arm is sampled at) trained by one recipe. For every arm, side by
side in one process:

* held-out noise loss per atom at each ``--times`` t (the denoising probe's measure,
  ``--draws`` noise draws of the ``--reference`` held-out split);
* ``--count`` structures generated in reference cells (``--sampler``/``--steps``, default the
  card's), relaxed with the true potential in LAMMPS: mean relaxed energy and RDF RMSD (to
  5 Å in 100 bins, relaxed against the relaxed first ``--n-reference`` reference rows);
* the equivalent cooling rate of those energies on the calibration points stored by
  ``benchmarks/equivalent_cooling_rate.py`` (``--calibration-from``, its JSON), with the
  same bootstrap;
* seconds per training step (forward, loss and backward of a batch of ``--batch-size``
  training structures, median of ``--timed-steps``) and the steps the arm was trained for
  (from the card's training history).

Writes ``model_study_<name>.json`` and ``.md`` into ``--out``; with ``--append`` the arms
already in that JSON are kept (the settings must be the same) and only new arms are run, so
arms trained at different times join one table. From the repository root::

    python -m benchmarks.model_study --name a-Si --arm baseline=ase_amden/pretrained/a-Si.pt \\
        --arm edm=runs/arm-edm/last.pt --arm history=runs/arm-history/last.pt@cooling_rate=1
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ase_amden.data import AmorphousDataset
from ase_amden.errors import AmdenError
from ase_amden.training import TimeSampling, collate_for, objective_loss

from .common import (
    DEFAULT_OUT,
    apply_threads,
    environment,
    fill_defaults,
    format_table,
    load_generators,
    mean_std,
    reporter,
    true_potential,
    write_json,
)
from .denoising_probe import noise_loss
from .equivalent_cooling_rate import equivalent_rate, measured, rdf_of, relaxed_set
from .generation_quality import generate_like


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True, help="name of the study (output file stem)")
    parser.add_argument("--arm", action="append", required=True, metavar="NAME=PATH[@TARGETS]",
                        help="an arm: its checkpoint, and targets as prop=value,... (repeat)")
    parser.add_argument("--reference", default="datasets/a-Si-anneal.h5",
                        help="dataset whose held-out split gives the noise loss and whose "
                        "first rows are the RDF references and cells")
    parser.add_argument("--calibration-from",
                        default="benchmarks/results/equivalent_cooling_rate_a-Si.json",
                        help="equivalent_cooling_rate JSON whose calibration points are used")
    parser.add_argument("--times", default="0.05,0.1,0.2,0.3,0.5",
                        help="comma-separated t of the held-out noise loss")
    parser.add_argument("--draws", type=int, default=None, help="noise draws (default 4)")
    parser.add_argument("--count", type=int, default=None,
                        help="generated structures per arm (default 8)")
    parser.add_argument("--n-reference", type=int, default=None,
                        help="reference structures (default 20)")
    parser.add_argument("--sampler", default=None, help="sampler (default: each card's)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps")
    parser.add_argument("--batch-size", type=int, default=4, help="structures per timed step")
    parser.add_argument("--timed-steps", type=int, default=None,
                        help="timed training steps (default 5)")
    parser.add_argument("--calculator", default=None, help="true potential (default sw-si)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first structure")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for JSON and markdown")
    parser.add_argument("--append", action="store_true",
                        help="keep the arms of an existing model_study_<name>.json (same "
                        "settings) and run only the new ones")
    parser.add_argument("--quick", action="store_true", help="fast smoke mode (tiny sizes)")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    defaults = {"draws": (4, 1), "count": (8, 2), "n_reference": (20, 2), "timed_steps": (5, 1)}
    fill_defaults(args, defaults)
    if args.quick and args.steps is None:
        args.steps = 3
    args.times = [float(t) for t in args.times.split(",")]
    args.arms = [parse_arm(text) for text in args.arm]
    if len({arm["name"] for arm in args.arms}) != len(args.arms):
        raise AmdenError("two arms have the same name; give each --arm its own NAME=")
    return args


def parse_arm(text: str) -> dict:
    """``NAME=PATH[@prop=value,...]`` -> ``{"name", "path", "targets"}``."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise AmdenError(f"bad --arm {text!r}: write NAME=PATH or NAME=PATH@prop=value,...")
    path, _, spec = rest.partition("@")
    targets = {}
    for item in filter(None, spec.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise AmdenError(f"bad target {item!r} in --arm {text!r}: write prop=value")
        targets[key] = float(value)
    return {"name": name, "path": path, "targets": targets}


def calibration_points(path: str) -> list[dict]:
    """Calibration points (rate, relaxed energies) of an equivalent_cooling_rate JSON."""
    data = json.loads(Path(path).read_text())
    return [{"name": p["name"], "rate": p["rate"] if p["rate"] is not None else math.inf,
             "energies": p["energies"]} for p in data["calibration"]]


def step_seconds(generator, structures, args) -> float:
    """Median seconds of one training step (forward, loss, backward) on ``structures``."""
    card, model = generator.card, generator.model
    batch = collate_for(structures, card).to(generator.device, generator.dtype)
    times = TimeSampling("lognormal")
    model.train()
    seconds = []
    for step in range(args.timed_steps + 1):  # the first is warm-up
        start = time.perf_counter()
        loss = objective_loss(model, batch, card, times=times,
                              generator=torch.Generator().manual_seed(step))
        loss.total.backward()
        seconds.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    model.eval()
    return statistics.median(seconds[1:])


def trained_steps(card) -> int | None:
    """Optimiser steps of the last entry of the card's training history (None if none)."""
    history = card.training.get("history") or [{}]
    return history[-1].get("step")


def study_arm(arm: dict, generator, data: dict, args, say) -> dict:
    """Every measure of one arm."""
    card = generator.card
    unknown = sorted(set(arm["targets"]) - set(card.property_names))
    if unknown:
        raise AmdenError(f"arm {arm['name']!r}: its model has no property {unknown[0]!r} "
                         f"(it has {', '.join(card.property_names) or 'none'})")
    losses = {f"{t:g}": noise_loss(generator, data["held_out"], t, args.draws, args.seed)
              for t in args.times}
    generated, seconds = [], []
    for k in range(args.count):
        cell = data["references"][k % len(data["references"])]
        atoms, s = generate_like(generator, cell, args, args.seed + k,
                                 targets=arm["targets"] or None)
        generated.append(atoms)
        seconds.append(s)
    quality = measured(generated, data["potential"], data["reference_rdf"])
    equivalent = equivalent_rate(quality["energies"], data["calibration"], args.bootstrap,
                                 args.seed)
    row = {"path": arm["path"], "targets": arm["targets"], "model": card.name,
           "noise_loss": losses, **quality, "equivalent": equivalent,
           "generation_s": mean_std(seconds),
           "train_step_s": step_seconds(generator, data["training"], args),
           "trained_steps": trained_steps(card)}
    say(f"{arm['name']}: relaxed {row['mean']:.4f} eV/atom, RDF RMSD "
        f"{row['rdf_rmsd_relaxed']:.3f}, rate {equivalent['rate_K_per_ps'] or equivalent['bound']}")
    return row


def table(args, arms: dict) -> tuple[list[str], list[list]]:
    headers = (["arm"] + [f"loss t={t:g}" for t in args.times]
               + ["RDF RMSD", "E relaxed (eV/atom)", "std", "equivalent rate (K/ps)",
                  "s/train step", "trained steps"])
    rows = []
    for name, row in arms.items():
        rate = row["equivalent"]["rate_K_per_ps"] or row["equivalent"]["bound"]
        rows.append([name, *row["noise_loss"].values(), row["rdf_rmsd_relaxed"], row["mean"],
                     row["std"], rate, row["train_step_s"], row["trained_steps"]])
    return headers, rows


def markdown(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.4g}" if math.isfinite(value) else "-"
        return "-" if value is None else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


#: Settings that may differ between the runs of one appended study.
_PER_RUN = ("arm", "append", "out", "threads")


def earlier_arms(path: Path, args) -> dict:
    """Arms of an earlier run of the same study (``--append``), checked to be comparable."""
    if not args.append or not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    mine = {k: v for k, v in study_settings(args).items() if k not in _PER_RUN}
    theirs = {k: v for k, v in earlier["settings"].items() if k not in _PER_RUN}
    if mine != theirs:
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise AmdenError(f"{path} was run with other settings ({', '.join(changed)}); use the "
                         "same ones to append, or another --name")
    return earlier["arms"]


def study_settings(args) -> dict:
    """The settings recorded in the JSON (JSON types, so they compare with a file's)."""
    return json.loads(json.dumps({k: v for k, v in vars(args).items()
                                  if k not in ("quiet", "arms")}))


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the study; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    out = Path(args.out)
    arms = earlier_arms(out / f"model_study_{args.name}.json", args)
    repeated = sorted(set(arms) & {arm["name"] for arm in args.arms})
    if repeated:
        raise AmdenError(f"arm {repeated[0]!r} is already in the study; give a new name")
    generators = load_generators(None, [arm["path"] for arm in args.arms], args.device)
    elements = {tuple(g.card.elements) for g in generators}
    if len(elements) != 1:
        raise AmdenError(f"the arms model different elements {sorted(elements)}; a study "
                         "compares recipes on the same data")
    potential = true_potential(list(elements.pop()), args.calculator)
    reference_set = AmorphousDataset(args.reference)
    if len(reference_set) < args.n_reference:
        raise AmdenError(f"{args.reference} holds {len(reference_set)} structures, fewer than "
                         f"--n-reference {args.n_reference}")
    references = [reference_set[i] for i in range(args.n_reference)]
    _, relaxed_references = relaxed_set(references, potential)
    data = {
        "potential": potential, "references": references,
        "reference_rdf": {"raw": rdf_of(references), "relaxed": rdf_of(relaxed_references)},
        "held_out": reference_set.subset("test"),
        "training": reference_set.subset("train")[: args.batch_size],
        "calibration": calibration_points(args.calibration_from),
    }
    if not data["held_out"]:
        raise AmdenError(f"{args.reference} has no held-out structures for the noise loss")
    for arm, generator in zip(args.arms, generators, strict=True):
        arms[arm["name"]] = study_arm(arm, generator, data, args, say)
    headers, rows = table(args, arms)
    result = {
        "benchmark": "model_study", "name": args.name,
        "environment": environment(generators[0].device),
        "settings": study_settings(args),
        "potential": potential, "energy_units": "eV/atom",
        "calibration": [{"name": p["name"], "rate": p["rate"] if math.isfinite(p["rate"])
                         else None, **mean_std(p["energies"])} for p in data["calibration"]],
        "arms": arms,
    }
    path = write_json(out, f"model_study_{args.name}.json", result)
    (out / f"model_study_{args.name}.md").write_text(markdown(headers, rows))
    say(format_table(headers, rows))
    say(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
