# %% [markdown]
# # Generate amorphous silicon and validate it with the true potential
#
# ``AmorphousGenerator.pretrained`` loads a shipped model; ``generate`` returns
# ``ase.Atoms``. The structures are then relaxed with Stillinger-Weber through
# LAMMPS and compared with held-out melt-quench references: RDF and ADF RMSD,
# coordination and relaxed energy. Steps are few here so the script runs in
# seconds; use the default (200) for real work.

# %%
from ase_amden import AmorphousGenerator
from ase_amden.analysis import compare, relaxed_energies
from ase_amden.potentials import get_calculator

generator = AmorphousGenerator.pretrained("a-Si-melt")
images = generator.generate(2, n_atoms=64, sampler="sde", steps=20, seed=0, progress=False)
print(images[0].info["model"], images[0].info["sampler"], len(images[0]), "atoms")

# %% The true potential validates what the network made
calculator = get_calculator("sw-si")
energies = relaxed_energies(images, calculator, fmax=0.05, steps=300)
print("relaxed energy per atom (eV):", [round(e, 3) for e in energies])
assert all(-4.4 < e < -3.0 for e in energies)

# %% Compare with reference structures (here: the relaxed diamond crystal is
# only a stand-in; pass a dataset's held-out split in practice)
from ase.build import bulk  # noqa: E402

reference = [bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2)]
result = compare(images, reference)
print(f"RDF RMSD {result['rdf_rmsd']:.3f}, ADF RMSD {result['adf_rmsd']:.4f}")
