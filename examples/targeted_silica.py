# %% [markdown]
# # Silica with a targeted shear modulus, validated with Tersoff
#
# The shipped ``a-SiO2`` model is conditioned on the shear modulus G (GPa) and the
# average ring size (Si atoms per ring); any subset of targets may be given, and
# classifier-free guidance (``guidance=w``) strengthens them. Density comes from
# ghost atoms: the model fills the cell and removes the atoms it marks as ghosts, so
# the composition is generated too. Each structure is then relaxed with the
# Tersoff (Munetoh) potential in LAMMPS and its relaxed-ion elastic tensor gives
# the shear modulus it actually has. Cells and steps are small so the script runs
# in seconds; use cells of 80-250 atoms and the default 200 steps for real work.

# %%
from collections import Counter

from ase_amden import AmorphousGenerator
from ase_amden.analysis import average_ring_size, elastic_tensor, isotropic_moduli, relax
from ase_amden.potentials import get_calculator

generator = AmorphousGenerator.pretrained("a-SiO2")
card = generator.card
print("conditioned on", card.property_names, "in", card.property_units)

images = generator.generate(2, cell=12.0, targets={"shear_modulus": 30.0}, steps=200,
                            seed=0, progress=False)

# %% Validate with the true potential
tersoff = get_calculator("tersoff-sio2")
for atoms in images:
    counts = Counter(atoms.get_chemical_symbols())
    relaxed = relax(atoms, tersoff, fmax=0.01, steps=1000)
    moduli = isotropic_moduli(elastic_tensor(relaxed, tersoff, steps=300))
    print(f"{dict(counts)}: target G = {atoms.info['target_shear_modulus']} GPa, "
          f"relaxed G = {moduli['G']:.1f} GPa, ring size {average_ring_size(relaxed):.2f}")
    assert counts["O"] > 0 and counts["Si"] > 0
