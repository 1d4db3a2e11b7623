"""Shortcut models: trained self-consistency, fine-tuning a plain model into one, shipping."""

from dataclasses import asdict

import pytest
import torch

from ase_amden.diffusion import SamplerState, ShortcutSampler
from ase_amden.generator import AmorphousGenerator
from ase_amden.models import Denoiser, DenoiserConfig
from ase_amden.models.denoiser import with_step_size
from ase_amden.training import (
    TrainConfig,
    export_for_shipping,
    load_checkpoint,
    read_checkpoint,
    train,
)
from ase_amden.training.batching import collate_for

#: (t, d): one shortcut step of 2d from t against two of d.
STEPS = ((0.9, 0.25), (0.5, 0.125), (0.3, 0.125))


def _train(structures, tiny_model, out, shortcut_fraction, steps=400):
    config = TrainConfig(out_dir=str(out), max_steps=steps, batch_size=2, device="cpu", lr=3e-3,
                         model=dict(tiny_model), property_names=[], shortcut=True,
                         shortcut_fraction=shortcut_fraction, seed=0)
    return train(structures, config, "tiny-shortcut", verbose=False)


def _half_step_gaps(path, structures) -> list[float]:
    """|one step of 2d - two steps of d| / |one step of 2d|, positions, per (t, d)."""
    loaded = load_checkpoint(path)
    model, card = loaded.model.eval().double(), loaded.card
    sampler = ShortcutSampler.from_card(card)

    def denoise(positions, elements, cell, system_idx, t, step_size=None):
        return model(positions, elements, cell, system_idx, t, step_size=step_size)

    batch = collate_for(structures, card).to(torch.device("cpu"), torch.float64)
    generator = torch.Generator().manual_seed(5)
    gaps = []
    with torch.no_grad():
        for t, d in STEPS:
            noise = torch.randn(batch.positions.shape, generator=generator, dtype=torch.float64)
            start = SamplerState(
                batch.positions + card.sigma_x_max * t * noise,
                torch.randn(batch.elements.shape, generator=generator, dtype=torch.float64),
                batch.cell, batch.system_idx, None)
            one, _ = sampler.step(start, t, t - 2 * d, denoise, generator)
            half, half_e = sampler.step(start, t, t - d, denoise, generator)
            middle = SamplerState(half, half_e, batch.cell, batch.system_idx, None)
            two, _ = sampler.step(middle, t - d, t - 2 * d, denoise, generator)
            gaps.append(float((one - two).norm() / (one - start.positions).norm()))
    return gaps


def test_two_half_steps_equal_one_full_step_after_shortcut_training(
        tmp_path, make_structures, tiny_model):
    structures, held_out = make_structures(4), make_structures(4, seed=9)
    trained = _half_step_gaps(_train(structures, tiny_model, tmp_path / "sc", 1.0), held_out)
    # The same network and steps without the self-consistency term: step sizes unlearnt.
    control = _half_step_gaps(_train(structures, tiny_model, tmp_path / "plain", 0.0), held_out)
    assert max(trained) < 0.2, trained
    assert sum(trained) < 0.7 * sum(control), (trained, control)


def test_a_plain_parent_grown_into_a_shortcut_network_computes_the_parent_function():
    config = DenoiserConfig(n_classes=3, hidden=16, n_layers=2, n_vector=2, cutoff=3.0,
                            time_dim=4, n_radial=4, channel_distances=True)
    torch.manual_seed(0)
    parent = Denoiser(config).double().eval()
    grown = Denoiser(DenoiserConfig(**{**asdict(config), "shortcut": True})).double().eval()
    grown.load_state_dict(with_step_size(parent.state_dict(), grown.config))
    positions = torch.rand(8, 3, dtype=torch.float64) * 4.0
    elements = torch.randn(8, 3, dtype=torch.float64)
    cell = 4.0 * torch.eye(3, dtype=torch.float64).unsqueeze(0)
    idx = torch.zeros(8, dtype=torch.long)
    t = torch.tensor([0.4], dtype=torch.float64)
    expected = parent(positions, elements, cell, idx, t)
    for d in (0.0, 0.25, 0.5):
        got = grown(positions, elements, cell, idx, t, step_size=torch.tensor([d]).double())
        for a, b in zip(expected, got, strict=True):
            torch.testing.assert_close(b, a)
    with pytest.raises(ValueError, match="shortcut=True"):
        with_step_size(parent.state_dict(), config)


def test_init_from_a_plain_model_fine_tunes_a_shortcut_model(tmp_path, structures, tiny_config):
    parent = train(structures, tiny_config(out_dir=str(tmp_path / "parent"), max_steps=2),
                   "parent", verbose=False)
    child = train(structures, tiny_config(out_dir=str(tmp_path / "child"), max_steps=2,
                                          shortcut=True, shortcut_fraction=1.0,
                                          init_from=str(parent)), "child", verbose=False)
    loaded = read_checkpoint(child)
    assert loaded["card"]["shortcut"] is True
    assert loaded["card"]["training"]["init_from"]["name"] == "parent"
    with pytest.raises(ValueError, match="shortcut_fraction"):
        tiny_config(shortcut=True, shortcut_fraction=1.5)


def test_the_shipped_card_names_the_shortcut_sampler_and_generate_uses_it(
        tmp_path, structures, tiny_config):
    path = train(structures, tiny_config(out_dir=str(tmp_path / "run"), max_steps=1,
                                         shortcut=True, property_names=[]), "sc", verbose=False)
    shipped = export_for_shipping(path, tmp_path / "sc.pt",
                                  sampling={"sampler": "shortcut", "steps": 3})
    assert read_checkpoint(path)["card"]["sampling"] == {}  # the checkpoint is unchanged
    gen = AmorphousGenerator.from_checkpoint(shipped, device="cpu")
    assert gen.card.sampling == {"sampler": "shortcut", "steps": 3}
    (atoms,) = gen.generate(1, seed=0, progress=False)
    assert (atoms.info["sampler"], atoms.info["steps"]) == ("shortcut", 3)
    (atoms,) = gen.generate(1, steps=2, seed=0, progress=False)
    assert (atoms.info["sampler"], atoms.info["steps"]) == ("shortcut", 2)
    (atoms,) = gen.generate(1, sampler="ode", steps=2, seed=0, progress=False)
    assert (atoms.info["sampler"], atoms.info["steps"]) == ("ode", 2)
