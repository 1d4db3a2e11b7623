"""The denoising network: periodic graphs, EGNN layers, embeddings and the model card."""

from ase_amden.models.card import CHECKPOINT_FORMAT, ModelCard
from ase_amden.models.denoiser import Denoiser, DenoiserConfig
from ase_amden.models.geometry import cell_volume, minimum_image, wrap_positions
from ase_amden.models.graph import periodic_graph

__all__ = [
    "CHECKPOINT_FORMAT",
    "Denoiser",
    "DenoiserConfig",
    "ModelCard",
    "cell_volume",
    "minimum_image",
    "periodic_graph",
    "wrap_positions",
]
