"""Does an energy model's noise energy follow the true energy? (Whether HMC denoising can work.)

HMC denoising can only lower the true energy of a glass if the learned noise energy
E_hat(x, t) at small t is lower for better-relaxed structures and if going down E_hat goes
down the true energy too. For an energy-based model (``--model a-Si-energy``) and the melt,
quench and anneal reference sets this measures:

- ranking: E_hat per atom (kT units) of the clean reference structures at each ``--times``
  value; a faithful landscape orders melt > quench > anneal, as their true energies are;
- descent: each of ``--n-descent`` references of ``--descent-from`` (quench by default) is
  relaxed (FIRE) on E_hat at ``--descent-t`` with ``NoiseEnergyCalculator``, then locally with
  the true potential; the true relaxed energy before and after, against the anneal mean.
  Descent that lowers E_hat below the anneal references while the true energy rises means the
  network has minima that no real glass has: HMC denoising will find them.

Writes ``noise_landscape.json`` (``noise_landscape_<tag>.json`` with ``--tag``) into
``--out``. Minutes on a CPU.

Run on the shipped model (from the repository root)::

    python -m benchmarks.noise_landscape --model a-Si-energy --melt datasets/a-Si-melt.h5 \
        --quench datasets/a-Si-quench.h5 --anneal datasets/a-Si-anneal.h5
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ase.optimize import FIRE

from ase_amden.analysis import relaxed_energies
from ase_amden.analysis.relax import as_calculator
from ase_amden.calculators import NoiseEnergyCalculator
from ase_amden.errors import AmdenError

from .common import (
    add_common_arguments,
    apply_threads,
    counting_unconverged,
    environment,
    fill_defaults,
    format_table,
    held_out_references,
    load_energy_generator,
    mean_std,
    reporter,
    true_potential,
    write_json,
)

REFERENCE_SETS = ("melt", "quench", "anneal")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, several_models=False)
    for name in REFERENCE_SETS:
        parser.add_argument(f"--{name}", help=f"{name} reference dataset (.h5)")
    parser.add_argument("--calculator", help="true potential (default from the elements: sw-si)")
    parser.add_argument("--n-reference", type=int, default=None,
                        help="structures per reference set for the ranking (default 6)")
    parser.add_argument("--times", default="0.02,0.05,0.1",
                        help="comma-separated t values of the ranking")
    parser.add_argument("--descent-from", choices=REFERENCE_SETS, default="quench",
                        help="reference set the descent starts from")
    parser.add_argument("--n-descent", type=int, default=None,
                        help="structures relaxed on E_hat (default 2)")
    parser.add_argument("--descent-t", type=float, default=0.05, help="t of the descent")
    parser.add_argument("--descent-steps", type=int, default=None,
                        help="FIRE steps on E_hat (default 300)")
    parser.add_argument("--tag", default="",
                        help="suffix of the JSON name, noise_landscape_<tag>.json")
    parser.add_argument("--fmax", type=float, default=0.01,
                        help="force tolerance of the true-potential relaxation, eV/Å")
    args = parser.parse_args(argv)
    defaults = {"n_reference": (6, 1), "n_descent": (2, 1), "descent_steps": (300, 3)}
    fill_defaults(args, defaults)
    return args


def noise_energy_per_atom(structures, calc: NoiseEnergyCalculator) -> list[float]:
    """E_hat / atom of each structure (kT units)."""
    values = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calc
        values.append(atoms.get_potential_energy() / len(atoms))
    return values


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    generator = load_energy_generator(args)
    card = generator.card
    paths = {name: getattr(args, name) for name in REFERENCE_SETS if getattr(args, name)}
    if args.descent_from not in paths:
        raise AmdenError(f"--descent-from {args.descent_from} needs --{args.descent_from} DATASET")
    times = [float(t) for t in args.times.split(",")]
    true_calc = as_calculator(true_potential(card.elements, args.calculator))
    counter: dict = {}

    references = {name: held_out_references(path, args.n_reference)[0]
                  for name, path in paths.items()}
    with counting_unconverged(counter):
        true_energy = {name: mean_std(relaxed_energies(items, true_calc, fmax=args.fmax))
                       for name, items in references.items()}
    ranking = {}
    for t in times:
        calc = NoiseEnergyCalculator(generator, t=t)
        ranking[str(t)] = {name: mean_std(noise_energy_per_atom(items, calc))
                           for name, items in references.items()}
    ordered = [name for name in REFERENCE_SETS if name in paths]
    pairs = list(zip(ordered[:-1], ordered[1:], strict=True))
    ranked = {t: all(row[a]["mean"] > row[b]["mean"] for a, b in pairs)
              for t, row in ranking.items()}

    calc = NoiseEnergyCalculator(generator, t=args.descent_t)
    descents = []
    for atoms in references[args.descent_from][: args.n_descent]:
        moved = atoms.copy()
        moved.calc = calc
        before = moved.get_potential_energy() / len(moved)
        FIRE(moved, logfile=None).run(fmax=0.05, steps=args.descent_steps)
        after = moved.get_potential_energy() / len(moved)
        with counting_unconverged(counter):
            true_before, true_after = relaxed_energies([atoms, moved], true_calc, fmax=args.fmax)
        descents.append({"E_hat_before": before, "E_hat_after": after,
                         "true_before": float(true_before), "true_after": float(true_after)})
        say(f"descent: E_hat {before:.3f} -> {after:.3f}, "
            f"true {true_before:.4f} -> {true_after:.4f} eV/atom")
    change = [d["true_after"] - d["true_before"] for d in descents]
    data = {
        "benchmark": "noise_landscape",
        "model": card.name,
        "environment": environment(generator.device),
        "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
        "potential": true_potential(card.elements, args.calculator),
        "units": {"E_hat": "kT per atom", "true": "eV/atom"},
        "true_relaxed_energy": true_energy,
        "ranking": ranking,
        "ranked_like_true_energy": ranked,
        "descent": {"from": args.descent_from, "t": args.descent_t, "runs": descents,
                    "true_change": mean_std(change)},
        "unconverged_relaxations": counter.get("unconverged", 0),
    }
    name = "_".join(filter(None, ("noise_landscape", args.tag)))
    path = write_json(args.out, f"{name}.json", data)
    say(format_table(
        ["set", "true E eV/atom"] + [f"E_hat t={t}" for t in ranking],
        [[name, true_energy[name]["mean"]] + [ranking[t][name]["mean"] for t in ranking]
         for name in ordered],
    ))
    say(f"ranked like the true energy: {ranked}")
    say(f"descent on E_hat at t={args.descent_t} from {args.descent_from}: true energy change "
        f"{data['descent']['true_change']['mean']:+.4f} eV/atom "
        f"(anneal reference {true_energy.get('anneal', {}).get('mean')})")
    say(f"wrote {path}")
    return data


if __name__ == "__main__":
    main()
