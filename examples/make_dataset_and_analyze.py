# %% [markdown]
# # A melt-quench dataset made with LAMMPS, then analysed
#
# A protocol is plain data: potential, composition, density, timestep and
# stages. Here a deliberately tiny one (64 Si, 2 ps melt, fast quench) so the
# script runs in seconds; the shipped protocols (``ase_amden.data.PROTOCOLS``)
# follow the AMDEN paper.

# %%
import os
import tempfile

from ase_amden.analysis import adf, average_ring_size, coordination, rdf
from ase_amden.data import Protocol, Stage, make_dataset

protocol = Protocol(
    name="example-a-Si",
    potential="sw-si",
    formula={"Si": 1},
    n_atoms=(64, 64),
    density_g_cm3=2.33,
    timestep_fs=2.0,
    stages=(
        Stage("minimize"),
        Stage("nvt", 2500.0, duration_ps=2.0, measure_msd=True),
        Stage("nvt", 2500.0, 300.0, duration_ps=4.0),
    ),
)
folder = tempfile.mkdtemp()
path = os.path.join(folder, "example.h5")

# %% Samples run on a local Dask cluster and are saved as they finish; rerunning
# the call after an interrupt only makes what is missing.
dataset = make_dataset(protocol, count=2, output=path, workers=1, verbose=False)
print(dataset.summary()["properties"]["relaxed_energy"])

# %% Structural analysis takes one Atoms or a list (averaged)
images = list(dataset)
r, g = rdf(images, rmax=5.0, nbins=100)
theta, p = adf(images, cutoff=2.9)
mean_cn = coordination(images, cutoff=2.9).mean
print(f"first RDF peak at {r[g.argmax()]:.2f} Å, ADF peak at {theta[p.argmax()]:.0f} deg, "
      f"coordination {mean_cn:.2f}, average ring size {average_ring_size(images, cutoff=2.9):.2f}")
assert 2.2 < r[g.argmax()] < 2.6
