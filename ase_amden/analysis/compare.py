"""Summaries of a set of structures and comparison of a generated set with a reference."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator
from tqdm.auto import tqdm

from ..structures import Images, as_images
from .angles import adf
from .bonds import Cutoff, covalent_cutoffs
from .coordination import coordination
from .environments import ENTROPY_BATCH_SIZE, environment_entropy, environment_overlap
from .pair import rdf
from .relax import relaxed_energies
from .rings import average_ring_size
from .validation import symbols_present

#: Rings are searched only in network structures: mean coordination at most this (a-Si 4,
#: silica 2.7); in dense packings (metallic glasses, ~12) they mean little and cost much.
NETWORK_MAX_COORDINATION = 6.0

#: AMShortcut B.5: RDF to 5 Å in 100 bins, ADF within 3 Å in 180 bins.
RDF_RMAX, RDF_NBINS = 5.0, 100
ADF_CUTOFF, ADF_NBINS = 3.0, 180

#: Units of the quantities of :func:`summary` and :func:`compare` ("" = dimensionless).
UNITS = {
    "n_structures": "", "n_atoms": "atoms", "density": "atoms/Å^3",
    "coordination": "neighbours", "ring_size": "atoms", "entropy": "nats",
    "energy": "eV/atom", "energy_std": "eV/atom", "rdf_rmsd": "", "adf_rmsd": "1/degree",
    "overlap": "fraction",
}


def rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square deviation between two curves on the same bins."""
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def rdf_rmsd(generated: Images, reference: Images) -> float:
    """RMSD between the averaged RDFs of two sets (AMShortcut: to 5 Å in 100 bins)."""
    _, g_gen = rdf(generated, RDF_RMAX, RDF_NBINS)
    _, g_ref = rdf(reference, RDF_RMAX, RDF_NBINS)
    return rmsd(g_gen, g_ref)


def summary(
    images: Images,
    calculator: Calculator | str | None = None,
    cutoff: Cutoff | None = None,
    *,
    entropy_batch_size: int = ENTROPY_BATCH_SIZE,
    progress: bool = False,
    label: str = "structures",
) -> dict:
    """Scalar descriptors of a set of structures (units in :data:`UNITS`).

    Parameters
    ----------
    images
        One periodic structure or a list of them.
    calculator
        If given (calculator or potential name), relaxed energies are included.
    cutoff
        Bond cutoff for coordination and rings (Å, or a per-pair mapping); default
        1.3 times the sum of covalent radii.
    entropy_batch_size
        Environments per block of the QUESTS entropy (bounds its memory, see
        :func:`environment_entropy`).
    progress
        Show a progress bar over the stages (coordination, rings, entropy, energies).
    label
        Name of the set on the progress bar.

    Returns
    -------
    dict
        ``n_structures``; ``n_atoms`` (mean); ``density`` (atoms/Å^3, mean);
        ``coordination`` (mean); ``ring_size`` (mean, counted in the non-O atoms of an
        oxide, else all atoms; NaN without rings or if the mean coordination exceeds
        :data:`NETWORK_MAX_COORDINATION`, i.e. not a network); ``entropy`` (QUESTS, nats); with a
        calculator ``energy``, ``energy_std`` and ``energies`` (per structure; relaxed,
        positions only, eV/atom).

    """
    items = as_images(images)
    symbols = symbols_present(items)
    bonds = covalent_cutoffs(symbols) if cutoff is None else cutoff
    stages = 3 + (calculator is not None)
    with tqdm(total=stages, desc=label, unit="stage", disable=not progress) as bar:
        bar.set_postfix_str("coordination")
        mean_coordination = coordination(items, bonds).mean
        network = mean_coordination <= NETWORK_MAX_COORDINATION
        bar.update()
        bar.set_postfix_str("rings")
        ring_size = average_ring_size(items, cutoff) if network else float("nan")
        bar.update()
        bar.set_postfix_str("environment entropy")
        result = {
            "n_structures": len(items),
            "n_atoms": float(np.mean([len(a) for a in items])),
            "density": float(np.mean([len(a) / a.cell.volume for a in items])),
            "coordination": mean_coordination,
            "ring_size": ring_size,
            "entropy": environment_entropy(items, batch_size=entropy_batch_size),
        }
        bar.update()
        if calculator is not None:
            bar.set_postfix_str("relaxed energies")
            energies = relaxed_energies(items, calculator)
            result["energy"] = float(energies.mean())
            result["energy_std"] = float(energies.std())
            result["energies"] = energies.tolist()
            bar.update()
    return result


def compare(
    generated: Images,
    reference: Images,
    calculator: Calculator | str | None = None,
    cutoff: Cutoff | None = None,
    *,
    entropy_batch_size: int = ENTROPY_BATCH_SIZE,
    progress: bool = False,
) -> dict:
    """Compare generated structures with reference structures.

    RDF RMSD: total g(r) of each set averaged over its structures (to 5 Å, 100 bins),
    then the RMSD between the two curves; ADF RMSD likewise (3 Å cutoff, 180 bins, in
    probability density per degree), as in AMShortcut B.5. Overlap: fraction of the
    generated environments covered by the reference ones (QUESTS).

    Parameters
    ----------
    generated, reference
        Structures, one or a list each; cells at least 10 Å wide (RDF to 5 Å).
    calculator
        If given (calculator or potential name), relaxed energies are compared.
    cutoff
        Bond cutoff for coordination and rings, see :func:`summary`.
    entropy_batch_size, progress
        See :func:`summary`.

    Returns
    -------
    dict
        ``rdf_rmsd``, ``adf_rmsd`` (1/degree), ``overlap`` (0..1), and ``generated`` and
        ``reference``: the :func:`summary` of each set.

    """
    gen, ref = as_images(generated), as_images(reference)
    with tqdm(total=3, desc="comparison", unit="stage", disable=not progress) as bar:
        bar.set_postfix_str("RDF")
        rdf_error = rdf_rmsd(gen, ref)
        bar.update()
        bar.set_postfix_str("ADF")
        _, p_gen = adf(gen, ADF_CUTOFF, ADF_NBINS)
        _, p_ref = adf(ref, ADF_CUTOFF, ADF_NBINS)
        bar.update()
        bar.set_postfix_str("environment overlap")
        overlap = environment_overlap(gen, ref, batch_size=entropy_batch_size)
        bar.update()
    options = {"entropy_batch_size": entropy_batch_size, "progress": progress}
    return {
        "rdf_rmsd": rdf_error,
        "adf_rmsd": rmsd(p_gen, p_ref),
        "overlap": overlap,
        "generated": summary(gen, calculator, cutoff, label="generated", **options),
        "reference": summary(ref, calculator, cutoff, label="reference", **options),
    }


def format_table(results: dict) -> str:
    """Format :func:`summary` or :func:`compare` results as a plain-text table, with units.

    Each quantity is one row: a summary has one value column, a comparison one column per
    set and then its comparison rows (RDF/ADF RMSD, overlap). Per-structure lists are left
    out (they go to ``--json``).
    """
    sets = {k: v for k, v in results.items() if isinstance(v, dict)}
    columns = sets or {"value": results}
    names = [k for k, v in next(iter(columns.values())).items() if not isinstance(v, list)]
    extra = [k for k, v in results.items() if sets and not isinstance(v, (dict, list))]

    def row(name: str, cells: list[float]) -> str:
        unit = UNITS.get(name, "")
        return (name.ljust(16) + "".join(f"{c:14.5g}" for c in cells) + "  " + unit).rstrip()

    lines = ["quantity".ljust(16) + "".join(c.rjust(14) for c in columns) + "  unit"]
    lines += [row(n, [columns[c].get(n, float("nan")) for c in columns]) for n in names]
    lines += [row(n, [results[n]]) for n in extra]
    return "\n".join(lines)
