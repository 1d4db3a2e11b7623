# %% [markdown]
# # The learned landscape in plain ASE: NoiseEnergyCalculator and HMC
#
# An energy-based model defines a scalar "noise energy" E_hat(x, t). As an ASE
# calculator it drives any ASE optimizer or MD class; ``HMC`` samples
# exp(-E_hat / kT) with kT = 1 (the noise energy is dimensionless; the
# calculator reports it as eV so ASE's machinery works unchanged). HMC works with
# any ASE calculator, e.g. the Stillinger-Weber potential at 1000 K below.

# %%
from ase import units
from ase.optimize import FIRE

from ase_amden import HMC, AmorphousGenerator, NoiseEnergyCalculator
from ase_amden.potentials import get_calculator

generator = AmorphousGenerator.pretrained("a-Si-melt-energy")
atoms = generator.generate(1, n_atoms=64, sampler="sde", steps=20, seed=1, progress=False)[0]

# %% Local minimisation on the noise energy at small diffusion time
atoms.calc = NoiseEnergyCalculator(generator, t=0.05)
start = atoms.get_potential_energy()
FIRE(atoms, logfile=None).run(fmax=0.5, steps=20)
print(f"noise energy {start:.2f} -> {atoms.get_potential_energy():.2f}")
assert atoms.get_potential_energy() <= start

# %% HMC on the noise energy (kT = 1), logged through ASE's own machinery
hmc = HMC(atoms, timestep=0.02, kT=1.0, n_leapfrog=15, rng=0, logfile="-", loginterval=5)
hmc.run(10)
print(f"HMC on the noise energy: acceptance {hmc.acceptance_rate:.2f}")

# %% The same class with a classical potential: the structure relaxed with
# Stillinger-Weber, then sampled at 1000 K (HMC draws its own momenta)
si = atoms.copy()
si.calc = get_calculator("sw-si")
FIRE(si, logfile=None).run(fmax=0.05, steps=300)
sw_hmc = HMC(si, timestep=1.0 * units.fs, temperature_K=1000, n_leapfrog=10, rng=0)
sw_hmc.run(10)
print(f"HMC with Stillinger-Weber at 1000 K: acceptance {sw_hmc.acceptance_rate:.2f}, "
      f"E = {si.get_potential_energy() / len(si):.3f} eV/atom")
assert 0 < sw_hmc.acceptance_rate <= 1
