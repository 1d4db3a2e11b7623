"""Every sampler through AmorphousGenerator.generate with a tiny real (untrained) model of the
matching kind: wiring, options, defaults and clear errors."""

from dataclasses import asdict

import numpy as np
import pytest
import torch

from ase_amden.diffusion import SAMPLERS
from ase_amden.errors import AmdenError, UnknownNameError
from ase_amden.generator import AmorphousGenerator
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard

KINDS = {
    "plain": ({}, {}),
    "energy": ({"energy": True}, {"energy": True}),
    "flow": ({}, {"objective": "flow"}),
    "shortcut": ({"shortcut": True}, {"shortcut": True}),
    "flow-shortcut": ({"shortcut": True}, {"shortcut": True, "objective": "flow"}),
}


def tiny_generator(kind: str) -> AmorphousGenerator:
    config_changes, card_changes = KINDS[kind]
    config = DenoiserConfig(n_classes=3, property_names=("density",), hidden=8, n_layers=1,
                            n_vector=2, cutoff=3.0, time_dim=4, property_dim=4,
                            **config_changes)
    card = ModelCard(name=f"tiny-{kind}", elements=["Si", "O"], model_config=asdict(config),
                     property_names=["density"], property_units=["g/cm^3"],
                     property_mean=[2.2], property_std=[0.1], **card_changes)
    torch.manual_seed(0)
    return AmorphousGenerator(Denoiser(config).double(), card, device="cpu")


@pytest.mark.parametrize(
    ("sampler", "kind", "steps"),
    [("hmc", "energy", 4), ("flow", "flow", 3), ("shortcut", "shortcut", 2),
     ("shortcut", "flow-shortcut", 2), ("langevin", "plain", 3)],
)
def test_each_sampler_makes_valid_atoms(sampler, kind, steps):
    gen = tiny_generator(kind)
    structures = gen.generate(2, cell=6.0, n_atoms=6, sampler=sampler, steps=steps,
                              targets={"density": 2.3}, seed=0, progress=False)
    assert len(structures) == 2
    for atoms in structures:
        assert len(atoms) == 6 and atoms.pbc.all()
        assert set(atoms.get_chemical_symbols()) <= {"Si", "O"}
        scaled = atoms.get_scaled_positions(wrap=False)
        assert np.isfinite(scaled).all() and (scaled >= 0).all() and (scaled < 1).all()
        assert atoms.info["sampler"] == sampler and atoms.info["steps"] == steps
        if sampler == "hmc":
            # grid 0.99, 0.745, 0.5, 0.255, 0.01 (then 0): HMC before the last three steps
            assert atoms.info["hmc_iterations"] == 3
            assert 0.0 <= atoms.info["hmc_acceptance"] <= 1.0
        else:
            assert "hmc_acceptance" not in atoms.info
    again = gen.generate(2, cell=6.0, n_atoms=6, sampler=sampler, steps=steps,
                         targets={"density": 2.3}, seed=0, progress=False)
    assert np.allclose(again[1].positions, structures[1].positions)


def test_sampler_options_reach_the_sampler_and_atoms_info():
    gen = tiny_generator("energy")
    atoms = gen.generate(cell=6.0, n_atoms=4, sampler="hmc", steps=2, seed=1, progress=False,
                         sampler_options={"dt0": 0.2, "n_leapfrog": 2, "t_max": 1.0})[0]
    assert {k: v for k, v in atoms.info.items() if k.startswith("sampler_option_")} == {
        "sampler_option_dt0": 0.2, "sampler_option_n_leapfrog": 2, "sampler_option_t_max": 1.0}
    assert atoms.info["hmc_iterations"] == 3  # t_max = 1: before each step (0.99, 0.5, 0.01)
    with pytest.raises(UnknownNameError, match=r"unknown option\(s\) \['dt'\].*dt0"):
        gen.generate(cell=6.0, n_atoms=4, sampler="hmc", steps=2, sampler_options={"dt": 0.2})
    with pytest.raises(AmdenError, match="invalid option of sampler 'hmc': dt0 must be > 0"):
        gen.generate(cell=6.0, n_atoms=4, sampler="hmc", steps=2, sampler_options={"dt0": -1})


def test_default_steps_are_the_samplers_own():
    assert {name: SAMPLERS[name].default_steps for name in
            ("sde", "ode", "flow", "hmc", "shortcut", "langevin")} == {
        "sde": 200, "ode": 200, "flow": 200, "hmc": 2000, "shortcut": 4, "langevin": 3000}
    calls = []
    gen = tiny_generator("shortcut")
    gen.model.register_forward_hook(lambda *args: calls.append(1))
    atoms = gen.generate(cell=6.0, n_atoms=4, sampler="shortcut", seed=0, progress=False)[0]
    assert atoms.info["steps"] == 4 and len(calls) == 4


@pytest.mark.parametrize(
    ("sampler", "kind", "message"),
    [("hmc", "plain", r"sampler 'hmc' cannot use model 'tiny-plain': HMC denoising needs the "
                      r"noise energy.*DenoiserConfig\(energy=True\).*'langevin', 'ode', "
                      r"'restart', 'sde'"),
     ("flow", "plain", "objective 'eps'"),
     ("sde", "flow", r"objective 'flow'.*samplers for this model: 'flow'$"),
     ("shortcut", "plain", "trained without the shortcut loss.*shortcut=True"),
     ("langevin", "flow", "objective 'flow'")],
)
def test_samplers_refuse_models_they_cannot_use(sampler, kind, message):
    with pytest.raises(AmdenError, match=message):
        tiny_generator(kind).generate(cell=6.0, n_atoms=4, sampler=sampler, steps=1)


def test_hmc_takes_no_guidance():
    with pytest.raises(AmdenError, match="sampler 'hmc' takes no classifier-free guidance"):
        tiny_generator("energy").generate(cell=6.0, n_atoms=4, sampler="hmc", steps=1,
                                          targets={"density": 2.3}, guidance=1.0)
