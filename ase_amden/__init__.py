"""ase_amden: diffusion models that design amorphous materials, inside ASE.

The three public faces: :class:`AmorphousGenerator` (structures from a trained
model), :class:`NoiseEnergyCalculator` (the learned landscape as an ASE
calculator) and :class:`HMC` (Hamiltonian Monte Carlo as an ASE dynamics class).
"""

__version__ = "0.1.0"

from .calculators import NoiseEnergyCalculator  # noqa: E402
from .dynamics import HMC  # noqa: E402
from .generator import AmorphousGenerator  # noqa: E402

__all__ = ["HMC", "AmorphousGenerator", "NoiseEnergyCalculator", "__version__"]
