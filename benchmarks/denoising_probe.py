"""Where a denoiser loses the structure: noise loss against t, and re-noise-then-denoise recovery.

For one noise-prediction model (``"eps"`` objective) and a reference dataset:

- loss: the position term of the training loss, |eps_X - eps_X_theta|^2 per atom, at fixed
  times ``--times``, on training-split and held-out structures with the same noise draws;
  equal losses mean the model is not limited by the number of structures;
- with ``--recycles N`` (self-conditioning models), also the loss after N chained passes at
  the same ``t``, each given the clean estimate of the one before: the estimate a sampler's
  chain of steps gives the network, which the plain loss (no estimate) leaves out;
- recovery: each reference is noised forward to ``t0`` (``--renoise-times``) and denoised back
  with the ``sde`` sampler from ``t0`` (``ceil(--steps * t0)`` steps, the density of a full
  run), and the RDF RMSD of the result against the references is reported next to that of
  structures generated from pure noise in the same cells. A small RMSD at ``t0`` means the
  network keeps what it is given at that noise level; the ``t0`` where it grows is the noise
  level the network cannot resolve.

With ``--potential`` the references and the recovered structures are also relaxed with that
LAMMPS potential (energy per atom, eV): a model that has learnt the slower-cooled glass
lowers it; one that has not raises it. ``--target`` conditions the loss and the denoising on
given property values instead of each reference's own (e.g. 10 K/ps glasses denoised at
``cooling_rate=1``).

Writes ``denoising_probe_<model>.json`` (``..._<tag>.json`` with ``--tag``) into ``--out``.
A few minutes on a CPU.

Run on the shipped model (from the repository root)::

    python -m benchmarks.denoising_probe --model a-Si --reference datasets/a-Si-anneal.h5
    python -m benchmarks.denoising_probe --checkpoint benchmarks/results/a-Si-combined.pt \
        --reference datasets/a-Si-cool10.h5 --target cooling_rate=1 --potential sw-si \
        --tag cool10
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np
import torch

from ase_amden.analysis import rdf_rmsd
from ase_amden.cli.arguments import positive_int, target_pair
from ase_amden.data import AmorphousDataset
from ase_amden.diffusion import (
    GuidedDenoiser,
    SamplerState,
    forward_noise,
    get_sampler,
    run_sampler,
    torch_generator,
)
from ase_amden.errors import AmdenError
from ase_amden.training import collate_for

from .common import (
    add_common_arguments,
    apply_threads,
    environment,
    fill_defaults,
    format_table,
    load_generators,
    mean_std,
    reporter,
    write_json,
)
from .equivalent_cooling_rate import relaxed_set


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, several_models=False)
    parser.add_argument("--reference", required=True, help="reference dataset (.h5)")
    parser.add_argument("--times", default="0.02,0.05,0.1,0.2,0.4,0.7",
                        help="comma-separated t values of the loss")
    parser.add_argument("--renoise-times", default="0.05,0.1,0.2,0.3",
                        help="comma-separated t0 values of the recovery")
    parser.add_argument("--n-reference", type=int, default=None,
                        help="structures per split and per recovery run (default 4)")
    parser.add_argument("--draws", type=int, default=None,
                        help="noise draws per structure and t for the loss (default 4)")
    parser.add_argument("--recycles", type=positive_int, default=0, metavar="N",
                        help="self-conditioning models: also report the loss after N chained "
                             "passes, each given the previous clean estimate (default: off)")
    parser.add_argument("--steps", type=int, default=None,
                        help="sde steps of a full 0.99 -> 0 run (default 200)")
    parser.add_argument("--potential", default=None,
                        help="also relax references and recovered structures with this LAMMPS "
                             "potential (e.g. sw-si) and report energies per atom")
    parser.add_argument("--target", action="append", default=[], metavar="NAME=VALUE",
                        help="condition the loss and the denoising on this property value "
                             "instead of each reference's own (repeatable)")
    parser.add_argument("--tag", default="",
                        help="suffix of the JSON name, denoising_probe_<model>_<tag>.json")
    args = parser.parse_args(argv)
    defaults = {"n_reference": (4, 1), "draws": (4, 1), "steps": (200, 4)}
    fill_defaults(args, defaults)
    return args


def parse_targets(items: Sequence[str], card) -> dict[str, float]:
    """``--target`` values as ``{name: value}``, checked as the generator checks targets."""
    try:
        targets = dict(target_pair(item) for item in items)
    except argparse.ArgumentTypeError as error:
        raise AmdenError(str(error)) from None
    card.normalise_targets(targets)  # unknown names and bad values raise here
    return targets


def relaxed_summary(images, potential: str | None) -> dict | None:
    """Mean and spread of the relaxed energies per atom (eV) with ``potential``; None without."""
    return mean_std(relaxed_set(images, potential)[0]) if potential else None


def batch_of(generator, structures, seed: int):
    """Clean batch of ``structures`` for ``generator``'s model (ghosts added if it uses them)."""
    card = generator.card
    batch = collate_for(structures, card)
    batch = batch.to(generator.device, generator.dtype)
    return batch.with_ghosts(card.rho_max, torch_generator(seed, generator.device))


def noise_loss(generator, structures, t: float, draws: int, seed: int,
               recycles: int = 0) -> float:
    """Mean position loss per atom over ``draws`` noise draws at time ``t``.

    With ``recycles`` (self-conditioning models) the loss of the last of ``recycles + 1``
    chained passes, each after the first given the clean estimate of the one before.
    """
    card, model = generator.card, generator.model
    losses = []
    for draw in range(draws):
        rng = torch_generator(seed + draw, generator.device)
        batch = batch_of(generator, structures, seed + draw)
        times = torch.full((batch.n_systems,), t, dtype=generator.dtype, device=generator.device)
        noisy = forward_noise(batch.positions, batch.elements, batch.cell, batch.system_idx,
                              times, card.position_schedule(), card.element_schedule(), rng)
        estimate = {}
        for _ in range(recycles + 1):
            with torch.enable_grad() if card.energy else torch.no_grad():
                eps_x, _ = model(noisy.positions, noisy.elements, batch.cell, batch.system_idx,
                                 times, batch.properties, batch.property_mask, **estimate)
            estimate = {"previous_clean": model.clean_estimate(
                noisy.positions, eps_x.detach(), batch.system_idx, times)}
        losses.append(float((eps_x.detach() - noisy.eps_x).square().sum(-1).mean()))
    return float(np.mean(losses))


def renoise_denoise(generator, structures, t0: float, steps: int, seed: int):
    """Noise ``structures`` to ``t0`` and denoise them back with ``sde``; return Atoms."""
    card = generator.card
    rng = torch_generator(seed, generator.device)
    batch = batch_of(generator, structures, seed)
    times = torch.full((batch.n_systems,), t0, dtype=generator.dtype, device=generator.device)
    sampler = get_sampler("sde", pos_schedule=card.position_schedule(),
                          el_schedule=card.element_schedule(), t_start=t0,
                          t_end=min(0.01, t0 / 2))
    noisy = forward_noise(batch.positions, batch.elements, batch.cell, batch.system_idx, times,
                          sampler.pos_schedule, sampler.el_schedule, rng)
    state = SamplerState(noisy.positions, noisy.elements, batch.cell, batch.system_idx,
                         fixed_elements=batch.elements if card.fixed_composition else None)
    denoise = GuidedDenoiser(generator.model, batch.properties, batch.property_mask,
                             shortcut=card.shortcut)
    with torch.no_grad():
        state = run_sampler(sampler, state, denoise, max(1, math.ceil(steps * t0)), rng)
    return generator.to_atoms(state, {"model": card.name, "renoised_to": t0})


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    (generator,) = load_generators(args.model, args.checkpoint, args.device)
    card = generator.card
    if card.objective != "eps":
        raise AmdenError(f"model {card.name!r} has objective {card.objective!r}; this probe "
                         "reads noise predictions ('eps' models, e.g. --model a-Si)")
    dataset = AmorphousDataset(args.reference)
    splits = {name: [dataset[int(i)] for i in dataset.split_indices(name)[: args.n_reference]]
              for name in ("train", "test")}
    splits = {name: items for name, items in splits.items() if items}
    references = splits.get("test", []) + splits.get("train", [])
    targets = parse_targets(args.target, card)
    for atoms in references:
        atoms.info.update(targets)

    times = [float(t) for t in args.times.split(",")]
    loss = {name: [noise_loss(generator, items, t, args.draws, args.seed) for t in times]
            for name, items in splits.items()}
    if args.recycles:
        if not card.model_config.get("self_condition"):
            raise AmdenError(f"--recycles needs a self-conditioning model; {card.name!r} is not "
                             "one (drop --recycles)")
        loss.update({f"{name} recycled": [noise_loss(generator, items, t, args.draws, args.seed,
                                                     args.recycles) for t in times]
                     for name, items in splits.items()})

    recovery = []
    for t0 in [float(t) for t in args.renoise_times.split(",")]:
        back = renoise_denoise(generator, references, t0, args.steps, args.seed)
        recovery.append({"t0": t0, "rdf_rmsd": rdf_rmsd(back, references),
                         "relaxed_energy": relaxed_summary(back, args.potential)})
    from_noise = generator.generate(
        len(references), cell=references[0].cell.array,
        n_atoms=None if card.rho_max is not None else len(references[0]),
        targets=targets or None, steps=args.steps, seed=args.seed, progress=False)
    recovery.append({"t0": 0.99, "rdf_rmsd": rdf_rmsd(from_noise, references),
                     "relaxed_energy": relaxed_summary(from_noise, args.potential)})
    floor = (rdf_rmsd(splits["test"], splits["train"]) if len(splits) == 2 else None)

    data = {
        "benchmark": "denoising_probe",
        "model": card.name,
        "environment": environment(generator.device),
        "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
        "loss": {"t": times, **loss},
        "recovery": recovery,
        "references_relaxed_energy": relaxed_summary(references, args.potential),
        "rdf_rmsd_floor_test_vs_train": floor,
    }
    name = "_".join(filter(None, ("denoising_probe", card.name, args.tag)))
    path = write_json(args.out, f"{name}.json", data)
    say(format_table(["t"] + [f"loss {name}" for name in loss],
                     [[t] + [loss[name][k] for name in loss] for k, t in enumerate(times)]))
    say(format_table(["t0", "RDF RMSD after re-noise + denoise", "relaxed E (eV/atom)"],
                     [[row["t0"], row["rdf_rmsd"], (row["relaxed_energy"] or {}).get("mean")]
                      for row in recovery]))
    if args.potential:
        say(f"relaxed energy of the references: {data['references_relaxed_energy']['mean']:.4f}"
            " eV/atom")
    say(f"RDF RMSD floor (held-out vs training references): {floor}")
    say(f"wrote {path}")
    return data


if __name__ == "__main__":
    main()
