"""Seam quality of inpainting: a-Si generated on a fixed crystalline Si slab.

For the generated atoms within ``--seam`` Å of a fixed atom (the seam) and for bulk a-Si
generated without a template at the same density, compares the coordination (neighbours
within 2.85 Å, the first minimum of a-Si's g(r)) and the bond-length distribution, as
generated and after relaxing the free atoms with Stillinger-Weber (the fixed atoms stay
fixed). Also checks that the fixed atoms moved by exactly zero.

Run: ``nice -n 19 python -m benchmarks.inpainting --count 2 --steps 50``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.constraints import FixAtoms
from ase.neighborlist import neighbor_list

from ase_amden import AmorphousGenerator
from ase_amden.analysis import relax
from ase_amden.diffusion.inpainting import min_distances

CUTOFF = 2.85  # Å, first minimum of a-Si g(r)


def bonds(atoms: Atoms, select: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordination numbers and bond lengths (Å) of the selected atoms."""
    i, d = neighbor_list("id", atoms, CUTOFF)
    keep = select[i]
    return np.bincount(i, minlength=len(atoms))[select], d[keep]


def stats(coordination: list[np.ndarray], lengths: list[np.ndarray]) -> dict:
    c, b = np.concatenate(coordination), np.concatenate(lengths)
    return {"atoms": int(c.size), "coordination": float(c.mean()),
            "fraction_4fold": float(np.mean(c == 4)), "bond_mean": float(b.mean()),
            "bond_std": float(b.std())}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seam", type=float, default=3.0, help="seam width, Å")
    parser.add_argument("--min-distance", type=float, default=2.1,
                        help="closest generated-fixed distance, Å (the a-Si training data's "
                        "shortest Si-Si distance is 2.17 Å)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/inpainting.json")
    args = parser.parse_args(argv)

    generator = AmorphousGenerator.pretrained("a-Si", device="cpu")
    slab = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 1))
    slab.cell[2, 2] = 5.43 * 3
    slab.pbc = True
    slab.set_constraint(FixAtoms(indices=range(len(slab))))
    grown = generator.generate(args.count, template=slab, steps=args.steps, seed=args.seed,
                               min_distance=args.min_distance, progress=False)
    n_free = len(grown[0]) - len(slab)
    reference = generator.generate(args.count, cell=slab.cell.array, n_atoms=len(grown[0]),
                                   steps=args.steps, seed=args.seed + 100, progress=False)
    sw = "sw-si"
    results = {"pushed_to_min_distance": [a.info["inpainting_pushed"] for a in grown],
               "closest_before_push": [a.info["inpainting_min_distance"] for a in grown],
               "fixed_max_displacement": float(max(
        np.abs(a.positions[: len(slab)] - slab.positions).max() for a in grown))}
    for stage in ("generated", "relaxed"):
        images = grown if stage == "generated" else [relax(a, sw, fmax=0.05) for a in grown]
        bulk_images = reference if stage == "generated" else [
            relax(a, sw, fmax=0.05) for a in reference]
        if stage == "relaxed":
            results["fixed_max_displacement_relaxed"] = float(max(
                np.abs(a.positions[: len(slab)] - slab.positions).max() for a in images))
        seam_c, seam_b = [], []
        for atoms in images:
            near = np.zeros(len(atoms), dtype=bool)
            near[len(slab):] = min_distances(atoms.positions[len(slab):], slab.positions,
                                             atoms.cell.array) < args.seam
            c, b = bonds(atoms, near)
            seam_c.append(c)
            seam_b.append(b)
        bulk_c, bulk_b = zip(*(bonds(a, np.ones(len(a), dtype=bool)) for a in bulk_images),
                             strict=True)
        seam, bulk_stats = stats(seam_c, seam_b), stats(list(bulk_c), list(bulk_b))
        seam["coordination_vs_bulk_percent"] = 100 * (
            seam["coordination"] / bulk_stats["coordination"] - 1)
        results[stage] = {"seam": seam, "bulk": bulk_stats}
    print(f"{len(slab)} fixed + {n_free} generated atoms, fixed atoms moved "
          f"{results['fixed_max_displacement']} Å (relaxed: "
          f"{results['fixed_max_displacement_relaxed']} Å); generated atoms pushed out to "
          f"{args.min_distance} Å: {results['pushed_to_min_distance']} (closest before: "
          f"{results['closest_before_push']})")
    print(f"{'stage':10s} {'region':6s} {'atoms':>6s} {'coord':>6s} {'4-fold':>7s} "
          f"{'bond':>6s} {'std':>6s} {'dCN%':>6s}")
    for stage in ("generated", "relaxed"):
        for region in ("seam", "bulk"):
            r = results[stage][region]
            print(f"{stage:10s} {region:6s} {r['atoms']:6d} {r['coordination']:6.3f} "
                  f"{r['fraction_4fold']:7.3f} {r['bond_mean']:6.3f} {r['bond_std']:6.3f} "
                  f"{r.get('coordination_vs_bulk_percent', 0.0):6.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
