"""Steps against quality: AMShortcut's Table 1 (and Fig. 4) for the samplers of a model.

Rows are sampler step counts (1, 2, 3, 4, 5, 10, 25, 50, 100, 250 by default), columns the
samplers ``sde``, ``ode``, ``langevin``, ``flow`` and ``shortcut``. A column a model cannot
use (``flow`` needs a flow-matching model, ``shortcut`` a model trained with the shortcut
loss) is left out with the reason in ``skipped``. Each cell generates ``--count``
structures in the cells of as many held-out references (the dataset's ``test`` split; the
same seeds in every cell, so every sampler starts from the same noise) and reports, as
the paper does, the RMSD between the set-averaged RDF (to 5 Å, 100 bins) and ADF (within
3 Å, 180 bins, 1/degree) of the generated and the reference structures, and the wall time
per structure of one batched ``generate`` call (``--batch``; time.perf_counter), and the
CPU time per structure (time.process_time), which unlike the wall time does not grow
when other processes share the cores. The RDF
RMSD between as many training structures and the references (``rdf_rmsd_floor``) is what
sampling noise alone gives at this ``--count``.

With ``--property-mae``, for a model conditioned on ``shear_modulus`` and/or
``ring_size`` (silica): per step count of ``--property-rows``, targets across the
reference range (as ``generation_quality``'s sweep: relaxed with the true potential,
shear modulus from the relaxed-ion elastic tensor) and the MAE of the achieved values
(AMShortcut Tables 2-4). It relaxes every structure, so it is slow; off by default.

Writes ``steps_vs_quality_<model>.json``, ``.md`` (the table) and ``.png`` (RDF and ADF
RMSD against time per structure) into ``--out``.

Run (from the repository root)::

    python -m benchmarks.steps_vs_quality --model a-Si --reference datasets/a-Si-anneal.h5 \
        --count 4 --skip langevin:250
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_amden.analysis import rdf_rmsd
from ase_amden.analysis.angles import adf
from ase_amden.analysis.compare import ADF_CUTOFF, ADF_NBINS, rmsd
from ase_amden.analysis.relax import as_calculator, relax
from ase_amden.cli.arguments import sampler_option, sampler_options
from ase_amden.diffusion import SAMPLERS
from ase_amden.errors import AmdenError
from ase_amden.generator import AmorphousGenerator

from .common import (
    add_common_arguments,
    apply_threads,
    counting_unconverged,
    environment,
    fill_defaults,
    held_out_references,
    load_generators,
    mean_std,
    reporter,
    synchronize,
    training_references,
    true_potential,
    write_json,
)
from .generation_quality import SWEEP_PROPERTIES, achieved, reference_paths

#: AMShortcut Table 1: rows (sampler steps) and columns (samplers).
ROWS = (1, 2, 3, 4, 5, 10, 25, 50, 100, 250)
COLUMNS = ("sde", "ode", "langevin", "flow", "shortcut")


def _ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"give positive step counts, e.g. 1,5,25; got {text!r}")
    return values


def _skip(text: str) -> tuple[str, int]:
    name, _, steps = text.partition(":")
    if name not in COLUMNS or not steps.isdigit():
        raise argparse.ArgumentTypeError(f"give SAMPLER:STEPS, e.g. langevin:250; got {text!r}")
    return name, int(steps)


def _option(text: str) -> tuple[str, tuple[str, str]]:
    name, _, option = text.partition(":")
    if name not in COLUMNS or "=" not in option:
        raise argparse.ArgumentTypeError(
            f"give SAMPLER:NAME=VALUE, e.g. shortcut:grid=halving; got {text!r}")
    return name, sampler_option(option)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, several_models=True)
    parser.add_argument("--reference", action="append",
                        help="reference dataset (.h5), one per model in order, or one for all; "
                             "default datasets/<model name>.h5")
    parser.add_argument("--count", type=int, default=None,
                        help="held-out references = structures per cell (default 8)")
    parser.add_argument("--rows", type=_ints, default=None,
                        help=f"comma-separated step counts (default {','.join(map(str, ROWS))})")
    parser.add_argument("--samplers", default=",".join(COLUMNS),
                        help="comma-separated columns (default all five)")
    parser.add_argument("--skip", type=_skip, action="append", default=[],
                        help="leave out one cell, SAMPLER:STEPS (repeatable), e.g. langevin:250")
    parser.add_argument("--sampler-option", type=_option, action="append", default=[],
                        metavar="SAMPLER:K=V",
                        help="an option of one column's sampler (repeatable), e.g. "
                             "shortcut:grid=halving")
    parser.add_argument("--batch", type=int, default=None,
                        help="structures per network call (default: all of a cell)")
    parser.add_argument("--property-mae", action="store_true",
                        help="also the property MAE against steps (conditioned models; slow)")
    parser.add_argument("--property-rows", type=_ints, default=None,
                        help="step counts of the property MAE (default 1,5,25,200)")
    parser.add_argument("--n-targets", type=int, default=None,
                        help="targets per property of the MAE (default 3)")
    parser.add_argument("--relax-steps", type=int, default=None,
                        help="optimizer steps per relaxation of the MAE (default 500)")
    parser.add_argument("--fmax", type=float, default=0.01, help="relaxation force tolerance")
    args = parser.parse_args(argv)
    defaults = {"count": (8, 2), "rows": (list(ROWS), [1, 2]),
                "property_rows": ([1, 5, 25, 200], [1, 2]), "n_targets": (3, 2),
                "relax_steps": (500, 10)}
    fill_defaults(args, defaults)
    args.samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    unknown = sorted(set(args.samplers) - set(COLUMNS))
    if unknown:
        parser.error(f"unknown sampler column(s) {unknown}; choose from {', '.join(COLUMNS)}")
    return args


def columns(generator: AmorphousGenerator, names: Sequence[str]) -> tuple[list[str], dict]:
    """The samplers of ``names`` the model can use, and why each other one is left out."""
    usable, skipped = [], {}
    for name in names:
        reason = SAMPLERS[name].incompatibility(generator.card)
        if reason is None:
            usable.append(name)
        else:
            skipped[name] = reason
    return usable, skipped


def generate_set(generator: AmorphousGenerator, references: Sequence[Atoms], sampler: str,
                 steps: int, args) -> tuple[list[Atoms], float, float]:
    """One structure per reference, in its cell; the structures and wall and CPU seconds
    per structure (CPU: time.process_time, all threads of this process).

    References that share a cell (and atom count) go through the network together.
    """
    groups: dict[tuple, list[int]] = {}
    for k, ref in enumerate(references):
        key = (tuple(np.round(ref.cell.array, 6).ravel()), len(ref))
        groups.setdefault(key, []).append(k)
    generated: list[Atoms] = []
    synchronize(generator.device)
    options = column_options(sampler, args)
    start, cpu = time.perf_counter(), time.process_time()
    for k, members in enumerate(groups.values()):
        ref = references[members[0]]
        sizes = {} if generator.card.rho_max is not None else {"n_atoms": len(ref)}
        generated += generator.generate(
            len(members), cell=ref.cell.array, sampler=sampler, steps=steps,
            sampler_options=options, batch_size=args.batch, seed=args.seed + k,
            progress=False, **sizes,
        )
    synchronize(generator.device)
    return (generated, (time.perf_counter() - start) / len(references),
            (time.process_time() - cpu) / len(references))


def column_options(sampler: str, args) -> dict | None:
    """The ``--sampler-option`` settings of one column (None if it has none)."""
    return sampler_options([o for name, o in args.sampler_option if name == sampler]) or None


def quality(generated: Sequence[Atoms], references: Sequence[Atoms]) -> dict:
    """RDF and ADF RMSD between the averaged curves of two sets (AMShortcut B.5)."""
    _, p_gen = adf(list(generated), ADF_CUTOFF, ADF_NBINS)
    _, p_ref = adf(list(references), ADF_CUTOFF, ADF_NBINS)
    return {"rdf_rmsd": rdf_rmsd(list(generated), list(references)),
            "adf_rmsd": rmsd(p_gen, p_ref)}


def property_mae(generator: AmorphousGenerator, references: Sequence[Atoms], sampler: str,
                 args, counter: dict) -> dict:
    """Per step count, the MAE of each swept property (targets across the reference range)."""
    card = generator.card
    calc = as_calculator(true_potential(card.elements))
    options = column_options(sampler, args)
    out: dict = {}
    for steps in args.property_rows:
        row = {}
        for name in (p for p in SWEEP_PROPERTIES if p in card.property_names):
            values = np.array([a.info[name] for a in references if name in a.info], float)
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            errors = []
            for k, target in enumerate(np.linspace(values.min(), values.max(), args.n_targets)):
                (atoms,) = generator.generate(1, targets={name: float(target)}, sampler=sampler,
                                              steps=steps, sampler_options=options,
                                              seed=args.seed + 1000 + k, progress=False)
                with counting_unconverged(counter):
                    relaxed = relax(atoms, calc, args.fmax, args.relax_steps)
                    errors.append(abs(achieved(name, relaxed, calc, args) - target))
            row[name] = {**mean_std(errors),
                         "units": card.property_units[card.property_names.index(name)]}
        out[str(steps)] = row
    return out


def evaluate(generator: AmorphousGenerator, reference_path: str, args, say) -> dict:
    """The table of one model."""
    card = generator.card
    references, split = held_out_references(reference_path, args.count)
    usable, skipped = columns(generator, args.samplers)
    for name, reason in skipped.items():
        say(f"{card.name}: no {name!r} column: {reason}")
    others = training_references(reference_path, len(references))
    floor = rdf_rmsd(others, references) if split == "test" and others else float("nan")
    generator.generate(1, cell=references[0].cell.array, n_atoms=None if card.rho_max
                       else len(references[0]), steps=1, sampler=usable[0],
                       progress=False)  # warm-up
    cells: dict = {name: {} for name in usable}
    options = {name: generator.sampling(name, None, column_options(name, args))[2]
               for name in usable}
    for name in usable:
        for steps in args.rows:
            if (name, steps) in args.skip:
                continue
            generated, seconds, cpu = generate_set(generator, references, name, steps, args)
            cells[name][str(steps)] = {**quality(generated, references),
                                       "seconds_per_structure": seconds,
                                       "cpu_seconds_per_structure": cpu}
            c = cells[name][str(steps)]
            say(f"{card.name} {name:>8} {steps:>4} steps: RDF {c['rdf_rmsd']:.3f}  "
                f"ADF {c['adf_rmsd']:.4f}  {seconds:.3g} s/structure ({cpu:.3g} s CPU)")
    result = {
        "reference": reference_path,
        "reference_split": split,
        "n_reference": len(references),
        "n_atoms": float(np.mean([len(a) for a in references])),
        "rdf_rmsd_floor": floor,
        "sampling_card": dict(card.sampling),
        "columns": usable,
        "column_options": options,
        "skipped": skipped,
        "not_run": [name for name in COLUMNS if name not in args.samplers],
        "skipped_cells": [f"{name}:{steps}" for name, steps in args.skip],
        "cells": cells,
    }
    if args.property_mae and any(p in card.property_names for p in SWEEP_PROPERTIES):
        counter: dict = {}
        result["property_mae"] = {name: property_mae(generator, references, name, args, counter)
                                  for name in usable}
        result["unconverged_relaxations"] = counter.get("unconverged", 0)
    return result


def column_label(result: dict, col: str) -> str:
    """The column's sampler with the options it ran with, e.g. ``shortcut (tail=0.3)``."""
    options = result.get("column_options", {}).get(col) or {}
    return col + (f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else "")


def markdown(name: str, result: dict, rows: Sequence[int]) -> str:
    """AMShortcut's table: ``RDF RMSD / ADF RMSD (wall s, CPU s per structure)`` per cell."""
    cols = result["columns"]
    lines = [f"### {name}: RDF RMSD / ADF RMSD (wall s, CPU s per structure)", "",
             f"{result['n_reference']} generated and {result['n_reference']} held-out "
             f"({result['reference_split']}) structures of `{result['reference']}`, "
             f"{result['n_atoms']:.0f} atoms; RDF RMSD of as many training structures "
             f"(sampling noise): {result['rdf_rmsd_floor']:.3f}.", "",
             "| steps | " + " | ".join(column_label(result, c) for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for steps in rows:
        cells = []
        for col in cols:
            c = result["cells"][col].get(str(steps))
            cells.append("-" if c is None else f"{c['rdf_rmsd']:.3f} / {c['adf_rmsd']:.4f} "
                         f"({c['seconds_per_structure']:.3g} s, "
                         f"{c['cpu_seconds_per_structure']:.3g} s)")
        lines.append(f"| {steps} | " + " | ".join(cells) + " |")
    notes = [f"- no `{col}` column: {why}" for col, why in result["skipped"].items()]
    notes += [f"- `{col}` not run (not in --samplers)" for col in result["not_run"]]
    notes += [f"- not run: {cell}" for cell in result["skipped_cells"]]
    for col, by_steps in result.get("property_mae", {}).items():
        for steps, props in by_steps.items():
            text = ", ".join(f"{p} MAE {v['mean']:.3g} {v['units']} (n={v['n']})"
                             for p, v in props.items())
            notes.append(f"- {column_label(result, col)}, {steps} steps: {text}")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def figure(name: str, result: dict, path: Path) -> str:
    """RDF and ADF RMSD against time per structure, one line per sampler (steps marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for col in result["columns"]:
        items = sorted(result["cells"][col].items(), key=lambda kv: int(kv[0]))
        if not items:
            continue
        times = [c["seconds_per_structure"] for _, c in items]
        for ax, key in zip(axes, ("rdf_rmsd", "adf_rmsd"), strict=True):
            ax.plot(times, [c[key] for _, c in items], "o-", label=column_label(result, col))
            for steps, c in items:
                ax.annotate(steps, (c["seconds_per_structure"], c[key]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
    axes[0].axhline(result["rdf_rmsd_floor"], color="grey", ls=":", label="training vs test")
    for ax, label in zip(axes, ("RDF RMSD", "ADF RMSD (1/degree)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("time per structure (s)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{name}: quality against time (steps marked)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    generators = load_generators(args.model, args.checkpoint, args.device)
    paths = reference_paths(generators, args.reference)
    models = {}
    for generator, path in zip(generators, paths, strict=True):
        name = generator.card.name
        result = evaluate(generator, path, args, say)
        if not result["columns"]:
            raise AmdenError(f"model {name!r} can use none of the samplers {args.samplers}")
        result["png"] = figure(name, result, Path(args.out) / f"steps_vs_quality_{name}.png")
        table = markdown(name, result, args.rows)
        (Path(args.out) / f"steps_vs_quality_{name}.md").write_text(table)
        models[name] = result
        data = {"benchmark": "steps_vs_quality", "environment": environment(generator.device),
                "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
                "models": {name: result}}
        say(f"wrote {write_json(args.out, f'steps_vs_quality_{name}.json', data)}")
        say(table)
    return {"benchmark": "steps_vs_quality", "models": models}


if __name__ == "__main__":
    main()
