"""Diffusion processes: noise schedules, ghost atoms, samplers and guidance."""

from ase_amden.diffusion.ghosts import add_ghosts, ghost_count, node_count, remove_ghosts
from ase_amden.diffusion.guidance import GuidedDenoiser, combine_guidance
from ase_amden.diffusion.rng import RandomLike, seed_from, torch_generator
from ase_amden.diffusion.samplers import (
    SAMPLERS,
    DenoiseFn,
    ODESampler,
    Sampler,
    SamplerState,
    SDESampler,
    get_sampler,
    register_sampler,
    run_sampler,
)
from ase_amden.diffusion.schedules import (
    ElementSchedule,
    NoisedBatch,
    NoiseSchedule,
    PositionSchedule,
    forward_noise,
)

__all__ = [
    "SAMPLERS",
    "DenoiseFn",
    "ElementSchedule",
    "GuidedDenoiser",
    "NoiseSchedule",
    "NoisedBatch",
    "ODESampler",
    "PositionSchedule",
    "RandomLike",
    "SDESampler",
    "Sampler",
    "SamplerState",
    "add_ghosts",
    "combine_guidance",
    "forward_noise",
    "get_sampler",
    "ghost_count",
    "node_count",
    "register_sampler",
    "remove_ghosts",
    "run_sampler",
    "seed_from",
    "torch_generator",
]
