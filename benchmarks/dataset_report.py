"""Per-protocol statistics of the datasets made by the toolkit.

For each HDF5 dataset: samples, cost per sample (LAMMPS wall time), mean potential
and relaxed energy per atom, mass and number density, mean coordination (first
RDF minimum: Si-Si 2.9 Å for a-Si; Si-O 2.0 Å for silica), melt decorrelation
(mean-squared displacement during the melt) and, for silica, the ranges of shear
modulus and average ring size.

Run::

    python benchmarks/dataset_report.py datasets/*.h5 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from ase_amden.analysis import coordination
from ase_amden.data import AmorphousDataset


def report(path: str) -> dict:
    ds = AmorphousDataset(path)
    images = list(ds)
    symbols = set(images[0].get_chemical_symbols()) if images else set()
    cutoff, pair = (2.0, "Si-O") if "O" in symbols else (2.9, None)
    row = {
        "dataset": os.path.basename(path),
        "protocol": ds.protocol.get("name", ""),
        "samples": len(ds),
        "held_out": int(len(ds.split_indices("test"))),
        "coordination": float(coordination(images, cutoff=cutoff, pair=pair).mean),
        "coordination_rule": f"{pair or 'Si-Si'} < {cutoff} Å",
    }
    for name in ds.property_names:
        values = ds.properties(name)
        row[name] = {"mean": float(np.mean(values)), "std": float(np.std(values)),
                     "min": float(np.min(values)), "max": float(np.max(values))}
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    rows = [report(path) for path in args.datasets]
    head = (f"{'protocol':<13}{'n':>5}{'s/sample':>10}{'E_relax eV/at':>15}{'rho g/cm3':>10}"
            f"{'CN':>6}{'MSD Å2':>8}{'G GPa':>14}{'ring size':>12}")
    print(head)
    for r in rows:
        g, ring = r.get("shear_modulus"), r.get("ring_size")
        g_range = f"{g['min']:.1f}-{g['max']:.1f}" if g else "-"
        ring_range = f"{ring['min']:.2f}-{ring['max']:.2f}" if ring else "-"
        print(f"{r['protocol']:<13}{r['samples']:>5}{r['wall_time']['mean']:>10.1f}"
              f"{r['relaxed_energy']['mean']:>9.4f}±{r['relaxed_energy']['std']:<5.3f}"
              f"{r['density']['mean']:>10.2f}{r['coordination']:>6.2f}"
              f"{r['melt_msd']['mean']:>8.1f}"
              f"{g_range:>14}{ring_range:>12}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "dataset_report.json"), "w") as f:
        json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
