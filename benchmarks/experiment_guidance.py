"""Blind test of S(q) guidance: match the noisy X-ray S(q) of a held-out a-Si structure.

The target is a test-split structure of ``datasets/a-Si-quench.h5`` (another thermal history
than the anneal data the shipped ``a-Si`` model learned). Its X-ray S(q) with Gaussian noise
is the "experiment". Compared: unguided generation, guided generation
(``observables={"structure_factor": ...}``) and a plain reverse Monte Carlo (RMC) fit from
random positions with a 2.0 Å hard-sphere cut. Reported for each against the hidden truth:
S(q) R-factor, RDF and ADF RMSD, mean ring size and relaxed Stillinger-Weber energy.

Run: ``nice -n 19 python -m benchmarks.experiment_guidance --count 2 --steps 30``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_amden import AmorphousGenerator
from ase_amden.analysis import adf, average_ring_size, rdf, relaxed_energy
from ase_amden.analysis.scattering import rfactor, structure_factor
from ase_amden.analysis.validation import largest_rmax
from ase_amden.data import AmorphousDataset

DATASET = Path(__file__).parents[1] / "datasets" / "a-Si-quench.h5"


def rmc(truth: Atoms, q, s_q, noise: float, moves: int, seed: int) -> Atoms:
    """Plain RMC: single-atom moves of 0.2 Å, accepted with exp(-delta chi^2 / 2)."""
    rng = np.random.default_rng(seed)
    atoms = truth.copy()
    atoms.positions = rng.uniform(0, 1, (len(atoms), 3)) @ atoms.cell.array
    chi2 = np.sum((structure_factor(atoms, q) - s_q) ** 2) / noise**2
    for _ in range(moves):
        i = rng.integers(len(atoms))
        old = atoms.positions[i].copy()
        atoms.positions[i] = old + rng.normal(0, 0.2, 3)
        if np.delete(atoms.get_distances(i, range(len(atoms)), mic=True), i).min() < 2.0:
            atoms.positions[i] = old
            continue
        trial = np.sum((structure_factor(atoms, q) - s_q) ** 2) / noise**2
        if trial < chi2 or rng.random() < np.exp(-(trial - chi2) / 2):
            chi2 = trial
        else:
            atoms.positions[i] = old
    atoms.wrap()
    return atoms


def measures(images: list[Atoms], truth: Atoms, q, s_q) -> dict:
    """R-factor to the noisy S(q) and distances to the hidden truth."""
    _, g_true = rdf(truth, rmax=6.0, nbins=120)
    _, a_true = adf(truth, cutoff=2.8, nbins=60)
    return {
        "rfactor": float(np.mean([rfactor(structure_factor(a, q), s_q) for a in images])),
        "rdf_rmsd": float(np.mean([np.sqrt(np.mean((rdf(a, 6.0, 120)[1] - g_true) ** 2))
                                   for a in images])),
        "adf_rmsd": float(np.mean([np.sqrt(np.mean((adf(a, 2.8, 60)[1] - a_true) ** 2))
                                   for a in images])),
        "mean_ring_size": float(average_ring_size(images, cutoff=2.8)),
        "relaxed_energy_eV_per_atom": float(relaxed_energy(images, "sw-si", fmax=0.05)),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--noise", type=float, default=0.01, help="S(q) noise (std)")
    parser.add_argument("--rmc-moves", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/experiment_guidance.json")
    args = parser.parse_args(argv)

    truth = AmorphousDataset(DATASET).subset("test")[0]
    q = np.linspace(2 * np.pi / largest_rmax([truth]) + 0.05, 12.0, 80)
    rng = np.random.default_rng(args.seed)
    s_q = structure_factor(truth, q) + rng.normal(0, args.noise, q.size)
    generator = AmorphousGenerator.pretrained("a-Si", device="cpu")
    common = dict(cell=truth.cell.array, n_atoms=len(truth), steps=args.steps,
                  seed=args.seed + 1, progress=False)
    results, timings = {}, {}
    start = time.perf_counter()
    runs = {
        "unguided": lambda: generator.generate(args.count, **common),
        "guided": lambda: generator.generate(
            args.count, observables={"structure_factor": (q, s_q)}, **common),
        "rmc": lambda: [rmc(truth, q, s_q, args.noise, args.rmc_moves, args.seed + k)
                        for k in range(args.count)],
    }
    for name, run in runs.items():
        start = time.perf_counter()
        images = run()
        timings[name] = time.perf_counter() - start
        results[name] = measures(images, truth, q, s_q)
    results["truth"] = measures([truth], truth, q, s_q)
    header = ("method", "R", "RDF", "ADF", "ring", "E_relax", "s")
    print("{:10s} {:>7s} {:>7s} {:>8s} {:>6s} {:>9s} {:>6s}".format(*header))
    for name, r in results.items():
        print(f"{name:10s} {r['rfactor']:7.3f} {r['rdf_rmsd']:7.3f} {r['adf_rmsd']:8.4f} "
              f"{r['mean_ring_size']:6.2f} {r['relaxed_energy_eV_per_atom']:9.4f} "
              f"{timings.get(name, 0.0):6.0f}")
    report = {"args": vars(args), "results": results, "seconds": timings}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
