from dataclasses import asdict

import numpy as np
import pytest
import torch
from ase import Atoms

from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
from ase_amden.training.checkpoint import LoadedCheckpoint


def tiny_energy_model(energy=True, seed=0):
    """A small float64 denoiser with O(1) random weights and its card (elements Si, O)."""
    config = DenoiserConfig(
        n_classes=3, property_names=("density",), hidden=12, n_layers=2, n_vector=2,
        cutoff=3.0, time_dim=4, property_dim=4, energy=energy,
    )
    torch.manual_seed(seed)
    model = Denoiser(config).double()
    with torch.no_grad():  # untrained output layers start near zero: make the energy O(1)
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    model.eval()
    card = ModelCard(
        name="tiny-sio2", elements=["Si", "O"], model_config=asdict(config),
        property_names=["density"], property_units=["g/cm^3"], property_mean=[2.2],
        property_std=[0.1], energy=energy,
    )
    return LoadedCheckpoint(model=model, card=card, state={})


@pytest.fixture
def make_energy_model():
    return tiny_energy_model


@pytest.fixture
def energy_model():
    return tiny_energy_model()


def random_structure(n_si=2, n_o=4, length=4.0, seed=0):
    """Random periodic Si/O structure with no pair closer than 1.2 Å."""
    rng = np.random.default_rng(seed)
    atoms = Atoms(f"Si{n_si}O{n_o}", cell=np.diag([length, length * 1.05, length * 0.95]),
                  pbc=True)
    while True:
        atoms.set_scaled_positions(rng.random((len(atoms), 3)))
        distances = atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)]
        if distances.min() > 1.2:
            return atoms


@pytest.fixture
def make_structure():
    return random_structure


@pytest.fixture
def structure():
    return random_structure()
