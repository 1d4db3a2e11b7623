"""ase_amden: diffusion models that design amorphous materials, inside ASE."""

__version__ = "0.1.0"

__all__ = ["__version__"]
