"""Positions-only models conditioned on a log-scale property (DM2's cooling-rate model)."""

import csv
import math
import warnings

import numpy as np
import pytest
from ase import Atoms

from ase_amden import AmorphousGenerator
from ase_amden.errors import AmdenError, InvalidStructureError
from ase_amden.training import TrainConfig, train
from ase_amden.training.batching import mass_density

RATES = [0.1, 1.0, 10.0, 100.0]


def _glasses(seed=0):
    """SiO2 cells whose density falls with log10(rate), as in slow-cooled silica."""
    rng = np.random.default_rng(seed)
    images = []
    for k, rate in enumerate(RATES * 2):
        length = 6.0 + 0.1 * math.log10(rate) + 0.01 * k
        atoms = Atoms("Si3O6", positions=rng.random((9, 3)) * length, cell=[length] * 3,
                      pbc=True)
        atoms.info["cooling_rate"] = rate
        images.append(atoms)
    return images


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("fixed")
    config = TrainConfig(
        out_dir=str(out), max_steps=3, batch_size=2, device="cpu", log_every=1,
        property_names=["cooling_rate"], property_log10=["cooling_rate"],
        property_units={"cooling_rate": "K/ps"}, fixed_composition=True,
        model={"hidden": 16, "n_layers": 2, "n_vector": 2, "cutoff": 3.0, "time_dim": 4,
               "property_dim": 4, "property_basis": 5},
    )
    return train(_glasses(), config, "toy-silica", verbose=False)


@pytest.fixture(scope="module")
def gen(checkpoint):
    return AmorphousGenerator.from_checkpoint(checkpoint, device="cpu")


def test_card_describes_a_positions_only_log_scale_model(gen, checkpoint):
    card = gen.card
    assert card.fixed_composition and card.rho_max is None
    assert card.property_log10 == [True]
    assert card.property_range == [[-1.0, 2.0]]
    assert card.property_mean[0] == pytest.approx(0.5)  # mean of log10 rates, not of rates
    assert card.training["default_composition"] == {"O": 6, "Si": 3}
    fit = card.training["density_fit"]
    assert fit["property"] == "cooling_rate" and fit["log10"]
    assert fit["slope"] < 0  # faster cooling, larger cell, lower density in this data
    with open(checkpoint.parent / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["loss_elements"]) == 0.0 for r in rows)


def test_generation_uses_the_default_composition_and_the_density_of_the_rate(gen):
    slow = gen.generate(1, targets={"cooling_rate": 0.1}, steps=2, seed=0, progress=False)[0]
    fast = gen.generate(1, targets={"cooling_rate": 100.0}, steps=2, seed=0, progress=False)[0]
    for atoms in (slow, fast):
        assert atoms.get_chemical_formula() == "O6Si3"
    fit = gen.card.training["density_fit"]
    for atoms, rate in ((slow, 0.1), (fast, 100.0)):
        expected = fit["intercept"] + fit["slope"] * math.log10(rate)
        assert mass_density(atoms) == pytest.approx(expected, rel=1e-6)
    assert mass_density(slow) > mass_density(fast)


def test_same_seed_same_structure_and_the_rate_changes_it(gen):
    kwargs = dict(cell=6.0, composition="Si3O6", steps=3, seed=4, progress=False)
    a = gen.generate(1, targets={"cooling_rate": 1.0}, **kwargs)[0]
    b = gen.generate(1, targets={"cooling_rate": 1.0}, **kwargs)[0]
    c = gen.generate(1, targets={"cooling_rate": 100.0}, **kwargs)[0]
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)


def test_composition_scales_to_n_atoms_and_must_fit_the_formula(gen):
    atoms = gen.generate(1, n_atoms=18, steps=1, seed=0, progress=False)[0]
    assert atoms.get_chemical_formula() == "O12Si6"
    with pytest.raises(AmdenError, match="multiple of 3"):
        gen.generate(1, n_atoms=10, steps=1, progress=False)


def test_rates_outside_training_warn_and_invalid_rates_are_errors(gen):
    with pytest.warns(UserWarning, match=r"outside the range .*0\.1 to 100 K/ps"):
        gen.generate(1, targets={"cooling_rate": 0.01}, steps=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gen.generate(1, targets={"cooling_rate": 3.0}, steps=1, progress=False, check="off")
    for bad in (0.0, -1.0):
        with pytest.raises(AmdenError, match="must be positive"):
            gen.generate(1, targets={"cooling_rate": bad}, steps=1, progress=False)
    with pytest.raises(AmdenError, match="finite"):
        gen.generate(1, targets={"cooling_rate": float("nan")}, steps=1, progress=False)


@pytest.mark.parametrize("sampler", ["sde", "ode", "langevin"])
def test_samplers_keep_the_composition_exact(gen, sampler):
    atoms = gen.generate(1, composition={"Si": 2, "O": 4}, cell=5.0, sampler=sampler, steps=3,
                         seed=1, progress=False)[0]
    assert atoms.get_chemical_formula() == "O4Si2"
    assert np.isfinite(atoms.positions).all()


def test_training_options_that_contradict_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ghost"):
        TrainConfig(fixed_composition=True, ghosts=True)
    config = TrainConfig(out_dir=str(tmp_path), max_steps=1, property_names=["cooling_rate"],
                         property_log10=["rate"], device="cpu")
    with pytest.raises(ValueError, match="not conditioning properties"):
        train(_glasses(), config, "x", verbose=False)
    images = _glasses()
    images[2].info["cooling_rate"] = 0.0
    config = TrainConfig(out_dir=str(tmp_path), max_steps=1, property_names=["cooling_rate"],
                         property_log10=["cooling_rate"], device="cpu")
    with pytest.raises(InvalidStructureError, match="must be positive"):
        train(images, config, "x", verbose=False)


def test_the_card_names_the_default_sampler_and_the_caller_overrides_it(gen):
    gen.card.sampling = {"sampler": "langevin", "steps": 5, "options": {"extra_noise": 0.5}}
    try:
        atoms = gen.generate(1, steps=None, seed=0, progress=False)[0]
        assert atoms.info["sampler"] == "langevin" and atoms.info["steps"] == 5
        assert atoms.info["sampler_option_extra_noise"] == 0.5
        assert "sampler_option_quiet_fraction" not in atoms.info
        mine = gen.generate(1, sampler="langevin", steps=3, sampler_options={"quiet_fraction": 0.5},
                            seed=0, progress=False)[0]
        assert mine.info["steps"] == 3
        assert mine.info["sampler_option_extra_noise"] == 0.5
        assert mine.info["sampler_option_quiet_fraction"] == 0.5
        other = gen.generate(1, sampler="sde", steps=2, seed=0, progress=False)[0]
        assert other.info["sampler"] == "sde" and "sampler_options" not in other.info
    finally:
        gen.card.sampling = {}
