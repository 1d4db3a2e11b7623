"""Training data: melt-quench protocols run in LAMMPS, stored as HDF5 datasets."""

from .build import make_dataset
from .dataset import AmorphousDataset, held_out
from .importing import import_structures, parse_type_map
from .meltquench import PROPERTY_UNITS, Sample, run_protocol, run_stages, sample_size
from .protocols import PROTOCOLS, Protocol, Stage, get_protocol

__all__ = [
    "PROPERTY_UNITS",
    "PROTOCOLS",
    "AmorphousDataset",
    "Protocol",
    "Sample",
    "Stage",
    "get_protocol",
    "held_out",
    "import_structures",
    "make_dataset",
    "parse_type_map",
    "run_protocol",
    "run_stages",
    "sample_size",
]
