# %% [markdown]
# # Generating around fixed atoms, and matching a measured S(q)
#
# Inpainting: atoms of a template that carry ASE's ``FixAtoms`` stay exactly where they are
# (and keep their elements) while the model generates the rest of the cell around them.
# Three uses: amorphous Si grown on a crystalline Si slab, amorphous silica around an empty
# spherical pore, and refilling a damaged region of a structure. Then guidance by an
# observable: structures whose X-ray S(q) matches a "measured" one. Cells and steps are
# small so the script runs in seconds; use the default 200 steps for real work.

# %%
import numpy as np
from ase.build import bulk
from ase.constraints import FixAtoms

from ase_amden import AmorphousGenerator
from ase_amden.analysis.scattering import structure_factor

a_si = AmorphousGenerator.pretrained("a-Si")

# %% a-Si on a crystalline Si slab: two fixed crystal layers, the rest of the cell generated
slab = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 1))
slab.cell[2, 2] = 5.43 * 2.2  # the slab fills 1/2.2 of the cell height
slab.pbc = True
slab.set_constraint(FixAtoms(indices=range(len(slab))))
grown = a_si.generate(template=slab, steps=20, seed=0, progress=False)[0]
moved = np.abs(grown.positions[: len(slab)] - slab.positions).max()
print(f"slab: {len(slab)} fixed + {len(grown) - len(slab)} generated atoms, fixed atoms moved "
      f"{moved} Å, closest generated-fixed approach {grown.info['inpainting_min_distance']:.2f} Å")

# %% Refilling a damaged region: remove a sphere from a structure and regenerate it
original = a_si.generate(n_atoms=64, steps=20, seed=1, progress=False)[0]
centre = original.cell.sum(axis=0) / 2
damaged = np.linalg.norm(original.positions - centre, axis=1) < 3.5
template = original.copy()
template.set_constraint(FixAtoms(mask=~damaged))
healed = a_si.generate(template=template, n_atoms=int(damaged.sum()), steps=20, seed=2,
                       progress=False)[0]
print(f"refilled {damaged.sum()} atoms; {len(healed)} in total")

# %% a-SiO2 around an empty spherical pore: the pore wall (atoms 4-7 Å from the centre)
# is held; the atoms inside the wall's outer radius are the pore, left empty.
a_sio2 = AmorphousGenerator.pretrained("a-SiO2")
glass = a_sio2.generate(cell=14.0, composition={"Si": 40, "O": 80}, steps=20, seed=3,
                        progress=False)[0]
distance = np.linalg.norm(glass.positions - glass.cell.sum(axis=0) / 2, axis=1)
wall = (distance > 4.0) & (distance < 7.0)
outside = distance >= 7.0
template = glass[wall | outside]
template.set_constraint(FixAtoms(mask=wall[wall | outside]))
free = template[~wall[wall | outside]]
porous = a_sio2.generate(template=template, composition=free.get_chemical_symbols(),
                         steps=20, seed=4, progress=False)[0]
inside = np.linalg.norm(porous.positions - porous.cell.sum(axis=0) / 2, axis=1) < 3.0
print(f"pore: {wall.sum()} wall atoms held, {len(free)} generated, {inside.sum()} atoms "
      "within 3 Å of the pore centre")

# %% Matching a measured X-ray S(q): here the S(q) of another a-Si structure, plus noise
measured = a_si.generate(n_atoms=64, steps=20, seed=5, progress=False)[0]
q = np.linspace(1.3, 10.0, 50)
s_q = structure_factor(measured, q) + np.random.default_rng(0).normal(0, 0.01, q.size)
for observables in (None, {"structure_factor": (q, s_q)}):
    images = a_si.generate(2, n_atoms=64, steps=20, seed=6, progress=False,
                           observables=observables)
    r = [structure_factor(atoms, q) for atoms in images]
    r = np.mean([np.sqrt(np.sum((x - s_q) ** 2) / np.sum((s_q - 1) ** 2)) for x in r])
    print("guided" if observables else "unguided", f"R-factor {r:.3f}")
