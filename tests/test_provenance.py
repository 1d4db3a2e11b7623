"""Provenance survives every format that has room for it, and regenerates a structure."""

from dataclasses import asdict

import ase.db
import ase.io
import numpy as np
import pytest
import torch

import ase_amden
from ase_amden.errors import AmdenError
from ase_amden.generator import AmorphousGenerator
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
from ase_amden.provenance import PROVENANCE_KEYS, write_structures
from ase_amden.structures import read_structures

FAST = {"steps": 4, "progress": False}


def _generator(rho_max=0.05, dtype=torch.float32, properties=("shear_modulus",)):
    config = DenoiserConfig(n_classes=3, property_names=properties, hidden=16, n_layers=1,
                            n_vector=2, cutoff=3.0)
    card = ModelCard(
        name="toy-SiO2", elements=["Si", "O"], model_config=asdict(config), rho_max=rho_max,
        property_names=list(properties), property_units=["GPa"] * len(properties),
        property_mean=[30.0] * len(properties), property_std=[2.0] * len(properties),
        training={"default_n_atoms": 8, "default_number_density": 0.04},
    )
    torch.manual_seed(0)
    return AmorphousGenerator(Denoiser(config).to(dtype), card, device="cpu")


@pytest.fixture(scope="module")
def gen():
    return _generator()


@pytest.fixture(scope="module")
def images(gen):
    return gen.generate(3, cell=7.0, seed=7, batch_size=2, targets={"shear_modulus": 31.5},
                        sampler_options={"t_end": 0.02}, **FAST)


def _same(a, b):
    return np.array_equal(a.numbers, b.numbers) and np.array_equal(a.positions, b.positions)


def test_info_is_flat_typed_and_complete(gen, images):
    for index, atoms in enumerate(images):
        info = atoms.info
        assert set(PROVENANCE_KEYS) <= set(info)
        assert all(isinstance(v, (str, int, float, bool)) for v in info.values()), info
        assert info["structure_index"] == index and info["count"] == 3
        assert info["batch_size"] == 2 and info["seed"] == 7
        assert info["target_shear_modulus"] == 31.5 and info["sampler_option_t_end"] == 0.02
        assert info["ase_amden_version"] == ase_amden.__version__
        assert info["model_hash"] == gen.model_hash and len(gen.model_hash) == 12


def test_model_hash_follows_the_weights():
    first, second = _generator(), _generator()
    assert first.model_hash == second.model_hash
    with torch.no_grad():
        next(second.model.parameters()).add_(1e-6)
    second._model_hash = None
    assert first.model_hash != second.model_hash


@pytest.mark.parametrize("ext", ["extxyz", "xyz", "traj", "db", "json"])
def test_provenance_round_trips_and_regenerates_bit_for_bit(gen, images, tmp_path, ext):
    path = tmp_path / f"out.{ext}"
    write_structures(path, images)
    back = read_structures(path)
    assert len(back) == 3
    for original, read in zip(images, back, strict=True):
        for key, value in original.info.items():
            assert read.info[key] == value, (ext, key)
            assert type(read.info[key].item() if hasattr(read.info[key], "item")
                        else read.info[key]) is type(value), (ext, key)
    again = gen.regenerate(back[2])
    assert _same(again, images[2])
    assert again.info == images[2].info


def test_db_write_with_info_as_keys_works_also_without_targets(gen, tmp_path):
    (atoms,) = gen.generate(1, cell=7.0, seed=3, **FAST)
    assert not any(key.startswith("target_") for key in atoms.info)
    with ase.db.connect(tmp_path / "plain.db") as db:
        db.write(atoms, **atoms.info)
        row = db.get(id=1)
    assert row.key_value_pairs == atoms.info


def test_cif_keeps_the_structure_but_has_no_place_for_provenance(images, tmp_path):
    path = tmp_path / "out.cif"
    write_structures(path, images[:1])
    back = ase.io.read(path)
    assert np.allclose(back.cell.array, images[0].cell.array)
    assert np.allclose(back.get_scaled_positions(), images[0].get_scaled_positions(), atol=1e-5)
    assert "seed" not in back.info


def test_a_structure_does_not_depend_on_count_or_batch_size(gen):
    alone = gen.generate(1, cell=7.0, seed=7, **FAST)[0]
    three = gen.generate(3, cell=7.0, seed=7, **FAST)
    one_by_one = gen.generate(3, cell=7.0, seed=7, batch_size=1, **FAST)
    assert _same(alone, three[0])
    assert _same(one_by_one[2], three[2])
    assert not np.array_equal(three[0].positions[:3], three[1].positions[:3])


@pytest.mark.parametrize("sampler", ["ode", "langevin"])
def test_regenerate_a_plain_model_and_fixed_composition(sampler):
    plain = _generator(rho_max=None)
    made = plain.generate(3, cell=7.0, n_atoms=9, seed=11, batch_size=2, sampler=sampler, **FAST)
    assert _same(plain.regenerate(made[1]), made[1])
    fixed = plain.generate(2, cell=7.0, composition={"O": 4, "Si": 2}, seed=5, **FAST)
    assert fixed[0].info["fixed_composition"] is True
    assert _same(plain.regenerate(fixed[1]), fixed[1])


def test_regenerate_shows_progress_when_asked(gen, images, capsys):
    assert _same(gen.regenerate(images[0], progress=True), images[0])
    assert "5/5" in capsys.readouterr().err  # 4 steps + the final step to t = 0


def test_regenerate_refuses_other_weights_and_missing_keys(images):
    other = _generator()
    with torch.no_grad():
        next(other.model.parameters()).mul_(1.5)
    with pytest.raises(AmdenError, match="load that model"):
        other.regenerate(images[0])
    stripped = images[0].copy()
    del stripped.info["seed"]
    with pytest.raises(AmdenError, match=r"lacks the provenance key\(s\) \['seed'\]"):
        other.regenerate(stripped)


def test_cli_writes_provenance_into_a_database(gen, tmp_path):
    from ase_amden.cli import main
    from ase_amden.training import save_checkpoint

    checkpoint = save_checkpoint(tmp_path / "toy.pt", gen.model, gen.card)
    out = tmp_path / "made.db"
    assert main(["generate", "--checkpoint", str(checkpoint), "--output", str(out), "--count",
                 "2", "--cell", "7", "--steps", "4", "--seed", "9", "--device", "cpu",
                 "--quiet"]) == 0
    back = read_structures(out)
    assert [a.info["structure_index"] for a in back] == [0, 1]
    loaded = AmorphousGenerator.from_checkpoint(checkpoint, device="cpu")
    assert back[1].info["model_hash"] == loaded.model_hash
    assert _same(loaded.regenerate(back[1]), back[1])
