"""Sampling dynamics: Hamiltonian Monte Carlo for ASE and for batched HMC denoising."""

from ase_amden.dynamics.hmc import HMC, HMCLogger
from ase_amden.dynamics.hmc_denoise import hmc_denoise_step
from ase_amden.dynamics.hmc_kernel import EnergyAndForces, HMCStepResult, hmc_step

__all__ = ["HMC", "HMCLogger", "EnergyAndForces", "HMCStepResult", "hmc_denoise_step", "hmc_step"]
