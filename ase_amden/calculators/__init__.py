"""ASE calculators backed by ase_amden models."""

from ase_amden.calculators.noise_energy import NoiseEnergyCalculator

__all__ = ["NoiseEnergyCalculator"]
