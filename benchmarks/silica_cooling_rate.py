"""Silica across cooling rates: does a cooling-rate model make the glass of each rate?

For each target rate (the training rates of the dataset plus 0.01 and 1000 K/ps, DM2's
extrapolations) the model generates ``--count`` structures of ``--n-atoms`` SiO2 in a cubic
cell at the density the model's card fits for that rate, and each set is compared with the
data of that rate (all samples by default, the held-out split with ``--split test``):

- tetrahedral network: fraction of 4-fold Si and of 2-fold (bridging) O, Si-O bonds within
  2.0 Å (``ase_amden.analysis.network_metrics``);
- Si-O bond length, Si-O-Si and O-Si-O angle means and widths;
- ring-size distribution (Si rings of the Si-O network, bonds < 2.0 Å) and its mean;
- mass density and QUESTS information entropy of the environments;
- time per structure.

With ``--refine POTENTIAL`` the generated structures are also refined by short MD
(``ase_amden.refinement.refine``: NVT then NPT, DM2's last step) and measured again.
The data are the melt-quench MD that generation replaces (3,000 atoms, the Jakse potential,
DM2's protocol); with ``--md-potential NAME`` a short MD run of one data structure is timed in
the same run, giving the wall time of that melt-quench at each rate on this machine, and with
``--md-quench RATE`` a real melt-quench is run with that potential and measured beside the
generated glass (``--count 0`` runs the data and MD parts only).

Writes ``silica_cooling_rate_<model>.json`` and ``.png`` (Si-O-Si angle distributions and
ring statistics per rate) into ``--out``. From the repository root::

    python -m benchmarks.silica_cooling_rate --model a-SiO2-cooling \
        --dataset datasets/dm2-a-SiO2.h5 --count 3 --threads 2
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_amden.analysis import bond_angles, environment_entropy, network_metrics, ring_statistics
from ase_amden.cli.arguments import sampler_option, sampler_options
from ase_amden.data import AmorphousDataset
from ase_amden.generator import AmorphousGenerator
from ase_amden.training.batching import mass_density

from .common import (
    add_common_arguments,
    apply_threads,
    environment,
    format_table,
    load_generators,
    mean_std,
    reporter,
    write_json,
)

#: Si-O bond cutoff, Å (Yang and Schwalbe-Koda, rings and coordination).
BOND_CUTOFF = 2.0
#: Rates outside DM2's training range at which they test extrapolation, K/ps.
EXTRAPOLATED_RATES = (0.01, 1000.0)
MAX_RING = 12
#: DM2's melt-quench (seeds/004, Methods): 50 ps NVT + 50 ps NPT set-up, 50 ps melt at
#: 5000 K and 100 ps relaxation at 300 K (ps), and the cooling 5000 -> 300 K (K).
DM2_MELT_K, DM2_GLASS_K = 5000.0, 300.0
DM2_FIXED_PS, DM2_COOLING_K = 250.0, DM2_MELT_K - DM2_GLASS_K


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, several_models=False)
    parser.add_argument("--dataset", default="datasets/dm2-a-SiO2.h5",
                        help="dataset with a cooling_rate column (K/ps)")
    parser.add_argument("--split", choices=("all", "test"), default="test",
                        help="reference structures per rate: all samples or the held-out ones")
    parser.add_argument("--rates", type=float, nargs="*", default=None,
                        help="target rates, K/ps (default: the dataset's and 0.01, 1000)")
    parser.add_argument("--count", type=int, default=3, help="structures per rate")
    parser.add_argument("--n-atoms", type=int, default=3000, help="atoms per structure")
    parser.add_argument("--sampler", default=None, help="sampler (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps")
    parser.add_argument("--sampler-option", type=sampler_option, action="append", default=[],
                        metavar="K=V",
                        help="sampler option, e.g. extra_noise=0.5 (repeatable)")
    parser.add_argument("--refine", default=None, metavar="POTENTIAL",
                        help="also refine by short MD with this potential (e.g. jakse-sio2)")
    parser.add_argument("--refine-ps", type=float, nargs=2, default=(25.0, 25.0),
                        metavar=("NVT", "NPT"), help="refinement lengths, ps")
    parser.add_argument("--md-potential", default=None, metavar="POTENTIAL",
                        help="also time MD of a data structure with this potential (e.g. "
                        "jakse-sio2) and report the melt-quench time of each rate")
    parser.add_argument("--md-probe-ps", type=float, default=1.0,
                        help="length of that timing run (half NVT, half NPT), ps")
    parser.add_argument("--md-quench", type=float, default=None, metavar="RATE",
                        help="also melt-quench one data structure with --md-potential at RATE "
                        "K/ps and measure it as the generated glass")
    parser.add_argument("--md-quench-ps", type=float, nargs=2, default=(10.0, 10.0),
                        metavar=("MELT", "RELAX"),
                        help="NVT melt at 5000 K and NPT relaxation at 300 K of that run, ps")
    args = parser.parse_args(argv)
    if args.md_quench is not None and (args.md_potential is None or args.md_quench <= 0):
        parser.error("--md-quench needs a rate > 0 K/ps and --md-potential (e.g. jakse-sio2)")
    if args.count < 0:
        parser.error(f"--count must be >= 0, got {args.count}")
    if args.quick:
        args.count, args.n_atoms, args.steps = min(args.count, 1), 96, args.steps or 4
        args.rates = args.rates or [1.0]
    return args


def silica_metrics(images: Sequence[Atoms]) -> dict:
    """Network, angle, ring, density and entropy figures of a set of SiO2 structures."""
    network = network_metrics(images, cutoff=BOND_CUTOFF).as_dict()
    rings = ring_statistics(images, cutoff={"Si-O": BOND_CUTOFF}, count_elements="Si",
                            maxlength=MAX_RING)
    total = rings.sum()
    angles = np.concatenate([bond_angles(a, BOND_CUTOFF, (14, 8, 14)) for a in images])
    hist, _ = np.histogram(angles, bins=90, range=(90.0, 180.0), density=True)
    return {
        **network,
        "ring_distribution": (rings / total).tolist() if total else rings.tolist(),
        "ring_mean": float(np.arange(rings.size) @ rings / total) if total else math.nan,
        "density_g_cm3": mean_std([mass_density(a) for a in images]),
        "entropy_nats": environment_entropy(list(images)),
        "si_o_si_histogram": hist.tolist(),
    }


def references_by_rate(path: str, split: str) -> dict[float, list[Atoms]]:
    dataset = AmorphousDataset(path)
    rows = dataset.split_indices("test") if split == "test" else np.arange(len(dataset))
    rates = dataset.properties("cooling_rate")
    groups: dict[float, list[Atoms]] = {}
    for i in rows:
        groups.setdefault(float(rates[i]), []).append(dataset[int(i)])
    return dict(sorted(groups.items()))


def generate_set(generator: AmorphousGenerator, rate: float, args) -> tuple[list[Atoms], float]:
    kwargs = {"targets": {"cooling_rate": rate}, "n_atoms": args.n_atoms, "progress": False,
              "sampler_options": sampler_options(args.sampler_option) or None}
    if args.sampler:
        kwargs["sampler"] = args.sampler
    if args.steps:
        kwargs["steps"] = args.steps
    images, seconds = [], []
    for k in range(args.count):
        start = time.perf_counter()
        images += generator.generate(1, seed=args.seed + k, **kwargs)
        seconds.append(time.perf_counter() - start)
    return images, float(np.mean(seconds))


def refine_set(images: list[Atoms], args) -> tuple[list[Atoms], float]:
    from ase_amden.refinement import refine

    start = time.perf_counter()
    nvt, npt = args.refine_ps
    refined = [refine(a, args.refine, nvt_ps=nvt, npt_ps=npt, seed=args.seed + k,
                      verbose=False) for k, a in enumerate(images)]
    return refined, (time.perf_counter() - start) / len(images)


def md_cost(references: dict[float, list[Atoms]], args) -> dict:
    """Wall time of the melt-quench MD that the data of each rate took, on this machine.

    One stored structure (the fastest-cooled rate's, the size of the data) is run for
    ``--md-probe-ps`` ps of NVT then NPT with ``--md-potential``; the measured seconds per ps
    times the length of DM2's protocol (250 ps of set-up, melt and relaxation plus the cooling
    from 5000 to 300 K) gives the MD time per structure at each rate.
    """
    from ase_amden.refinement import refine

    rate = max(references)
    probe = args.md_probe_ps
    start = time.perf_counter()
    refine(references[rate][0], args.md_potential, nvt_ps=probe / 2, npt_ps=probe / 2,
           seed=args.seed, verbose=False)
    per_ps = (time.perf_counter() - start) / probe
    return {
        "potential": args.md_potential, "n_atoms": len(references[rate][0]),
        "seconds_per_ps": per_ps,
        "time_per_structure_s": {
            str(r): per_ps * (DM2_FIXED_PS + DM2_COOLING_K / r)
            for r in sorted({*references, *EXTRAPOLATED_RATES})
        },
    }


def md_quench(references: dict[float, list[Atoms]], args) -> dict:
    """A real melt-quench of one data structure (the fastest-cooled rate's), measured.

    DM2's steps, shortened where the structure is already forgotten: NVT at 5000 K for the
    melt (the mean-squared displacement shows it decorrelated), a linear NVT ramp 5000 -> 300 K
    at ``--md-quench`` K/ps at the starting density, then NPT at 300 K and 0 GPa
    (:func:`ase_amden.refinement.refine`); 1 fs steps.
    """
    from ase_amden.data import Stage, run_stages
    from ase_amden.refinement import refine

    melt_ps, relax_ps = args.md_quench_ps
    rate = args.md_quench
    start = references[max(references)][0]
    began = time.perf_counter()
    quenched = run_stages(start, args.md_potential,
                          [Stage("nvt", DM2_MELT_K, None, melt_ps, measure_msd=True),
                           Stage("nvt", DM2_MELT_K, DM2_GLASS_K, DM2_COOLING_K / rate)],
                          timestep_fs=1.0, seed=args.seed + 1)
    glass = refine(quenched, args.md_potential, nvt_ps=0.0, npt_ps=relax_ps,
                   temperature=DM2_GLASS_K, seed=args.seed, verbose=False)
    return {
        "rate": rate, "potential": args.md_potential, "n_atoms": len(start),
        "melt_ps": melt_ps, "relax_ps": relax_ps,
        "melt_msd_A2": quenched.info["melt_msd"],
        "time_per_structure_s": time.perf_counter() - began, "n": 1,
        "metrics": silica_metrics([glass]),
    }


def evaluate(generator: AmorphousGenerator, args, say) -> dict:
    references = references_by_rate(args.dataset, args.split)
    rates = args.rates or [*references, *EXTRAPOLATED_RATES]
    result: dict = {"data": {}, "generated": {}, "refined": {}}
    for rate, images in references.items():
        result["data"][str(rate)] = {"n": len(images), "metrics": silica_metrics(images)}
    for rate in rates if args.count else ():
        say(f"rate {rate:g} K/ps: generating {args.count} x {args.n_atoms} atoms")
        images, seconds = generate_set(generator, rate, args)
        result["generated"][str(rate)] = {
            "n": len(images), "time_per_structure_s": seconds,
            "metrics": silica_metrics(images),
        }
        if args.refine:
            refined, refine_s = refine_set(images, args)
            result["refined"][str(rate)] = {
                "n": len(refined), "time_per_structure_s": refine_s,
                "metrics": silica_metrics(refined),
            }
    if args.md_potential:
        say(f"MD cost with {args.md_potential}")
        result["md"] = md_cost(references, args)
    if args.md_quench is not None:
        say(f"melt-quench at {args.md_quench:g} K/ps with {args.md_potential}")
        result["md_quench"] = md_quench(references, args)
    return result


COLUMNS = [("4-fold Si", "former_fraction"), ("2-fold O", "anion_fraction"),
           ("Si-O Å", "bond_mean"), ("SiOSi °", "bridge_angle_mean"),
           ("SiOSi sd", "bridge_angle_std"), ("OSiO °", "tetra_angle_mean"),
           ("ring", "ring_mean"), ("entropy", "entropy_nats")]


def table(result: dict) -> str:
    rows = []
    md_time = result.get("md", {}).get("time_per_structure_s", {})
    for kind in ("data", "generated", "refined"):
        for rate, entry in result[kind].items():
            m = entry["metrics"]
            seconds = md_time.get(rate) if kind == "data" else entry.get("time_per_structure_s")
            rows.append([kind, rate, entry["n"], *(m[key] for _, key in COLUMNS),
                         m["density_g_cm3"]["mean"], seconds])
    quench = result.get("md_quench")
    if quench is not None:
        m = quench["metrics"]
        rows.append(["md-quench", str(quench["rate"]), quench["n"], *(m[key] for _, key in COLUMNS),
                     m["density_g_cm3"]["mean"], quench["time_per_structure_s"]])
    headers = ["set", "K/ps", "n", *(name for name, _ in COLUMNS), "g/cm3", "s/struct"]
    return format_table(headers, rows)


def plot(result: dict, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_angle, ax_ring) = plt.subplots(1, 2, figsize=(11, 4))
    centres = np.linspace(90.5, 179.5, 90)
    colours = plt.cm.viridis(np.linspace(0, 1, len(result["generated"])))
    for colour, (rate, entry) in zip(colours, result["generated"].items(), strict=True):
        m = entry["metrics"]
        ax_angle.plot(centres, m["si_o_si_histogram"], color=colour, label=f"gen {rate} K/ps")
        ax_ring.plot(range(len(m["ring_distribution"])), m["ring_distribution"], "o-",
                     color=colour, label=f"gen {rate}")
        data = result["data"].get(rate)
        if data is not None:
            ax_angle.plot(centres, data["metrics"]["si_o_si_histogram"], "--", color=colour)
            ax_ring.plot(range(len(data["metrics"]["ring_distribution"])),
                         data["metrics"]["ring_distribution"], "x--", color=colour)
    quench = result.get("md_quench")
    if quench is not None:
        m = quench["metrics"]
        ax_angle.plot(centres, m["si_o_si_histogram"], ":", color="k",
                      label=f"MD quench {quench['rate']:g} K/ps")
        ax_ring.plot(range(len(m["ring_distribution"])), m["ring_distribution"], "s:",
                     color="k", label=f"MD quench {quench['rate']:g}")
    ax_angle.set(xlabel="Si-O-Si angle (degrees)", ylabel="density",
                 title="generated (solid) vs MD data (dashed)")
    ax_ring.set(xlabel="ring size (Si atoms)", ylabel="fraction of rings", xlim=(2, MAX_RING))
    ax_angle.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    (generator,) = load_generators(args.model, args.checkpoint, args.device)
    result = evaluate(generator, args, say)
    name = generator.card.name
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result["png"] = plot(result, out / f"silica_cooling_rate_{name}.png")
    data = {
        "benchmark": "silica_cooling_rate",
        "model": name,
        "environment": environment(generator.device),
        "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
        **result,
    }
    say(f"wrote {write_json(out, f'silica_cooling_rate_{name}.json', data)}")
    say(table(result))
    return data


if __name__ == "__main__":
    main()
