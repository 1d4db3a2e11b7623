"""Analysis of structures: what validates a generated amorphous material.

The metrics are those of AMDEN, AMShortcut and Yang and Schwalbe-Koda (see CITATION.cff).

Every function takes one ``ase.Atoms`` or a list of them (results averaged over the list).
The command line face is :func:`ase_amden.analysis.cli.add_analyze_parser`.
"""

from ..structures import as_images
from .angles import adf, bond_angles
from .compare import compare, rdf_rmsd, summary
from .coordination import Coordination, coordination
from .elastic import elastic_tensor, isotropic_moduli
from .environments import environment_descriptors, environment_entropy, environment_overlap
from .network import NetworkMetrics, network_metrics
from .pair import rdf, structure_factor
from .plot import plot_report, report_figure
from .relax import relax, relaxed_energies, relaxed_energy
from .rings import average_ring_size, ring_statistics
from .scattering import pair_distribution, rfactor
from .symmetry import Symmetry, flag_crystalline, symmetry
from .validation import largest_rmax

__all__ = [
    "Coordination",
    "NetworkMetrics",
    "Symmetry",
    "adf",
    "as_images",
    "average_ring_size",
    "bond_angles",
    "compare",
    "coordination",
    "elastic_tensor",
    "environment_descriptors",
    "environment_entropy",
    "environment_overlap",
    "flag_crystalline",
    "isotropic_moduli",
    "largest_rmax",
    "network_metrics",
    "pair_distribution",
    "plot_report",
    "rdf",
    "rdf_rmsd",
    "relax",
    "relaxed_energies",
    "relaxed_energy",
    "report_figure",
    "rfactor",
    "ring_statistics",
    "structure_factor",
    "summary",
    "symmetry",
]
