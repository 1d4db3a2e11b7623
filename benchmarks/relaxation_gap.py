"""The relaxation gap (AMDEN Fig. 3): standard versus HMC denoising of an energy-based a-Si model.

Measures, for an energy-based model (``--model a-Si-energy``) and the melt, quench and anneal
reference datasets:

- potential energy per atom after local relaxation (positions, fixed cell; Stillinger-Weber
  by default) of the reference sets, of structures from standard denoising (``--sampler``,
  ``sde`` by default) and from HMC denoising (sampler ``hmc``, ``--hmc-steps``, AMDEN: 2000),
  and the gaps between them; generation uses the cells and atom counts of the references;
- RDFs (to 5 Å, 100 bins) of all of them after relaxation;
- the noise energy E_hat (kT units, per structure) along t: for forward noising of the
  reference structures (``--energy-reference`` set), and along the standard and HMC
  trajectories (E_hat re-evaluated on the states the network saw during sampling);
- cost: seconds of HMC denoising of one structure (batch 1) against a LAMMPS 1 K/ps
  melt-quench of the same cell (``a-Si-anneal`` protocol, run here, about 8 minutes, or the
  median stored ``wall_time`` of ``--lammps-time-from DATASET.h5``), and where HMC denoising
  spends its time: network energy and forces (forward calls timed, the force backward passes
  timed by autograd hooks) against the rest (sampler arithmetic, HMC bookkeeping).

Cost: HMC denoising of one 256-atom cell at 2000 steps evaluates the network about 18,000
times; on a CPU that is many minutes per structure, so use ``--device cuda`` or a smaller
``--count`` for a first look.

Writes ``relaxation_gap.json`` and ``relaxation_gap.png`` into ``--out``.

Run on the shipped model (from the repository root)::

    python -m benchmarks.relaxation_gap --model a-Si-energy --melt datasets/a-Si-melt.h5 \
        --quench datasets/a-Si-quench.h5 --anneal datasets/a-Si-anneal.h5 \
        --lammps-time-from datasets/a-Si-anneal.h5
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from ase_amden.analysis import rdf, relax
from ase_amden.analysis.compare import RDF_NBINS, RDF_RMAX
from ase_amden.analysis.relax import MAX_STEPS, as_calculator
from ase_amden.data import AmorphousDataset, get_protocol, run_protocol
from ase_amden.diffusion import (
    SAMPLERS,
    ElementSchedule,
    PositionSchedule,
    forward_noise,
    torch_generator,
)
from ase_amden.errors import AmdenError
from ase_amden.generator import AmorphousGenerator
from ase_amden.training import collate

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
    synchronize,
    true_potential,
    write_json,
)

REFERENCE_SETS = ("melt", "quench", "anneal")
HMC = "hmc"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, several_models=False)
    for name in REFERENCE_SETS:
        parser.add_argument(f"--{name}", help=f"{name} reference dataset (.h5)")
    parser.add_argument("--calculator", help="true potential (default from the elements: sw-si)")
    parser.add_argument("--n-reference", type=int, default=None,
                        help="held-out structures per reference set (default 10)")
    parser.add_argument("--count", type=int, default=None,
                        help="structures per sampler (default 10)")
    parser.add_argument("--sampler", default="sde", help="standard sampler: sde or ode")
    parser.add_argument("--steps", type=int, default=None, help="standard steps (default 200)")
    parser.add_argument("--hmc-steps", type=int, default=None,
                        help="HMC denoising steps (default 2000)")
    parser.add_argument("--energy-reference", choices=REFERENCE_SETS, default=None,
                        help="set noised forward for E_hat(t) (default anneal, else the first)")
    parser.add_argument("--n-times", type=int, default=None,
                        help="times of the forward-noising E_hat curve (default 25)")
    parser.add_argument("--trajectory-points", type=int, default=None,
                        help="E_hat evaluations along each denoising trajectory (default 50)")
    parser.add_argument("--lammps-time-from", help="read LAMMPS wall_time from this dataset")
    parser.add_argument("--lammps-index", type=int, default=0,
                        help="sample index of the a-Si-anneal run timed here")
    parser.add_argument("--no-lammps", action="store_true", help="skip the LAMMPS timing")
    parser.add_argument("--relax-steps", type=int, default=None,
                        help=f"optimizer steps per relaxation (default {MAX_STEPS})")
    parser.add_argument("--fmax", type=float, default=0.01, help="relaxation force tolerance")
    args = parser.parse_args(argv)
    defaults = {"n_reference": (10, 1), "count": (10, 1), "steps": (200, 3),
                "hmc_steps": (2000, 3), "n_times": (25, 4), "trajectory_points": (50, 4),
                "relax_steps": (MAX_STEPS, 20)}
    fill_defaults(args, defaults)
    if args.quick and not args.lammps_time_from:
        args.no_lammps = True  # the melt-quench takes minutes
    return args


class NetworkProbe:
    """Time (and sample the inputs of) a denoiser's calls while installed.

    ``forward`` calls (the denoising steps) and ``energy`` calls (HMC energy and forces)
    are timed; the backward pass through an ``energy`` call that gives the forces is timed
    from the gradient reaching the energy to the gradient reaching the positions (autograd
    tensor hooks). Every ``record_every``-th forward call's inputs are kept for re-evaluating
    E_hat afterwards.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, record_every: int):
        self.model, self.device, self.record_every = model, device, max(1, record_every)
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.records: list[dict] = []
        self._backward_start = 0.0

    def __enter__(self) -> NetworkProbe:
        forward, energy = self.model.forward, self.model.energy
        forward_signature = inspect.signature(forward)
        energy_signature = inspect.signature(energy)

        def timed_forward(*args, **kwargs):
            self._maybe_record(forward_signature.bind(*args, **kwargs).arguments)
            return self._timed("forward", forward, args, kwargs)

        def timed_energy(*args, **kwargs):
            positions = energy_signature.bind(*args, **kwargs).arguments["positions"]
            if positions.requires_grad and positions.is_leaf:
                positions.register_hook(self._backward_end)
            out = self._timed("energy", energy, args, kwargs)
            if out.requires_grad:
                out.register_hook(self._backward_begin)
            return out

        self.model.forward, self.model.energy = timed_forward, timed_energy
        return self

    def __exit__(self, *exc) -> None:
        del self.model.forward, self.model.energy  # back to the class methods

    def _timed(self, name: str, function, args, kwargs):
        synchronize(self.device)
        start = time.perf_counter()
        out = function(*args, **kwargs)
        synchronize(self.device)
        self.seconds[name] += time.perf_counter() - start
        self.calls[name] += 1
        return out

    def _backward_begin(self, _grad):
        synchronize(self.device)
        self._backward_start = time.perf_counter()

    def _backward_end(self, _grad):
        synchronize(self.device)
        self.seconds["energy_backward"] += time.perf_counter() - self._backward_start
        self.calls["energy_backward"] += 1

    def _maybe_record(self, arguments: dict) -> None:
        if self.calls["forward"] % self.record_every:
            return
        keep = ("positions", "elements", "cell", "system_idx", "t", "properties",
                "property_mask")
        self.records.append({k: arguments[k].detach().clone()
                             if isinstance(arguments.get(k), torch.Tensor) else arguments.get(k)
                             for k in keep})

    @property
    def network_seconds(self) -> float:
        """Seconds inside the network: forward calls, energy calls and force backward passes."""
        return sum(self.seconds.values())


def noise_energies(model, records: list[dict]) -> list[tuple[float, float]]:
    """``(t, mean E_hat)`` of recorded network inputs (t = 0, where E_hat diverges, skipped)."""
    points = []
    with torch.no_grad():
        for r in records:
            t = r["t"] if isinstance(r["t"], torch.Tensor) else torch.tensor([float(r["t"])])
            if float(t.max()) <= 0.0:
                continue
            energy = model.energy(r["positions"], r["elements"], r["cell"], r["system_idx"],
                                  r["t"], r["properties"], r["property_mask"])
            points.append((float(t.mean()), float(energy.mean())))
    return points


def average_curve(runs: list[list[tuple[float, float]]]) -> dict:
    """Average E_hat over runs at equal t."""
    by_t = defaultdict(list)
    for run in runs:
        for t, e in run:
            by_t[round(t, 10)].append(e)
    ts = sorted(by_t, reverse=True)
    return {"t": ts, "E_hat": [float(np.mean(by_t[t])) for t in ts],
            "E_hat_std": [float(np.std(by_t[t])) for t in ts], "n_runs": len(runs)}


def forward_curve(generator: AmorphousGenerator, structures: list[Atoms], n_times: int,
                  seed: int) -> dict:
    """Mean E_hat of the structures noised forward to each t in [0.01, 0.99]."""
    card, model = generator.card, generator.model
    batch = collate(structures, card.elements).to(generator.device, generator.dtype)
    rng = torch_generator(seed, generator.device)
    pos_schedule = PositionSchedule(card.sigma_x_max)
    el_schedule = ElementSchedule(card.sigma_e_max)
    ts = np.linspace(0.99, 0.01, n_times)
    energies = []
    with torch.no_grad():
        for t in ts:
            tb = torch.full((batch.n_systems,), float(t), dtype=generator.dtype,
                            device=generator.device)
            noised = forward_noise(batch.positions, batch.elements, batch.cell, batch.system_idx,
                                   tb, pos_schedule, el_schedule, rng)
            energy = model.energy(noised.positions, noised.elements, batch.cell,
                                  batch.system_idx, tb)
            energies.append(energy.cpu().numpy())
    energies = np.array(energies)
    return {"t": ts.tolist(), "E_hat": energies.mean(1).tolist(),
            "E_hat_std": energies.std(1).tolist(), "n_runs": len(structures)}


def relaxed_set(structures: list[Atoms], calc, args, counter) -> tuple[list[float], list[Atoms]]:
    """Energies per atom (eV) and the relaxed copies."""
    with counting_unconverged(counter):
        relaxed = [relax(a, calc, args.fmax, args.relax_steps) for a in structures]
    return [a.get_potential_energy() / len(a) for a in relaxed], relaxed


def run_sampler_set(generator, sampler: str, steps: int, cells: list[Atoms], args) -> dict:
    """Generate one structure per reference cell, timed and probed."""
    record_every = max(1, (steps + 1) // args.trajectory_points)
    structures, seconds, runs = [], [], []
    totals = defaultdict(float)
    calls = defaultdict(int)
    for k, reference in enumerate(cells):
        with NetworkProbe(generator.model, generator.device, record_every) as probe:
            start = time.perf_counter()
            (atoms,) = generator.generate(
                1, cell=reference.cell.array, composition=reference.get_chemical_formula(),
                sampler=sampler, steps=steps, seed=args.seed + k, progress=False,
            )
            seconds.append(time.perf_counter() - start)
        for name, value in probe.seconds.items():
            totals[name] += value
        for name, value in probe.calls.items():
            calls[name] += value
        structures.append(atoms)
        runs.append(noise_energies(generator.model, probe.records))
    total = float(np.sum(seconds))
    network = float(sum(totals.values()))
    acceptance = [float(a.info["hmc_acceptance"]) for a in structures
                  if "hmc_acceptance" in a.info]
    return {
        "structures": structures,
        "seconds": seconds,
        "trajectory": average_curve(runs),
        "acceptance_rate": mean_std(acceptance)["mean"] if acceptance else None,
        "profile": {
            "total_s": total,
            "network_s": network,
            "network_forward_s": totals["forward"],
            "network_energy_s": totals["energy"],
            "network_energy_backward_s": totals["energy_backward"],
            "other_s": total - network,
            "network_fraction": network / total if total > 0 else float("nan"),
            "calls": dict(calls),
        },
    }


def lammps_seconds(args) -> tuple[float | None, str]:
    """Wall time of one LAMMPS a-Si-anneal melt-quench, and where the number comes from."""
    if args.lammps_time_from:
        dataset = AmorphousDataset(args.lammps_time_from)
        if "wall_time" not in dataset.property_names:
            raise AmdenError(f"{args.lammps_time_from} has no wall_time column; run without "
                             "--lammps-time-from to time a melt-quench here")
        times = dataset.properties("wall_time")
        return float(np.median(times[np.isfinite(times)])), (
            f"median wall_time of {args.lammps_time_from}")
    if args.no_lammps:
        return None, "skipped"
    start = time.perf_counter()
    run_protocol(get_protocol("a-Si-anneal"), args.lammps_index)
    return time.perf_counter() - start, f"a-Si-anneal sample {args.lammps_index} timed here"


def draw(path: Path, data: dict, rdfs: dict) -> str:
    """Four panels: relaxed RDFs, relaxed energies, E_hat(t), cost."""
    from matplotlib.figure import Figure  # no pyplot: the global backend is left alone

    fig = Figure(figsize=(11, 8))
    ax_rdf, ax_energy, ax_noise, ax_cost = fig.subplots(2, 2).ravel()
    r = rdfs.pop("r")
    for label, g in rdfs.items():
        ax_rdf.plot(r, g, "-" if label in REFERENCE_SETS else "--", label=label)
    ax_rdf.set(xlabel="r (Å)", ylabel="g(r)", title="RDF after relaxation")
    energy_sets = {**data["references"], **data["generated"]}
    for row, entry in enumerate(energy_sets.values()):
        values = np.asarray([v for v in entry.get("energies", []) if v is not None], float)
        ax_energy.plot(values, np.full(values.size, row), "o", alpha=0.6)
    ax_energy.set_yticks(range(len(energy_sets)), list(energy_sets))
    ax_energy.set(xlabel="relaxed energy (eV/atom)", title="Energy after relaxation")
    for label, curve in data["noise_energy"].items():
        if curve and curve["t"]:
            ax_noise.plot(curve["t"], curve["E_hat"], label=label)
    ax_noise.set(xlabel="diffusion time t", ylabel="E_hat (kT)", title="Noise energy")
    cost = data["cost"]
    labels = {"hmc_s": "HMC\ndenoising", "standard_s": "standard\ndenoising",
              "lammps_s": "LAMMPS\nmelt-quench"}
    bars = {label: cost[k] for k, label in labels.items() if cost.get(k) is not None}
    ax_cost.bar(list(bars), list(bars.values()))
    ax_cost.set(ylabel="seconds per structure", title="Cost of one structure")
    if bars:
        ax_cost.set_yscale("log")
    for ax in (ax_rdf, ax_noise):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return str(path)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    generator = load_energy_generator(args, "E_hat and HMC denoising need")
    card = generator.card
    paths = {name: getattr(args, name) for name in REFERENCE_SETS if getattr(args, name)}
    if not paths:
        raise AmdenError("give at least one reference set: --melt, --quench, --anneal (.h5)")
    calc = as_calculator(true_potential(card.elements, args.calculator))
    counter: dict = {}

    references, relaxed = {}, {}
    for name, path in paths.items():
        structures, split = held_out_references(path, args.n_reference)
        energies, relaxed[name] = relaxed_set(structures, calc, args, counter)
        references[name] = {"path": path, "split": split, **mean_std(energies),
                            "energies": energies, "structures": structures}
        say(f"{name}: {len(structures)} references relaxed, "
            f"{references[name]['mean']:.4f} eV/atom")
    energy_set = args.energy_reference or ("anneal" if "anneal" in paths else next(iter(paths)))
    cells = (references["anneal"] if "anneal" in references
             else next(iter(references.values())))["structures"]
    cells = [cells[k % len(cells)] for k in range(args.count)]

    samplers = {args.sampler: args.steps}
    hmc_available = HMC in SAMPLERS
    if hmc_available:
        samplers[HMC] = args.hmc_steps
    generated, runs = {}, {}
    for sampler, steps in samplers.items():
        runs[sampler] = run_sampler_set(generator, sampler, steps, cells, args)
        energies, relaxed[sampler] = relaxed_set(runs[sampler]["structures"], calc, args, counter)
        generated[sampler] = {
            "steps": steps, **mean_std(energies), "energies": energies,
            "time_per_structure_s": mean_std(runs[sampler]["seconds"]),
            "acceptance_rate": runs[sampler]["acceptance_rate"],
            "gap_to": {name: mean_std(energies)["mean"] - ref["mean"]
                       for name, ref in references.items()},
        }
        say(f"{sampler}: {len(energies)} generated and relaxed, "
            f"{generated[sampler]['mean']:.4f} eV/atom")

    noise = {"forward": forward_curve(generator, references[energy_set]["structures"],
                                      args.n_times, args.seed)}
    noise.update({sampler: run["trajectory"] for sampler, run in runs.items()})
    lammps_s, lammps_source = lammps_seconds(args)
    hmc_s = generated[HMC]["time_per_structure_s"]["mean"] if hmc_available else None
    cost = {
        "n_atoms": len(cells[0]),
        "hmc_s": hmc_s,
        "standard_s": generated[args.sampler]["time_per_structure_s"]["mean"],
        "lammps_s": lammps_s,
        "lammps_source": lammps_source,
        "lammps_over_hmc": lammps_s / hmc_s if lammps_s and hmc_s else None,
        "lammps_over_standard": (lammps_s / generated[args.sampler]["time_per_structure_s"]["mean"]
                                 if lammps_s else None),
    }
    rdfs = {"r": rdf(relaxed[next(iter(relaxed))], RDF_RMAX, RDF_NBINS)[0]}
    rdfs.update({name: rdf(items, RDF_RMAX, RDF_NBINS)[1] for name, items in relaxed.items()})
    for entry in references.values():
        del entry["structures"]
    data = {
        "benchmark": "relaxation_gap",
        "model": card.name,
        "environment": environment(generator.device),
        "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
        "potential": true_potential(card.elements, args.calculator),
        "energy_units": "eV/atom",
        "references": references,
        "generated": generated,
        "hmc_available": hmc_available,
        "noise_energy_reference": energy_set,
        "noise_energy": noise,
        "rdf_after_relaxation": {k: np.asarray(v).tolist() for k, v in rdfs.items()},
        "cost": cost,
        "profile": {sampler: run["profile"] for sampler, run in runs.items()},
        "unconverged_relaxations": counter.get("unconverged", 0),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data["png"] = draw(out / "relaxation_gap.png", data, dict(rdfs))
    path = write_json(out, "relaxation_gap.json", data)

    say(format_table(
        ["set", "n", "E relaxed eV/atom", "std", "gap to anneal", "s/struct"],
        [[name, ref["n"], ref["mean"], ref["std"], None, None] for name, ref in references.items()]
        + [[s, g["n"], g["mean"], g["std"], g["gap_to"].get("anneal"),
            g["time_per_structure_s"]["mean"]] for s, g in generated.items()],
    ))
    for sampler, profile in data["profile"].items():
        say(f"{sampler}: network {profile['network_s']:.3g} s of {profile['total_s']:.3g} s "
            f"({100 * profile['network_fraction']:.1f}%), calls {profile['calls']}")
    if not hmc_available:
        say("sampler 'hmc' is not registered in this ase_amden: HMC rows skipped")
    say(f"LAMMPS melt-quench: {lammps_s} s ({lammps_source}); "
        f"LAMMPS/HMC = {cost['lammps_over_hmc']}")
    say(f"wrote {path}")
    return data


if __name__ == "__main__":
    main()
