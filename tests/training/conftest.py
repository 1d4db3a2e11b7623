import argparse

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from ase_amden.training import TrainConfig
from ase_amden.training.cli import add_train_parser

TINY_MODEL = {"hidden": 16, "n_layers": 2, "n_vector": 2, "cutoff": 3.0, "time_dim": 4,
              "property_dim": 4}


def random_structures(count, n_atoms=6, length=4.0, seed=0):
    rng = np.random.default_rng(seed)
    structures = []
    for _ in range(count):
        atoms = Atoms(numbers=rng.choice([8, 14], n_atoms),
                      positions=rng.random((n_atoms, 3)) * length,
                      cell=np.eye(3) * length * rng.uniform(0.95, 1.05), pbc=True)
        atoms.info["g"] = float(rng.normal(30.0, 5.0))
        structures.append(atoms)
    return structures


@pytest.fixture
def tiny_model():
    return dict(TINY_MODEL)


@pytest.fixture
def make_structures():
    return random_structures


@pytest.fixture
def structures():
    return random_structures(4)


@pytest.fixture
def tiny_config(tmp_path):
    def make(**overrides):
        settings = dict(out_dir=str(tmp_path / "run"), max_steps=4, batch_size=2, device="cpu",
                        property_names=["g"], model=dict(TINY_MODEL), log_every=1)
        settings.update(overrides)
        return TrainConfig(**settings)

    return make


@pytest.fixture
def train_cli(tmp_path, structures, capsys):
    """``f(*options)``: ``ase-amden train`` on ``structures`` (written as extxyz) with
    ``options``; asserts exit status 0 and returns the checkpoint path it printed."""
    data = tmp_path / "data.extxyz"
    write(data, structures)
    parser = argparse.ArgumentParser(prog="ase-amden")
    add_train_parser(parser.add_subparsers(dest="command"))

    def run(*options: str) -> str:
        args = parser.parse_args(["train", str(data), *options])
        assert args.handler(args) == 0
        return capsys.readouterr().out.strip()

    return run
