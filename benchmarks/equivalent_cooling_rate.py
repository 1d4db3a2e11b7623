"""What a model is worth in MD time: its equivalent cooling rate, speed-up and value as a start.

1. Calibration: structures of melt-quench datasets made at known cooling rates (the rate of
   each is read from its protocol record, else from its ``cooling_rate`` column; a melt or
   an instant quench has no finite rate) are relaxed with the true potential in LAMMPS
   (conjugate gradients, positions, fixed cell, as the datasets' ``relaxed_energy``;
   Stillinger-Weber for Si) and compared with a reference set of the slowest
   cooled data (``--reference``): relaxed energy and RDF RMSD (to 5 Å in 100 bins, relaxed
   against relaxed and as made against as made) against the rate.
2. The model: ``--count`` structures generated in the reference cells (``--sampler``,
   ``--steps``; default the model card's), measured the same way. Its equivalent cooling
   rate interpolates log10(rate) against the mean relaxed energy on the calibration points of
   finite rate; its uncertainty is a bootstrap over the structures of every set. Outside the
   calibrated range the rate is given as a bound.
3. Speed-up: the LAMMPS wall time of the MD that makes a structure at that rate (the
   2500 K melt, the ramp to 300 K at that rate and 10 ps at 300 K, as ``a-Si-cool*`` and
   ``a-Si-anneal`` make their samples) over the generation time per structure. The MD time
   per step is measured here from a short LAMMPS run of the same cell in this process.
4. As an MD starting point: generated structures and melt snapshots (``--melt``) are cooled
   by NVT MD from 1100 K to 300 K (linear ramp) over each of ``--md-ps`` picoseconds, then
   relaxed; 0 ps relaxes the start as it is.

Writes ``equivalent_cooling_rate_<model>.json`` and ``.png`` into ``--out``. From the
repository root::

    python -m benchmarks.equivalent_cooling_rate --model a-Si --count 6 --md-ps 0 10 50
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_amden.analysis import rdf
from ase_amden.analysis.compare import RDF_NBINS, RDF_RMAX, rmsd
from ase_amden.data import AmorphousDataset, Protocol, Stage, run_stages
from ase_amden.errors import AmdenError

from .common import (
    add_common_arguments,
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
from .generation_quality import generate_like

#: The stored a-Si datasets, fastest to slowest cooled.
DEFAULT_CALIBRATION = tuple(
    f"datasets/a-Si-{name}.h5"
    for name in ("melt", "quench", "cool1000", "cool100", "cool10", "anneal")
)
#: The MD a structure at rate r costs: melt at 2500 K, ramp to 300 K at r, hold (ps).
MELT_PS, T_MELT_K, T_END_K, HOLD_PS = 20.0, 2500.0, 300.0, 10.0
#: Cooling MD of the starting-point arm: linear ramp, K.
START_T_K, END_T_K = 1100.0, 300.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, several_models=False)
    parser.add_argument("--calibration", nargs="+", default=list(DEFAULT_CALIBRATION),
                        help="datasets of known cooling rate (.h5)")
    parser.add_argument("--reference", default="datasets/a-Si-anneal.h5",
                        help="slow-cooled set the RDFs are compared with (first rows); "
                        "when also a calibration set, its calibration rows are its last ones")
    parser.add_argument("--melt", default="datasets/a-Si-melt.h5",
                        help="melt snapshots, the other MD starting point")
    parser.add_argument("--per-rate", type=int, default=None,
                        help="structures per calibration set (default 12)")
    parser.add_argument("--n-reference", type=int, default=None,
                        help="reference structures (default 20)")
    parser.add_argument("--count", type=int, default=None, help="generated structures (default 6)")
    parser.add_argument("--sampler", default=None, help="sampler (default: the model card's)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps")
    parser.add_argument("--md-ps", type=float, nargs="*", default=None,
                        help="cooling MD lengths of the starting-point arm, ps "
                        "(default 0 10 50 100; none: skip the arm)")
    parser.add_argument("--md-count", type=int, default=None,
                        help="starts of each kind in that arm (default: --count)")
    parser.add_argument("--timing-ps", type=float, default=None,
                        help="length of the LAMMPS run that times an MD step (default 4 ps)")
    parser.add_argument("--bootstrap", type=int, default=None,
                        help="bootstrap resamples (default 2000)")
    parser.add_argument("--calculator", help="true potential (default from the elements: sw-si)")
    parser.add_argument("--timestep-fs", type=float, default=2.0, help="MD timestep, fs")
    args = parser.parse_args(argv)
    defaults = {"per_rate": (12, 2), "n_reference": (20, 2), "count": (6, 2),
                "timing_ps": (4.0, 0.1), "bootstrap": (2000, 50),
                "md_ps": ([0.0, 10.0, 50.0, 100.0], [0.0, 0.1])}
    fill_defaults(args, defaults)
    if args.quick and args.steps is None:
        args.steps = 3
    args.md_count = args.md_count or args.count
    return args


def dataset_rate(dataset: AmorphousDataset) -> float:
    """Cooling rate of a dataset, K/ps: its protocol's fastest ramp, else the median of its
    ``cooling_rate`` column; ``inf`` for a melt or an instant quench (no ramp)."""
    if dataset.protocol:
        stages = Protocol.from_dict(dataset.protocol).stages
        rate = max(s.cooling_rate_K_per_ps for s in stages)
    elif "cooling_rate" in dataset.property_names:
        rate = float(np.median(dataset.properties("cooling_rate")))
    else:
        raise AmdenError(f"{dataset.path} has neither a protocol record nor a cooling_rate "
                         "column: its cooling rate is unknown; give datasets made by "
                         "`ase-amden dataset make` or imported with --property cooling_rate=R")
    return float(round(rate, 6)) if rate > 0 else math.inf


def md_seconds(rate: float, seconds_per_step: float, timestep_fs: float) -> dict:
    """LAMMPS wall time of the MD that makes one structure at ``rate`` K/ps, s."""
    ramp_ps = (T_MELT_K - T_END_K) / rate
    steps = (MELT_PS + ramp_ps + HOLD_PS) / (timestep_fs * 1e-3)
    return {"md_ps": MELT_PS + ramp_ps + HOLD_PS, "md_steps": steps,
            "md_s": steps * seconds_per_step,
            "ramp_only_s": ramp_ps / (timestep_fs * 1e-3) * seconds_per_step}


def seconds_per_md_step(atoms: Atoms, potential: str, stage: Stage, timestep_fs: float,
                        seed: int) -> float:
    """Wall seconds per LAMMPS MD step of ``atoms``, timed over one run of ``stage``."""
    start = time.perf_counter()
    run_stages(atoms, potential, [stage], timestep_fs=timestep_fs, seed=seed)
    return (time.perf_counter() - start) / (stage.duration_ps / (timestep_fs * 1e-3))


def time_md_step(atoms: Atoms, potential: str, args) -> float:
    """Seconds per MD step of this cell in LAMMPS, from a short 2500 K -> 300 K ramp."""
    stage = Stage("nvt", T_MELT_K, T_END_K, duration_ps=args.timing_ps)
    return seconds_per_md_step(atoms, potential, stage, args.timestep_fs, args.seed + 1)


def rdf_of(images: Sequence[Atoms]) -> np.ndarray:
    return rdf(list(images), RDF_RMAX, RDF_NBINS)[1]


def relaxed_set(structures: Sequence[Atoms], potential: str) -> tuple[list[float], list[Atoms]]:
    """Energies per atom (eV) after LAMMPS minimisation, and the minima."""
    minima = [run_stages(a, potential, [], relax=True) for a in structures]
    return [m.info["relaxed_energy"] for m in minima], minima


def measured(raw: list[Atoms], potential: str, reference_rdf: dict) -> dict:
    """Relaxed energies and RDF RMSDs (as made and relaxed) of a set against the reference."""
    energies, relaxed = relaxed_set(raw, potential)
    return {**mean_std(energies), "energies": energies,
            "rdf_rmsd_relaxed": rmsd(rdf_of(relaxed), reference_rdf["relaxed"]),
            "rdf_rmsd_raw": rmsd(rdf_of(raw), reference_rdf["raw"])}


def log_rate_at(energy: float, log_rates: np.ndarray, energies: np.ndarray) -> float:
    """log10 rate where the piecewise-linear calibration (fast to slow) reaches ``energy``.

    ``+inf`` above the fastest point's energy, ``-inf`` below the slowest one's (bounds).
    """
    order = np.argsort(-log_rates)
    x, y = log_rates[order], energies[order]
    if energy > y[0]:
        return math.inf
    for k in range(len(x) - 1):
        lo, hi = sorted((y[k], y[k + 1]))
        if lo <= energy <= hi:
            if y[k + 1] == y[k]:
                return float(x[k])
            return float(x[k] + (energy - y[k]) / (y[k + 1] - y[k]) * (x[k + 1] - x[k]))
    return -math.inf


def equivalent_rate(model_energies: Sequence[float], points: list[dict], n_boot: int,
                    seed: int) -> dict:
    """Equivalent cooling rate of a set of relaxed energies, with bootstrap percentiles."""
    finite = [p for p in points if math.isfinite(p["rate"])]
    if len(finite) < 2:
        raise AmdenError("the calibration needs at least two datasets of finite cooling rate")
    log_rates = np.log10([p["rate"] for p in finite])
    sets = [np.asarray(p["energies"], float) for p in finite]
    model = np.asarray(model_energies, float)
    central = log_rate_at(model.mean(), log_rates, np.array([s.mean() for s in sets]))
    rng = np.random.default_rng(seed)
    boot = np.array([
        log_rate_at(rng.choice(model, model.size).mean(), log_rates,
                    np.array([rng.choice(s, s.size).mean() for s in sets]))
        for _ in range(n_boot)
    ])
    p16, p50, p84 = np.percentile(boot, [16, 50, 84], method="nearest")  # inf: bounds

    def rate(log_rate: float):
        return 10.0**log_rate if math.isfinite(log_rate) else None

    bound = None
    if central == math.inf:
        bound = f"faster than {10 ** log_rates.max():g} K/ps (above its relaxed energy)"
    elif central == -math.inf:
        bound = f"slower than {10 ** log_rates.min():g} K/ps (below its relaxed energy)"
    return {"rate_K_per_ps": rate(central), "bound": bound,
            "bootstrap_16_50_84_K_per_ps": [rate(p16), rate(p50), rate(p84)],
            "bootstrap_fraction_faster_than_calibrated": float(np.mean(boot == math.inf)),
            "bootstrap_fraction_slower_than_calibrated": float(np.mean(boot == -math.inf)),
            "calibrated_rates_K_per_ps": [p["rate"] for p in finite], "n_bootstrap": n_boot}


def cooling_arm(starts: dict[str, list[Atoms]], potential: str, args, say) -> dict:
    """Relaxed energies of each kind of start after each length of 1100 K -> 300 K MD."""
    arm: dict = {"ramp_K": [START_T_K, END_T_K], "md_ps": list(args.md_ps), "starts": {}}
    for kind, structures in starts.items():
        rows = []
        for ps in args.md_ps:
            start = time.perf_counter()
            ramp = [Stage("nvt", START_T_K, END_T_K, duration_ps=ps)] if ps > 0 else []
            energies = [run_stages(a, potential, ramp, timestep_fs=args.timestep_fs,
                                   seed=args.seed + 1 + k, relax=True).info["relaxed_energy"]
                        for k, a in enumerate(structures)]
            rows.append({"md_ps": ps, **mean_std(energies), "energies": energies,
                         "md_s_per_structure": (time.perf_counter() - start) / len(structures)})
            say(f"{kind} start, {ps:g} ps of cooling MD: {rows[-1]['mean']:.4f} eV/atom")
        arm["starts"][kind] = rows
    kinds = list(arm["starts"])
    if len(kinds) == 2:
        arm["generated_minus_melt"] = [a["mean"] - b["mean"] for a, b in
                                       zip(*(arm["starts"][k] for k in kinds), strict=True)]
    return arm


def draw(path: Path, data: dict) -> str:
    """Relaxed energy and RDF RMSD against cooling rate; the MD starting-point arm."""
    from matplotlib.figure import Figure  # no pyplot: the global backend is left alone

    fig = Figure(figsize=(14, 4.5))
    ax_e, ax_r, ax_md = fig.subplots(1, 3)
    points = data["calibration"]
    finite = [p for p in points if p["rate"] is not None]
    top = max([p["rate"] for p in finite] + [1.0]) * 10  # where the no-rate sets are drawn
    model = data["generated"]
    for ax, key, label in ((ax_e, "mean", "relaxed energy (eV/atom)"),
                           (ax_r, "rdf_rmsd_relaxed", "RDF RMSD to reference (relaxed)")):
        ax.plot([p["rate"] for p in finite], [p[key] for p in finite], "o-", label="MD")
        for p in points:
            if p["rate"] is None:
                ax.plot([top], [p[key]], "s", label=f"{p['name']} (no ramp)")
        ax.axhline(model[key], color="C3", ls="--", label=data["model"])
        ax.set(xscale="log", xlabel="cooling rate (K/ps)", ylabel=label)
        ax.legend(fontsize=8)
    ax_e.errorbar([p["rate"] for p in finite], [p["mean"] for p in finite],
                  yerr=[p["std"] for p in finite], fmt="none", color="C0")
    rate = data["equivalent"]["rate_K_per_ps"]
    if rate is not None:
        ax_e.axvline(rate, color="C3", ls=":")
    ax_e.set_title(f"equivalent rate: {rate:.3g} K/ps" if rate else
                   f"equivalent rate: {data['equivalent']['bound']}", fontsize=9)
    arm = data.get("md_start")
    if arm:
        for kind, rows in arm["starts"].items():
            ax_md.errorbar([r["md_ps"] for r in rows], [r["mean"] for r in rows],
                           yerr=[r["std"] for r in rows], marker="o", capsize=3, label=kind)
        ax_md.set(xlabel="1100 K -> 300 K MD (ps)", ylabel="relaxed energy (eV/atom)",
                  title="as an MD starting point")
        ax_md.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return str(path)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    (generator,) = load_generators(args.model, args.checkpoint, args.device)
    card = generator.card
    potential = true_potential(card.elements, args.calculator)

    reference_set = AmorphousDataset(args.reference)
    if len(reference_set) < args.n_reference:
        raise AmdenError(f"{args.reference} holds {len(reference_set)} structures, fewer than "
                         f"--n-reference {args.n_reference}")
    references = [reference_set[i] for i in range(args.n_reference)]
    _, relaxed_references = relaxed_set(references, potential)
    reference_rdf = {"raw": rdf_of(references), "relaxed": rdf_of(relaxed_references)}

    cells = [references[k % len(references)] for k in range(args.count)]
    generated, seconds = [], []
    for k, cell in enumerate(cells):
        atoms, s = generate_like(generator, cell, args, args.seed + k,
                                 composition=cell.get_chemical_formula())
        generated.append(atoms)
        seconds.append(s)
    model = {**measured(generated, potential, reference_rdf),
             "time_per_structure_s": mean_std(seconds)}
    say(f"{card.name}: relaxed {model['mean']:.4f} eV/atom, RDF RMSD "
        f"{model['rdf_rmsd_relaxed']:.3f}, {model['time_per_structure_s']['mean']:.3g} s each")
    md_start = None
    if args.md_ps:
        melt = AmorphousDataset(args.melt)
        starts = {"generated": generated[: args.md_count],
                  "melt": [melt[i] for i in range(min(args.md_count, len(melt)))]}
        md_start = cooling_arm(starts, potential, args, say)

    points = []
    for path in args.calibration:
        dataset = AmorphousDataset(path)
        rows = list(range(len(dataset)))
        if Path(path).resolve() == Path(args.reference).resolve():  # not the references
            rows = rows[args.n_reference:][-args.per_rate:]
        else:
            rows = rows[: args.per_rate]
        if not rows:
            raise AmdenError(f"{path} has no structures left for the calibration")
        name = (dataset.protocol or {}).get("name") or Path(path).stem
        point = {"name": name, "path": path, "rate": dataset_rate(dataset),
                 **measured([dataset[i] for i in rows], potential, reference_rdf)}
        if "wall_time" in dataset.property_names:
            point["stored_wall_time_s"] = float(np.median(dataset.properties("wall_time")))
        if "relaxed_energy" in dataset.property_names:
            point["stored_relaxed_energy"] = float(
                np.mean(dataset.properties("relaxed_energy")[rows]))
        points.append(point)
        say(f"{name}: rate {point['rate']:g} K/ps, relaxed {point['mean']:.4f} eV/atom, "
            f"RDF RMSD {point['rdf_rmsd_relaxed']:.3f}")

    equivalent = equivalent_rate(model["energies"], points, args.bootstrap, args.seed)

    seconds_per_step = time_md_step(references[0], potential, args)
    finite_rates = [p["rate"] for p in points if math.isfinite(p["rate"])]
    rate = equivalent["rate_K_per_ps"]
    if rate is None:  # a bound: the MD at the nearest calibrated rate bounds the speed-up
        rate = max(finite_rates) if equivalent["bound"].startswith("faster") else min(finite_rates)
    md = md_seconds(rate, seconds_per_step, args.timestep_fs)
    generation_s = model["time_per_structure_s"]["mean"]
    speed = {"md_s_per_step": seconds_per_step, "n_atoms": len(references[0]),
             "rate_used_K_per_ps": rate, **md, "generation_s": generation_s,
             "speedup": md["md_s"] / generation_s,
             "speedup_is": ("an upper bound" if equivalent["bound"] and
                            equivalent["bound"].startswith("faster") else
                            "a lower bound" if equivalent["bound"] else "measured"),
             "md_s_at_calibrated_rates": {f"{r:g}": md_seconds(r, seconds_per_step,
                                                               args.timestep_fs)["md_s"]
                                          for r in finite_rates}}

    data = {
        "benchmark": "equivalent_cooling_rate",
        "model": card.name,
        "sampler": args.sampler or card.sampling.get("sampler", "sde"),
        "steps": args.steps or card.sampling.get("steps"),
        "environment": environment(generator.device),
        "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
        "potential": potential,
        "energy_units": "eV/atom",
        "reference": {"path": args.reference, "n": len(references)},
        "calibration": [{**p, "rate": p["rate"] if math.isfinite(p["rate"]) else None}
                        for p in points],
        "generated": model,
        "equivalent": equivalent,
        "speed": speed,
        "md_start": md_start,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"equivalent_cooling_rate_{card.name}"
    data["png"] = draw(out / f"{stem}.png", data)
    path = write_json(out, f"{stem}.json", data)

    say(format_table(
        ["set", "rate K/ps", "n", "E relaxed", "std", "RDF RMSD relaxed", "RDF RMSD raw"],
        [[p["name"], p["rate"], p["n"], p["mean"], p["std"], p["rdf_rmsd_relaxed"],
          p["rdf_rmsd_raw"]] for p in points]
        + [[card.name, equivalent["rate_K_per_ps"], model["n"], model["mean"], model["std"],
            model["rdf_rmsd_relaxed"], model["rdf_rmsd_raw"]]],
    ))
    low, mid, high = equivalent["bootstrap_16_50_84_K_per_ps"]
    say(f"equivalent cooling rate: {equivalent['rate_K_per_ps'] or equivalent['bound']} K/ps "
        f"(bootstrap 16/50/84 %: {low} / {mid} / {high})")
    say(f"MD at {rate:g} K/ps: {md['md_s']:.3g} s ({seconds_per_step * 1e3:.3g} ms/step); "
        f"generation {generation_s:.3g} s; speed-up {speed['speedup']:.3g} ({speed['speedup_is']})")
    if md_start and "generated_minus_melt" in md_start:
        say("generated - melt after " + ", ".join(
            f"{ps:g} ps: {d:+.4f}" for ps, d in zip(args.md_ps, md_start["generated_minus_melt"],
                                                    strict=True)) + " eV/atom")
    say(f"wrote {path}")
    return data


if __name__ == "__main__":
    main()
