"""Exploring on the learned landscape plus the true potential, against plain MD of the same cost.

Descending an energy model's noise energy alone lowers E_hat but not the true energy
(``benchmarks/noise_landscape.py``): the network has minima no real glass has. Here the
exploration runs on ``E_pot + lambda kT E_hat`` (``ase.calculators.mixing.
LinearCombinationCalculator`` of the true potential and
:class:`~ase_amden.calculators.NoiseEnergyCalculator` at ``--t``, with ``kT`` at
``--temperature``): the classical potential keeps each step physical while the learned term
pulls towards what the model ranks as better relaxed. From each of ``--n`` structures of
``--start`` (held-out rows first), three arms at ``--temperature`` (ASE Langevin, friction
0.01 /fs, ``--timestep-fs``), each followed by a LAMMPS minimisation with the true potential:

- ``guided``: ``--steps`` steps on the mixed landscape;
- ``plain_same_steps``: ``--steps`` steps on the true potential alone (ASE, the same loop);
- ``plain_same_time``: the true potential in LAMMPS itself, for as many steps as fit in
  the wall time the guided arm took (what the same CPU time buys in plain MD).

Writes ``guided_exploration.json`` into ``--out``. From the repository root::

    python -m benchmarks.guided_exploration --model a-Si-energy --start datasets/a-Si-quench.h5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
from ase import units
from ase.calculators.mixing import LinearCombinationCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from ase_amden.analysis.relax import as_calculator
from ase_amden.calculators import NoiseEnergyCalculator
from ase_amden.data import Stage, run_stages

from .common import (
    add_common_arguments,
    apply_threads,
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
from .equivalent_cooling_rate import relaxed_set, seconds_per_md_step

ARMS = ("start", "guided", "plain_same_steps", "plain_same_time")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, several_models=False)
    parser.add_argument("--start", required=True, help="dataset of starting structures (.h5)")
    parser.add_argument("--n", type=int, default=None, help="starting structures (default 2)")
    parser.add_argument("--steps", type=int, default=None, help="MD steps (default 1000)")
    parser.add_argument("--temperature", type=float, default=1000.0, help="K")
    parser.add_argument("--timestep-fs", type=float, default=2.0, help="fs")
    parser.add_argument("--t", type=float, default=0.05, help="diffusion time of E_hat")
    parser.add_argument("--weight", type=float, default=1.0,
                        help="lambda: weight of E_hat in units of kT at --temperature")
    parser.add_argument("--calculator", default=None, help="true potential (default sw-si)")
    args = parser.parse_args(argv)
    defaults = {"n": (2, 1), "steps": (1000, 3)}
    fill_defaults(args, defaults)
    return args


def langevin(atoms, calc, args, seed: int) -> float:
    """Run ``args.steps`` of Langevin MD on ``calc`` in place; return the seconds taken."""
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=rng)
    dynamics = Langevin(atoms, args.timestep_fs * units.fs, temperature_K=args.temperature,
                        friction=0.01 / units.fs, fixcm=False, rng=rng)
    start = time.perf_counter()
    dynamics.run(args.steps)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    generator = load_energy_generator(args)
    card = generator.card
    potential = true_potential(card.elements, args.calculator)
    kT = units.kB * args.temperature  # eV
    starts = held_out_references(args.start, args.n)[0][: args.n]
    rows = []
    for k, atoms in enumerate(starts):
        guided = atoms.copy()
        mixed = LinearCombinationCalculator(
            [as_calculator(potential), NoiseEnergyCalculator(generator, t=args.t)],
            [1.0, args.weight * kT])
        seconds = langevin(guided, mixed, args, args.seed + k)
        plain = atoms.copy()
        plain_seconds = langevin(plain, as_calculator(potential), args, args.seed + k)
        energies, _ = relaxed_set([atoms, guided, plain], potential)
        row = dict(zip(ARMS[:3], energies, strict=True))  # start, guided, plain_same_steps
        row["guided_s"], row["plain_same_steps_s"] = seconds, plain_seconds
        # LAMMPS steps that fit in the guided arm's wall time, from a timed probe run
        probe_steps = max(10, args.steps // 10)
        stage = Stage("nvt", args.temperature, duration_ps=probe_steps * args.timestep_fs * 1e-3)
        per_step = seconds_per_md_step(atoms, potential, stage, args.timestep_fs,
                                       args.seed + k + 1)
        same_time_steps = max(1, int(seconds / per_step))
        stage = Stage("nvt", args.temperature,
                      duration_ps=same_time_steps * args.timestep_fs * 1e-3)
        moved = run_stages(atoms, potential, [stage], timestep_fs=args.timestep_fs,
                           seed=args.seed + k + 1, relax=True)
        row["plain_same_time"] = float(moved.info["relaxed_energy"])
        row["plain_same_time_steps"] = same_time_steps
        rows.append(row)
        say(f"structure {k}: " + ", ".join(f"{a} {row[a]:.4f}" for a in ARMS) + " eV/atom")
    summary = {arm: mean_std([row[arm] for row in rows]) for arm in ARMS}
    data = {
        "benchmark": "guided_exploration", "model": card.name,
        "environment": environment(generator.device),
        "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
        "potential": potential, "energy_units": "eV/atom", "kT_eV": kT,
        "structures": rows, "summary": summary,
    }
    path = write_json(args.out, "guided_exploration.json", data)
    say(format_table(["arm", "relaxed E (eV/atom)", "std", "n"],
                     [[arm, s["mean"], s["std"], s["n"]] for arm, s in summary.items()]))
    say(f"wrote {path}")
    return data


if __name__ == "__main__":
    main()
