from dataclasses import asdict

import pytest
import torch

import ase_amden
from ase_amden.errors import CheckpointError
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
from ase_amden.training import (
    ExponentialMovingAverage,
    collate,
    export_for_shipping,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from ase_amden.training import checkpoint as checkpoint_module


def _model_and_card(tiny_model, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    config = DenoiserConfig(n_classes=3, property_names=("g",), **tiny_model)
    model = Denoiser(config).to(dtype)
    card = ModelCard(name="tiny", elements=["O", "Si"], model_config=asdict(config),
                     property_names=["g"], property_mean=[30.0], property_std=[5.0],
                     package_version=ase_amden.__version__)
    return model, card


def _outputs(model, batch):
    t = torch.full((batch.n_systems,), 0.3, dtype=torch.float64)
    return model(batch.positions, batch.elements, batch.cell, batch.system_idx, t,
                 batch.properties, batch.property_mask)


def test_round_trip_gives_identical_outputs(tmp_path, structures, tiny_model):
    model, card = _model_and_card(tiny_model)
    model.eval()
    batch = collate(structures, card.elements, ["g"], [30.0], [5.0])
    path = save_checkpoint(tmp_path / "m.pt", model, card, step=7, epoch=2, extra={"a": [1, 2]})
    loaded = load_checkpoint(path)
    assert not loaded.model.training
    assert loaded.card == card
    assert loaded.state["step"] == 7 and loaded.state["epoch"] == 2
    assert loaded.state["extra"] == {"a": [1, 2]}
    for got, want in zip(_outputs(loaded.model, batch), _outputs(model, batch), strict=True):
        assert got.dtype == torch.float64
        assert torch.equal(got, want)


def test_load_prefers_ema_weights(tmp_path, tiny_model):
    model, card = _model_and_card(tiny_model)
    ema = ExponentialMovingAverage(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    path = save_checkpoint(tmp_path / "m.pt", model, card, ema=ema)
    loaded = load_checkpoint(path)
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, ema.shadow[key])
    raw = loaded.state["model"]
    assert any(not torch.equal(raw[k], ema.shadow[k]) for k in raw)


def test_interrupted_save_keeps_old_checkpoint(tmp_path, monkeypatch, tiny_model):
    model, card = _model_and_card(tiny_model)
    path = save_checkpoint(tmp_path / "last.pt", model, card, step=1)
    before = path.read_bytes()

    def crash(payload, target):
        target.write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, card, step=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).state["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_foreign_files_and_other_formats_raise(tmp_path, tiny_model):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pt.*not an ase_amden checkpoint"):
        load_checkpoint(text)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="plain.pt.*no 'format'"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")

    model, card = _model_and_card(tiny_model)
    path = save_checkpoint(tmp_path / "m.pt", model, card)
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "format": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99.*retrain"):
        load_checkpoint(tmp_path / "future.pt")
    del payload["ema"]
    torch.save(payload, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"lacks the entries \['ema'\]"):
        load_checkpoint(tmp_path / "partial.pt")


def test_version_mismatch_that_breaks_loading_names_the_version(tmp_path, tiny_model):
    model, card = _model_and_card(tiny_model)
    card.package_version = "0.0.9"
    card.model_config = {**card.model_config, "removed_option": 1}
    path = save_checkpoint(tmp_path / "old.pt", model, card)
    with pytest.raises(CheckpointError, match="old.pt.*ase_amden 0.0.9"):
        load_checkpoint(path)
    card.model_config = {k: v for k, v in card.model_config.items() if k != "removed_option"}
    payload = torch.load(path, weights_only=True)
    payload["card"] = card.to_dict()
    payload["model"] = {k: v for k, v in list(payload["model"].items())[1:]}
    payload.pop("checksum")  # as a file from before checksums, with a tensor missing
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)


def test_export_for_shipping_is_small_float32_ema(tmp_path, structures, tiny_model):
    model, card = _model_and_card(tiny_model)
    optimizer = torch.optim.AdamW(model.parameters())
    model(*_fake_inputs(structures, card)).__getitem__(0).sum().backward()
    optimizer.step()
    ema = ExponentialMovingAverage(model)
    src = save_checkpoint(tmp_path / "full.pt", model, card, optimizer=optimizer, ema=ema)
    dst = export_for_shipping(src, tmp_path / "ship.pt")
    shipped = read_checkpoint(dst)
    assert shipped["optimizer"] is None and shipped["ema"] is None
    assert all(v.dtype == torch.float32 for v in shipped["model"].values())
    assert dst.stat().st_size < 0.5 * src.stat().st_size
    loaded = load_checkpoint(dst)
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, ema.shadow[key].float())


def _fake_inputs(structures, card):
    batch = collate(structures, card.elements, ["g"], [30.0], [5.0]).to("cpu", torch.float64)
    t = torch.full((batch.n_systems,), 0.5, dtype=torch.float64)
    return (batch.positions, batch.elements, batch.cell, batch.system_idx, t, batch.properties,
            batch.property_mask)
