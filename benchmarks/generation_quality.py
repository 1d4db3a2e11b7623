"""Generation quality: how close generated structures come to a model's held-out references.

For each model, one structure is generated in the cell of each held-out reference structure
(same number of atoms for models without ghost atoms; models with ghosts choose it) and
compared with the references:

- RDF and ADF RMSD between the set-averaged curves (AMShortcut: RDF to 5 Å in 100 bins, ADF
  within 3 Å in 180 bins), coordination, average ring size, QUESTS overlap of environments;
- potential energy per atom after local relaxation (positions, fixed cell) with the true
  potential (Si -> sw-si, Si+O -> tersoff-sio2, or ``--calculator``), for generated and
  reference structures relaxed the same way, and the gap between them (AMDEN: standard
  denoising does not reach the energy of slowly annealed references);
- wall time per generated structure (batch 1, time.perf_counter).

For models conditioned on ``shear_modulus`` and/or ``ring_size`` (silica) a sweep of targets
across the reference range: the achieved shear modulus (relaxed-ion elastic tensor with the
true potential, Hill average, as the dataset computed it) and average ring size (Si atoms, of
the relaxed structure), their MAE to the targets, and the charge-balance rate: the fraction of
all generated SiO2 structures with exactly Si:O = 1:2.

Writes, per model, ``generation_quality_<model>.json`` and ``generation_quality_<model>.png``
(RDF, ADF, rings and relaxed energies) into ``--out``, so models benchmarked one at a time keep
their own results.

Run on the shipped models (from the repository root)::

    python -m benchmarks.generation_quality --model a-Si --reference datasets/a-Si-anneal.h5 \
        --model a-SiO2 --reference datasets/a-SiO2.h5

(``benchmarks/results`` holds a-Si from ``--model a-Si --split all --count 20``: its anneal
set had 2 held-out structures then, too few to average an RDF over.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_amden.analysis import (
    average_ring_size,
    compare,
    elastic_tensor,
    isotropic_moduli,
    plot_report,
    rdf_rmsd,
    relax,
)
from ase_amden.analysis.relax import MAX_STEPS, as_calculator
from ase_amden.data import AmorphousDataset
from ase_amden.errors import AmdenError
from ase_amden.generator import AmorphousGenerator

from .common import (
    add_common_arguments,
    apply_threads,
    counting_unconverged,
    environment,
    fill_defaults,
    format_table,
    held_out_references,
    load_generators,
    mean_std,
    reporter,
    training_references,
    true_potential,
    write_json,
)

#: Properties of the silica target sweep and how the achieved value is measured.
SWEEP_PROPERTIES = ("shear_modulus", "ring_size")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, several_models=True)
    parser.add_argument("--reference", action="append",
                        help="reference dataset (.h5), one per model in order, or one for all; "
                             "default datasets/<model name>.h5")
    parser.add_argument("--calculator", help="true potential name (default from the elements)")
    parser.add_argument("--count", type=int, default=None,
                        help="held-out references used = structures generated (default 20)")
    parser.add_argument("--split", choices=("test", "all"), default="test",
                        help="reference structures: the held-out split (default) or all, "
                             "training ones included, while the held-out split is too small")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default 200)")
    parser.add_argument("--sampler", default="sde", help="sampler name (default sde)")
    parser.add_argument("--n-targets", type=int, default=None,
                        help="targets per swept property (default 5)")
    parser.add_argument("--per-target", type=int, default=None,
                        help="structures per target (default 4)")
    parser.add_argument("--guidance", type=float, default=0.0, help="guidance weight of the sweep")
    parser.add_argument("--relax-steps", type=int, default=None,
                        help=f"optimizer steps per relaxation (default {MAX_STEPS})")
    parser.add_argument("--fmax", type=float, default=0.01, help="relaxation force tolerance")
    args = parser.parse_args(argv)
    defaults = {"count": (20, 2), "steps": (200, 3), "n_targets": (5, 2), "per_target": (4, 1),
                "relax_steps": (MAX_STEPS, 20)}
    fill_defaults(args, defaults)
    return args


def reference_paths(generators: list[AmorphousGenerator], given: list[str] | None) -> list[str]:
    """One reference dataset per generator (see ``--reference``)."""
    if not given:
        paths = [f"datasets/{g.card.name}.h5" for g in generators]
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise AmdenError(f"no reference dataset {missing[0]}; give --reference PATH.h5")
        return paths
    if len(given) == 1:
        return given * len(generators)
    if len(given) != len(generators):
        raise AmdenError(
            f"{len(given)} --reference for {len(generators)} models; give one per model, in "
            "the order of --model then --checkpoint, or one for all"
        )
    return list(given)


def is_charge_balanced(atoms: Atoms) -> bool:
    """Exactly Si:O = 1:2 (and at least one Si)."""
    symbols = atoms.get_chemical_symbols()
    n_si, n_o = symbols.count("Si"), symbols.count("O")
    return n_si > 0 and n_o == 2 * n_si and n_si + n_o == len(symbols)


def generate_like(generator: AmorphousGenerator, reference: Atoms, args, seed: int, **kwargs):
    """Generate one structure in the cell of ``reference``; return it and the seconds taken."""
    if generator.card.rho_max is None:
        kwargs["n_atoms"] = len(reference)
    start = time.perf_counter()
    (atoms,) = generator.generate(
        1, cell=reference.cell.array, sampler=args.sampler, steps=args.steps, seed=seed,
        progress=False, **kwargs,
    )
    return atoms, time.perf_counter() - start


def achieved(name: str, relaxed: Atoms, calc, args) -> float:
    """Property ``name`` of a relaxed structure, measured as the dataset measured it."""
    if name == "ring_size":
        return average_ring_size(relaxed)
    try:
        c = elastic_tensor(relaxed, calc, strain=0.01, steps=args.relax_steps)
        return isotropic_moduli(c)["G"]
    except np.linalg.LinAlgError:  # singular tensor: a broken structure
        return float("nan")


def target_sweep(generator, references_path, calc, args, counter) -> tuple[dict, list[Atoms]]:
    """Targets across the reference range of each swept property; achieved values and MAE."""
    card = generator.card
    dataset = AmorphousDataset(references_path)
    sweep, structures = {}, []
    for name in (p for p in SWEEP_PROPERTIES if p in card.property_names):
        values = dataset.properties(name) if name in dataset.property_names else np.array([])
        values = values[np.isfinite(values)]
        if values.size == 0:
            i = card.property_names.index(name)
            values = np.array([card.property_mean[i] - card.property_std[i],
                               card.property_mean[i] + card.property_std[i]])
        rows = []
        for k, target in enumerate(np.linspace(values.min(), values.max(), args.n_targets)):
            atoms_list = generator.generate(
                args.per_target, targets={name: float(target)}, sampler=args.sampler,
                steps=args.steps, guidance=args.guidance, seed=args.seed + 1000 * (k + 1),
                progress=False,
            )
            structures += atoms_list
            with counting_unconverged(counter):
                got = [achieved(name, relax(a, calc, args.fmax, args.relax_steps), calc, args)
                       for a in atoms_list]
            rows.append({"target": float(target), "achieved": got,
                         "achieved_mean": mean_std(got)["mean"]})
        errors = [abs(g - r["target"]) for r in rows for g in r["achieved"]]
        sweep[name] = {
            "units": card.property_units[card.property_names.index(name)],
            "mae": mean_std(errors)["mean"],
            "n_finite": mean_std(errors)["n"],
            "targets": rows,
        }
    return sweep, structures


def evaluate(generator: AmorphousGenerator, references_path: str, args, say) -> dict:
    """All numbers of one model."""
    card = generator.card
    references, split = held_out_references(references_path, args.count, args.split)
    potential = true_potential(card.elements, args.calculator)
    calc = as_calculator(potential)
    say(f"{card.name}: {len(references)} {split} references from {references_path}, "
        f"true potential {potential}")

    generated, seconds = [], []
    for k, reference in enumerate(references):
        atoms, dt = generate_like(generator, reference, args, args.seed + k)
        generated.append(atoms)
        seconds.append(dt)
    counter: dict = {}
    with counting_unconverged(counter):
        relaxed_gen = [relax(a, calc, args.fmax, args.relax_steps) for a in generated]
        relaxed_ref = [relax(a, calc, args.fmax, args.relax_steps) for a in references]
    e_gen = [a.get_potential_energy() / len(a) for a in relaxed_gen]
    e_ref = [a.get_potential_energy() / len(a) for a in relaxed_ref]
    comparison = compare(generated, references)
    # What two independent reference sets of this size differ by: the RDF RMSD that
    # sampling noise alone gives (a model cannot be resolved below it).
    others = training_references(references_path, len(references))
    floor = rdf_rmsd(others, references) if split == "test" and others else float("nan")
    result = {
        "reference": references_path,
        "reference_split": split,
        "potential": potential,
        "n_generated": len(generated),
        "n_reference": len(references),
        "sampler": args.sampler,
        "steps": args.steps,
        "rdf_rmsd": comparison["rdf_rmsd"],
        "rdf_rmsd_floor": floor,
        "adf_rmsd": comparison["adf_rmsd"],
        "overlap": comparison["overlap"],
        "generated": comparison["generated"],
        "reference_summary": comparison["reference"],
        "relaxed_energy": {
            "generated": {**mean_std(e_gen), "values": e_gen},
            "reference": {**mean_std(e_ref), "values": e_ref},
            "gap": mean_std(e_gen)["mean"] - mean_std(e_ref)["mean"],
            "units": "eV/atom",
        },
        "time_per_structure_s": mean_std(seconds),
    }
    stored = [a.info["relaxed_energy"] for a in references if "relaxed_energy" in a.info]
    if stored:
        result["relaxed_energy"]["reference_stored"] = mean_std(stored)
    silica = sorted(card.elements) == ["O", "Si"]
    sweep_structures: list[Atoms] = []
    if any(p in card.property_names for p in SWEEP_PROPERTIES):
        result["target_sweep"], sweep_structures = target_sweep(
            generator, references_path, calc, args, counter)
    if silica:
        everything = generated + sweep_structures
        result["charge_balance_rate"] = float(np.mean([is_charge_balanced(a)
                                                       for a in everything]))
        result["charge_balance_n"] = len(everything)
    result["unconverged_relaxations"] = counter.get("unconverged", 0)
    png = Path(args.out) / f"generation_quality_{card.name}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    result["png"] = plot_report(generated, references, png, energies=e_gen,
                                reference_energies=e_ref)
    return result


def table(models: dict) -> str:
    headers = ["model", "n", "RDF RMSD", "RDF floor", "ADF RMSD", "coord gen", "coord ref",
               "overlap", "E gen", "E ref", "gap eV/at", "s/struct", "charge bal.", "MAE G",
               "MAE ring"]
    rows = []
    for name, r in models.items():
        sweep = r.get("target_sweep", {})
        rows.append([
            name, r["n_generated"], r["rdf_rmsd"], r["rdf_rmsd_floor"], r["adf_rmsd"],
            r["generated"]["coordination"], r["reference_summary"]["coordination"], r["overlap"],
            r["relaxed_energy"]["generated"]["mean"], r["relaxed_energy"]["reference"]["mean"],
            r["relaxed_energy"]["gap"], r["time_per_structure_s"]["mean"],
            r.get("charge_balance_rate"), sweep.get("shear_modulus", {}).get("mae"),
            sweep.get("ring_size", {}).get("mae"),
        ])
    return format_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    generators = load_generators(args.model, args.checkpoint, args.device)
    paths = reference_paths(generators, args.reference)
    models = {g.card.name: evaluate(g, path, args, say)
              for g, path in zip(generators, paths, strict=True)}
    data = {
        "benchmark": "generation_quality",
        "environment": environment(generators[0].device),
        "settings": {k: v for k, v in vars(args).items() if k not in ("quiet",)},
        "models": models,
    }
    for name, result in models.items():
        path = write_json(args.out, f"generation_quality_{name}.json",
                          {**data, "models": {name: result}})
        say(f"wrote {path}")
    say(table(models))
    return data


if __name__ == "__main__":
    main()
