"""The shipped models: each loads, describes itself and generates; the default model works."""

import numpy as np
import pytest
from ase.io import read

from ase_amden.cli import main
from ase_amden.generator import DEFAULT_MODEL, AmorphousGenerator

SHIPPED = AmorphousGenerator.available_pretrained()


def test_the_models_the_docs_promise_are_shipped():
    for name in ("a-Si", "a-Si-energy", "a-SiO2", "a-Si-melt", "a-Si-melt-energy",
                 "a-Si-shortcut", "a-SiO2-cooling", "a-SiO2-shortcut"):
        assert name in SHIPPED
    assert DEFAULT_MODEL == "a-Si"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_generates(name):
    gen = AmorphousGenerator.pretrained(name, device="cpu")
    card = gen.card
    assert card.name == name and card.data_hash and card.package_version
    n_atoms = 66 if card.fixed_composition else 64  # a whole number of SiO2 units
    (atoms,) = gen.generate(1, n_atoms=n_atoms if card.rho_max is None else None,
                            cell=None if card.rho_max is None else 9.0,
                            steps=3, seed=0, progress=False)
    assert set(atoms.get_chemical_symbols()) <= set(card.elements)
    assert np.isfinite(atoms.positions).all() and atoms.info["model"] == name


def test_shortcut_model_generates_in_its_card_steps_without_options():
    gen = AmorphousGenerator.pretrained("a-Si-shortcut", device="cpu")
    assert gen.card.shortcut and gen.card.training["init_from"]["name"] == "a-Si"
    assert gen.card.sampling == {"sampler": "shortcut", "steps": 10,
                                 "targets": {"cooling_rate": 1.0}}
    (atoms,) = gen.generate(1, n_atoms=64, seed=0, progress=False)
    assert (atoms.info["sampler"], atoms.info["steps"]) == ("shortcut", 10)
    assert atoms.info["target_cooling_rate"] == 1.0
    assert len(atoms) == 64 and np.isfinite(atoms.positions).all()


def test_silica_shortcut_model_targets_properties_in_its_card_steps():
    gen = AmorphousGenerator.pretrained("a-SiO2-shortcut", device="cpu")
    card = gen.card
    assert card.shortcut and card.training["init_from"]["name"] == "a-SiO2"
    assert set(card.property_names) == {"shear_modulus", "ring_size"}
    assert card.sampling == {"sampler": "shortcut", "steps": 8, "options": {"tail": 0.3}}
    (atoms,) = gen.generate(1, cell=9.0, targets={"ring_size": 6.0}, seed=0, progress=False)
    assert (atoms.info["sampler"], atoms.info["steps"]) == ("shortcut", 8)
    assert atoms.info["sampler_option_tail"] == 0.3
    assert atoms.info["target_ring_size"] == 6.0
    assert set(atoms.get_chemical_symbols()) <= {"Si", "O"}
    assert np.isfinite(atoms.positions).all()


def test_cooling_rate_silica_model_makes_sio2_at_the_density_of_the_rate():
    gen = AmorphousGenerator.pretrained("a-SiO2-cooling", device="cpu")
    card = gen.card
    assert card.fixed_composition and card.property_names == ["cooling_rate"]
    assert card.sampling["sampler"] == "restart"
    assert set(card.training["min_distances"]) == {"O-O", "O-Si", "Si-Si"}
    slow, fast = (gen.generate(1, n_atoms=99, targets={"cooling_rate": rate}, steps=2, seed=0,
                               progress=False, check="off")[0] for rate in (0.1, 100.0))
    for atoms in (slow, fast):
        assert atoms.get_chemical_formula() == "O66Si33"
        assert atoms.info["sampler"] == "restart"
    density = [atoms.get_masses().sum() / atoms.get_volume() * 1.66054 for atoms in (slow, fast)]
    assert 2.0 < density[0] < density[1] < 2.25  # g/cm3: the data's, denser when fast


def test_silica_model_is_conditioned_on_shear_modulus_and_ring_size():
    gen = AmorphousGenerator.pretrained("a-SiO2", device="cpu")
    assert set(gen.card.property_names) == {"shear_modulus", "ring_size"}
    assert gen.card.rho_max is not None  # density through ghost atoms
    (atoms,) = gen.generate(1, cell=9.0, targets={"shear_modulus": 30.0}, steps=3, seed=0,
                            progress=False)
    assert atoms.info["target_shear_modulus"] == 30.0


def test_generate_command_uses_the_default_model(tmp_path):
    out = tmp_path / "a-Si.extxyz"
    assert main(["generate", "--count", "1", "--steps", "2", "--n-atoms", "64", "--output",
                 str(out), "--quiet", "--seed", "1"]) == 0
    (atoms,) = read(out, index=":")
    assert len(atoms) == 64 and atoms.info["model"] == DEFAULT_MODEL
