"""One-page PNG report a glass scientist reads (matplotlib Agg canvas).

Panels: total g(r); for several elements the partial g_ab(r) of each element pair; bond
angles per triplet (A-B-A, e.g. O-Si-O and Si-O-Si) with the bond cutoff of that pair;
coordination number histogram per element; ring sizes; stoichiometry; relaxed energies;
and a text panel with the metrics, the counts and the provenance of the structures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations_with_replacement

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ..structures import Images, as_images
from .angles import adf
from .bonds import Cutoff, covalent_cutoffs, pair_cutoffs
from .compare import ADF_NBINS, NETWORK_MAX_COORDINATION, RDF_NBINS, RDF_RMAX, format_table
from .coordination import coordination
from .pair import rdf
from .rings import default_count_elements, ring_statistics
from .validation import largest_rmax, symbols_present

#: Most partial-RDF and angle panels drawn (the most abundant elements' pairs first).
MAX_SPECIES_PANELS = 4
#: Elements named last in a pair (Si-O, not O-Si).
ANIONS = frozenset({"O", "N", "F", "S", "Cl", "Se", "Br", "Te", "I"})
#: ``atoms.info`` keys shown as provenance on the figure.
PROVENANCE_SHOWN = ("model", "model_hash", "sampler", "steps", "guidance", "ase_amden_version")

Sets = dict[str, list[Atoms]]
Panel = Callable[..., None]


def plot_report(
    images: Images,
    reference: Images | None = None,
    path: str | os.PathLike = "report.png",
    energies: Sequence[float] | None = None,
    reference_energies: Sequence[float] | None = None,
    cutoff: Cutoff | None = None,
    metrics: Mapping | None = None,
) -> str:
    """Draw the report of one set of structures (and a reference) to a PNG.

    Parameters
    ----------
    images
        Structures to report on (one or a list).
    reference
        Optional reference structures drawn alongside (dashed).
    path
        Output PNG file.
    energies, reference_energies
        Per-structure energies, eV/atom (e.g. from :func:`relaxed_energies`), drawn as
        one strip of points per set; the panel says so when none are given.
    cutoff
        Bond cutoff (Å or per-pair mapping) for coordination, rings and bond angles;
        default 1.3 x the sum of covalent radii. Rings are drawn only for network
        structures (see :func:`summary`).
    metrics
        Results of :func:`summary` or :func:`compare`, written on the figure with units.

    Returns
    -------
    str
        The path written.

    """
    fig = report_figure(images, reference, energies, reference_energies, cutoff, metrics)
    fig.savefig(path, dpi=100)  # a bare Figure renders with the Agg canvas
    return os.fspath(path)


def report_figure(
    images: Images,
    reference: Images | None = None,
    energies: Sequence[float] | None = None,
    reference_energies: Sequence[float] | None = None,
    cutoff: Cutoff | None = None,
    metrics: Mapping | None = None,
):
    """The ``matplotlib.figure.Figure`` of :func:`plot_report` (same parameters)."""
    from matplotlib.figure import Figure  # no pyplot: the global backend is left alone

    sets: Sets = {"generated": as_images(images)}
    if reference is not None:
        sets["reference"] = as_images(reference)
    all_images = [a for items in sets.values() for a in items]
    symbols = _by_abundance(all_images)
    bonds = covalent_cutoffs(symbols) if cutoff is None else cutoff
    pairs = _pairs(symbols)
    triplets = _triplets(symbols, bonds)
    panels: list[tuple[Panel, tuple]] = [(_total_rdf, ())]
    if len(symbols) > 1:
        panels += [(_partial_rdf, (pair,)) for pair in pairs]
    panels += [(_angles, (triplet, length)) for triplet, length in triplets]
    # S(q), X-ray and neutron weighted: ase_amden.analysis.scattering adds its panel here.
    panels += [(_coordination, (bonds,)), (_rings, (cutoff, symbols, bonds)),
               (_stoichiometry, (symbols,)),
               (_energies, ({"generated": energies, "reference": reference_energies},)),
               (_text, (metrics,))]
    n_cols = 3
    n_rows = -(-len(panels) // n_cols)
    fig = Figure(figsize=(5.0 * n_cols, 3.8 * n_rows))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, (draw, extra) in zip(axes, panels, strict=False):
        draw(ax, sets, *extra)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def _by_abundance(images: list[Atoms]) -> list[str]:
    """Elements present, most abundant first (ties alphabetical)."""
    counts: dict[str, int] = {}
    for atoms in images:
        for symbol in atoms.get_chemical_symbols():
            counts[symbol] = counts.get(symbol, 0) + 1
    return sorted(symbols_present(images), key=lambda s: (-counts[s], s))


def _pairs(symbols: list[str]) -> list[str]:
    """Element pairs for partial RDFs: unlike pairs first, anions last (Si-O, O-O, Si-Si)."""
    pairs = [tuple(sorted(p, key=lambda s: s in ANIONS))
             for p in combinations_with_replacement(symbols, 2)]
    pairs.sort(key=lambda p: p[0] == p[1])
    return ["-".join(p) for p in pairs[:MAX_SPECIES_PANELS]]


def _bond_length(bonds: Cutoff, a: str, b: str) -> float | None:
    """The bond cutoff between elements a and b, Å (None: not bonded)."""
    cut = pair_cutoffs(bonds)
    if not isinstance(cut, dict):
        return cut
    za, zb = atomic_numbers[a], atomic_numbers[b]
    return cut.get((za, zb), cut.get((zb, za)))


def _triplets(symbols: list[str], bonds: Cutoff) -> list[tuple[str, float]]:
    """Angle triplets ``end-centre-end`` with the bond cutoff of the centre-end pair.

    One element: ``A-A-A``. Several: ``B-A-B`` for each unlike bonded pair, both ways
    (silica: O-Si-O and Si-O-Si), so the angle is between bonds, not any two neighbours
    within one radius.
    """
    if len(symbols) == 1:
        a = symbols[0]
        length = _bond_length(bonds, a, a)
        return [] if length is None else [(f"{a}-{a}-{a}", length)]
    found = []
    for centre, end in ((c, e) for c in symbols for e in symbols if c != e):
        length = _bond_length(bonds, centre, end)
        if length is not None:
            found.append((f"{end}-{centre}-{end}", length))
    return found[:MAX_SPECIES_PANELS]


def _style(label: str) -> str:
    return "-" if label == "generated" else "--"


def _has(items: list[Atoms], species: str) -> bool:
    return set(species.split("-")) <= set(symbols_present(items))


def _rmax(sets: Sets) -> float:
    return min(RDF_RMAX, largest_rmax([a for items in sets.values() for a in items]))


def _total_rdf(ax, sets: Sets) -> None:
    for label, items in sets.items():
        ax.plot(*rdf(items, _rmax(sets), RDF_NBINS), _style(label), label=label)
    ax.set(xlabel="r (Å)", ylabel="g(r)", title="Total radial distribution")


def _partial_rdf(ax, sets: Sets, pair: str) -> None:
    for label, items in sets.items():
        if _has(items, pair):
            ax.plot(*rdf(items, _rmax(sets), RDF_NBINS, pair=pair), _style(label), label=label)
    ax.set(xlabel="r (Å)", ylabel=f"g$_{{{pair}}}$(r)", title=f"Partial RDF {pair}")


def _angles(ax, sets: Sets, triplet: str, length: float) -> None:
    for label, items in sets.items():
        if _has(items, triplet):
            ax.plot(*adf(items, length, ADF_NBINS, triplet=triplet), _style(label),
                    label=label)
    centre, end = triplet.split("-")[1], triplet.split("-")[0]
    ax.set(xlabel="angle (degrees)", ylabel="density (1/degree)",
           title=f"{triplet} angles ({centre}-{end} bonds < {length:.2f} Å)")


def _coordination(ax, sets: Sets, bonds: Cutoff) -> None:
    width = 0.8 / max(1, sum(len(symbols_present(items)) for items in sets.values()))
    offset = -0.4
    for label, items in sets.items():
        per_atom = coordination(items, bonds).per_atom
        symbols = np.concatenate([a.get_chemical_symbols() for a in items])
        for symbol in symbols_present(items):
            counts = np.bincount(per_atom[symbols == symbol], minlength=1)
            fraction = counts / counts.sum()
            ax.bar(np.arange(counts.size) + offset + width / 2, fraction, width=width,
                   label=f"{symbol} ({label})", hatch=None if label == "generated" else "//")
            offset += width
    ax.set(xlabel="coordination number (bonded neighbours)", ylabel="fraction of atoms",
           title="Coordination")


def _rings(ax, sets: Sets, cutoff: Cutoff | None, symbols: list[str], bonds: Cutoff) -> None:
    all_images = [a for items in sets.values() for a in items]
    counted = default_count_elements(sorted(symbols))
    if coordination(all_images, bonds).mean > NETWORK_MAX_COORDINATION:
        ax.text(0.5, 0.5, "not a network structure", ha="center", va="center",
                transform=ax.transAxes)
    else:
        for label, items in sets.items():
            hist = ring_statistics(items, cutoff, counted)
            fraction = hist / hist.sum() if hist.sum() > 0 else hist
            offset = -0.2 if label == "generated" else 0.2
            ax.bar(np.arange(hist.size) + offset, fraction, width=0.4, label=label)
    ring_unit = "all atoms" if counted is None else "-".join(counted) + " atoms"
    ax.set(xlabel=f"ring size ({ring_unit})", ylabel="fraction", title="Rings")


def _stoichiometry(ax, sets: Sets, symbols: list[str]) -> None:
    x = np.arange(len(symbols))
    for k, (label, items) in enumerate(sets.items()):
        fractions = np.array([[np.mean(a.symbols == s) for s in symbols] for a in items])
        ax.bar(x + (k - 0.5 * (len(sets) - 1)) * 0.4, fractions.mean(axis=0), width=0.4,
               yerr=fractions.std(axis=0), capsize=3, label=label)
    ax.set_xticks(x, symbols)
    ax.set(ylabel="atomic fraction (mean, std over structures)", title="Stoichiometry")


def _energies(ax, sets: Sets, given: Mapping[str, Sequence[float] | None]) -> None:
    given = {k: np.asarray(v, dtype=float) for k, v in given.items() if v is not None}
    for row, (label, values) in enumerate(given.items()):  # one strip of points per set
        ax.plot(values, np.full(values.size, row), "o", alpha=0.6, label=label)
    ax.set_yticks(range(len(given)), list(given))
    ax.set_ylim(-0.5, max(len(given), 1) - 0.5)
    if not given:
        ax.text(0.5, 0.5, "no energies given", ha="center", va="center",
                transform=ax.transAxes)
    ax.set(xlabel="energy (eV/atom)", title="Relaxed energy per structure")


def _provenance(items: list[Atoms]) -> list[str]:
    lines = []
    for key in PROVENANCE_SHOWN:
        values = sorted({str(a.info[key]) for a in items if key in a.info})
        if values:
            lines.append(f"{key}: {', '.join(values[:3])}{' ...' if len(values) > 3 else ''}")
    seeds = sorted({int(a.info["seed"]) for a in items if "seed" in a.info})
    if seeds:
        lines.append(f"seed: {', '.join(map(str, seeds[:3]))}{' ...' if len(seeds) > 3 else ''}")
    crystalline = [bool(a.info["crystalline"]) for a in items if "crystalline" in a.info]
    if crystalline:
        lines.append(f"crystallized (spglib): {sum(crystalline)} of {len(crystalline)}")
    return lines


def _text(ax, sets: Sets, metrics: Mapping | None) -> None:
    lines = []
    for label, items in sets.items():
        n_atoms = [len(a) for a in items]
        lines.append(f"{label}: {len(items)} structures, {min(n_atoms)}-{max(n_atoms)} atoms")
        lines += [f"  {line}" for line in _provenance(items)]
    if metrics:
        lines += ["", *format_table(dict(metrics)).splitlines()]
    ax.set_axis_off()
    ax.set_title("Metrics and provenance")
    ax.text(0.0, 1.0, "\n".join(lines), ha="left", va="top", fontsize=7, wrap=True,
            family="monospace", transform=ax.transAxes)
