"""One-page PNG report: RDF, ADF, ring sizes and energies (matplotlib Agg canvas)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..structures import Images, as_images
from .angles import adf
from .bonds import Cutoff, covalent_cutoffs
from .compare import ADF_CUTOFF, ADF_NBINS, NETWORK_MAX_COORDINATION, RDF_NBINS, RDF_RMAX
from .coordination import coordination
from .pair import rdf
from .rings import default_count_elements, ring_statistics
from .validation import largest_rmax, symbols_present


def plot_report(
    images: Images,
    reference: Images | None = None,
    path: str | os.PathLike = "report.png",
    energies: Sequence[float] | None = None,
    reference_energies: Sequence[float] | None = None,
    cutoff: Cutoff | None = None,
) -> str:
    """Draw RDF, ADF, ring-size and energy panels of one set (and a reference) to a PNG.

    Parameters
    ----------
    images
        Structures to report on (one or a list).
    reference
        Optional reference structures drawn alongside.
    path
        Output PNG file.
    energies, reference_energies
        Per-structure energies, eV/atom (e.g. from :func:`relaxed_energies`), drawn as
        one strip of points per set; the panel says so when none are given.
    cutoff
        Bond cutoff for rings (Å or per-pair mapping); default the covalent-radius rule.
        Rings are drawn only for network structures (see :func:`summary`).

    Returns
    -------
    str
        The path written.

    """
    from matplotlib.figure import Figure  # no pyplot: the global backend is left alone

    sets = {"generated": as_images(images)}
    if reference is not None:
        sets["reference"] = as_images(reference)
    all_images = [a for items in sets.values() for a in items]
    rmax = min(RDF_RMAX, largest_rmax(all_images))
    symbols = symbols_present(all_images)
    counted = default_count_elements(symbols)
    bonds = covalent_cutoffs(symbols) if cutoff is None else cutoff
    network = coordination(all_images, bonds).mean <= NETWORK_MAX_COORDINATION
    fig = Figure(figsize=(10, 8))
    axes = fig.subplots(2, 2)
    ax_rdf, ax_adf, ax_ring, ax_energy = axes.ravel()
    for label, items in sets.items():
        style = "-" if label == "generated" else "--"
        ax_rdf.plot(*rdf(items, rmax, RDF_NBINS), style, label=label)
        ax_adf.plot(*adf(items, ADF_CUTOFF, ADF_NBINS), style, label=label)
        if network:
            hist = ring_statistics(items, cutoff, counted)
            fraction = hist / hist.sum() if hist.sum() > 0 else hist
            offset = -0.2 if label == "generated" else 0.2
            ax_ring.bar(np.arange(hist.size) + offset, fraction, width=0.4, label=label)
    if not network:
        ax_ring.text(0.5, 0.5, "not a network structure", ha="center", va="center")
    ax_rdf.set(xlabel="r (Å)", ylabel="g(r)", title="Radial distribution")
    ax_adf.set(xlabel="angle (degrees)", ylabel="density (1/degree)", title="Bond angles")
    ring_unit = "all atoms" if counted is None else "-".join(counted) + " atoms"
    ax_ring.set(xlabel=f"ring size ({ring_unit})", ylabel="fraction", title="Rings")
    given = {"generated": energies, "reference": reference_energies}
    given = {k: np.asarray(v, dtype=float) for k, v in given.items() if v is not None}
    for row, (label, values) in enumerate(given.items()):  # one strip of points per set
        ax_energy.plot(values, np.full(values.size, row), "o", alpha=0.6, label=label)
    ax_energy.set_yticks(range(len(given)), list(given))
    ax_energy.set_ylim(-0.5, max(len(given), 1) - 0.5)
    if not given:
        ax_energy.text(0.5, 0.5, "no energies given", ha="center", va="center")
    ax_energy.set(xlabel="energy (eV/atom)", title="Relaxed energy per structure")
    for ax in axes.ravel():
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)  # a bare Figure renders with the Agg canvas
    return os.fspath(path)
