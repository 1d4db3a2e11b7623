"""Diffusion processes: noise schedules, ghost atoms, samplers and guidance."""

from ase_amden.diffusion.flow import FlowSampler, flow_noised_elements
from ase_amden.diffusion.ghosts import add_ghosts, ghost_count, node_count, remove_ghosts
from ase_amden.diffusion.guidance import GuidedDenoiser, combine_guidance
from ase_amden.diffusion.hmc import HMCSampler
from ase_amden.diffusion.inpainting import InpaintingPlan, fixed_atoms_mask
from ase_amden.diffusion.langevin import LangevinSampler
from ase_amden.diffusion.observables import ObservableGuidance
from ase_amden.diffusion.restart import RestartSampler
from ase_amden.diffusion.rng import RandomLike, seed_from, torch_generator
from ase_amden.diffusion.samplers import (
    SAMPLERS,
    DenoiseFn,
    ODESampler,
    Sampler,
    SamplerState,
    SDESampler,
    ancestral_update,
    ddim_update,
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
from ase_amden.diffusion.shortcut import ShortcutSampler

__all__ = [
    "SAMPLERS",
    "DenoiseFn",
    "ElementSchedule",
    "FlowSampler",
    "GuidedDenoiser",
    "HMCSampler",
    "InpaintingPlan",
    "LangevinSampler",
    "NoiseSchedule",
    "NoisedBatch",
    "ObservableGuidance",
    "ODESampler",
    "PositionSchedule",
    "RandomLike",
    "RestartSampler",
    "SDESampler",
    "Sampler",
    "SamplerState",
    "ShortcutSampler",
    "add_ghosts",
    "combine_guidance",
    "ancestral_update",
    "ddim_update",
    "fixed_atoms_mask",
    "flow_noised_elements",
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
