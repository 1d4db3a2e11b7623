import csv

import numpy as np
import pytest
import torch

import ase_amden
from ase_amden.errors import CheckpointError, InvalidArgumentError
from ase_amden.generator import AmorphousGenerator
from ase_amden.training import TrainConfig, Trainer, load_checkpoint, read_checkpoint, train
from ase_amden.training.batching import data_hash


def test_resume_matches_uninterrupted_run(tmp_path, structures, tiny_config):
    straight = train(structures, tiny_config(out_dir=str(tmp_path / "a"), max_steps=6),
                     "t", verbose=False)
    first = train(structures, tiny_config(out_dir=str(tmp_path / "b"), max_steps=3),
                  "t", verbose=False)
    assert read_checkpoint(first)["step"] == 3
    resumed = train(structures, tiny_config(out_dir=str(tmp_path / "b"), max_steps=6),
                    "t", verbose=False)
    a, b = read_checkpoint(straight), read_checkpoint(resumed)
    assert a["step"] == b["step"] == 6
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
        assert torch.equal(a["ema"]["shadow"][key], b["ema"]["shadow"][key]), key
    # a fresh start (no resume) differs from the resumed run only if it trains again
    again = train(structures, tiny_config(out_dir=str(tmp_path / "b"), max_steps=6),
                  "t", resume=False, verbose=False)
    c = read_checkpoint(again)
    assert all(torch.equal(a["model"][k], c["model"][k]) for k in a["model"])


def test_keep_every_keeps_the_checkpoint_of_those_steps(tmp_path, structures, tiny_config):
    last = train(structures, tiny_config(max_steps=5, keep_every=2), "t", verbose=False)
    kept = sorted(p.name for p in last.parent.glob("step_*.pt"))
    assert kept == ["step_000002.pt", "step_000004.pt"]
    for name in kept:  # each a loadable checkpoint of its own step, not a copy of the last
        payload = read_checkpoint(last.parent / name)
        assert payload["step"] == int(name[5:11]) and payload["card"]["training"]["steps"] == \
            payload["step"]
    early, final = read_checkpoint(last.parent / kept[0]), read_checkpoint(last)
    assert not all(torch.equal(early["model"][k], final["model"][k]) for k in final["model"])
    with pytest.raises(InvalidArgumentError, match="keep_every must be >= 1"):
        tiny_config(keep_every=0)


def test_resume_refuses_other_data(tmp_path, structures, make_structures, tiny_config):
    train(structures, tiny_config(max_steps=1), "t", verbose=False)
    with pytest.raises(CheckpointError, match="other data.*--no-resume"):
        train(make_structures(4, seed=5), tiny_config(max_steps=2), "t", verbose=False)


def test_card_is_filled_and_validation_logged(tmp_path, structures, make_structures,
                                              tiny_config):
    config = tiny_config(ghosts=True, epochs=2, max_steps=None, property_units={"g": "GPa"})
    trainer = Trainer(structures, config, "tiny-sio2", validation=make_structures(2, seed=9))
    path = trainer.run(verbose=False)
    loaded = load_checkpoint(path)
    card = loaded.card
    assert card.name == "tiny-sio2" and card.elements == ["O", "Si"]
    densities = [len(a) / a.cell.volume for a in structures]
    assert card.rho_max == pytest.approx(max(densities) * 1.05)
    values = [a.info["g"] for a in structures]
    assert card.property_mean == pytest.approx([np.mean(values)])
    assert card.property_std == pytest.approx([np.std(values)])
    assert card.property_units == ["GPa"]
    assert card.data_hash == data_hash(structures, ["g"])
    assert card.package_version == ase_amden.__version__
    assert card.training["default_n_atoms"] == 6
    assert card.training["default_number_density"] == pytest.approx(np.median(densities))
    history = card.training["history"]
    assert [h["epoch"] for h in history] == [0, 1]  # 4 structures / batch 2 = 2 steps/epoch
    assert all(np.isfinite(h["val_loss"]) and np.isfinite(h["train_loss"]) for h in history)
    with open(tmp_path / "run" / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert loaded.state["step"] == 4 and loaded.state["epoch"] == 2


def test_cli_trains_from_extxyz(tmp_path, train_cli):
    out = tmp_path / "cli"
    printed = train_cli(
        "--name", "cli", "--out", str(out), "--max-steps", "2",
        "--batch-size", "2", "--hidden", "8", "--layers", "1", "--radial", "4",
        "--properties", "g", "--device", "cpu", "--quiet", "--no-resume",
        "--time-sampling", "lognormal", "--log-sigma-mean", "-1.0",
        "--shortcut", "--shortcut-fraction", "0.5", "--keep-every", "2",
    )
    assert printed == str(out / "last.pt")
    assert sorted(p.name for p in out.glob("step_*.pt")) == ["step_000002.pt"]
    card = load_checkpoint(printed).card
    assert card.model_config["hidden"] == 8 and card.model_config["n_layers"] == 1
    assert card.model_config["n_radial"] == 4
    assert card.property_names == ["g"] and card.rho_max is None
    config = card.training["config"]
    assert config["time_sampling"] == "lognormal" and config["log_sigma_mean"] == -1.0
    assert card.shortcut and card.model_config["shortcut"]
    assert config["shortcut_fraction"] == 0.5


@pytest.mark.parametrize("options,setting", [
    (["--backbone", "painn"], ("backbone", "painn")),
    (["--channel-distances", "--self-condition"], ("self_condition", True)),
    (["--angular", "2", "--angular-channels", "3"], ("angular_power", 2)),
    (["--angular", "2", "--layer-angular"], ("layer_angular", True)),
], ids=["painn", "self-conditioning", "angular", "layer-angular"])
def test_cli_trains_a_network_variant_that_generates(tmp_path, train_cli, options, setting):
    path = train_cli(
        "--name", "variant", "--out", str(tmp_path / "variant"), "--max-steps", "3",
        "--batch-size", "2", "--hidden", "8", "--layers", "2", "--radial", "4", *options,
        "--device", "cpu", "--quiet", "--no-resume",
    )
    name, value = setting
    saved = load_checkpoint(path).card.model_config[name]
    assert (saved, type(saved)) == (value, type(value))
    generator = AmorphousGenerator.from_checkpoint(path, "cpu")
    (atoms,) = generator.generate(n_atoms=6, steps=3, seed=0, progress=False, check="off")
    assert len(atoms) == 6 and np.isfinite(atoms.positions).all()


def test_cli_trains_with_recycled_self_conditioning(tmp_path, train_cli):
    path = train_cli(
        "--name", "recycled", "--out", str(tmp_path / "recycled"), "--max-steps", "3",
        "--batch-size", "2", "--hidden", "8", "--layers", "2", "--self-condition",
        "--self-condition-passes", "3", "--device", "cpu", "--quiet", "--no-resume",
    )
    assert load_checkpoint(path).card.training["config"]["self_condition_passes"] == 3


def test_cli_refuses_an_unknown_backbone_and_self_conditioning_of_flow(train_cli):
    with pytest.raises(SystemExit):
        train_cli("--name", "x", "--backbone", "mace")
    with pytest.raises(InvalidArgumentError, match="self-conditioning is for noise prediction"):
        TrainConfig(objective="flow", model={"self_condition": True})


def test_init_from_starts_at_the_parent_weights(tmp_path, structures, make_structures,
                                                tiny_config):
    parent = train(structures, tiny_config(out_dir=str(tmp_path / "parent"), max_steps=3),
                   "parent", verbose=False)
    other = make_structures(4, seed=3)
    # zero steps of fine-tuning: the child is exactly the parent's EMA weights
    child = train(other, tiny_config(out_dir=str(tmp_path / "child"), max_steps=1, lr=0.0,
                                     init_from=str(parent)), "child", verbose=False)
    parent_ema = read_checkpoint(parent)["ema"]["shadow"]
    loaded = read_checkpoint(child)
    for key, value in parent_ema.items():
        assert torch.equal(loaded["model"][key], value), key
    assert loaded["card"]["training"]["init_from"]["name"] == "parent"
    assert loaded["card"]["data_hash"] == data_hash(other, ["g"])
    # a resumed fine-tune keeps the record of its parent
    resumed = train(other, tiny_config(out_dir=str(tmp_path / "child"), max_steps=2, lr=0.0,
                                       init_from=str(parent)), "child", verbose=False)
    assert read_checkpoint(resumed)["card"]["training"]["init_from"]["name"] == "parent"


def test_init_from_accepts_a_parent_written_before_a_newer_network_option(
        tmp_path, structures, tiny_config):
    parent = train(structures, tiny_config(out_dir=str(tmp_path / "parent"), max_steps=1),
                   "parent", verbose=False)
    payload = read_checkpoint(parent)
    del payload["card"]["model_config"]["n_radial"]  # as in files of version 0.1.0
    torch.save(payload, parent)
    child = train(structures, tiny_config(out_dir=str(tmp_path / "child"), max_steps=1,
                                          init_from=str(parent)), "child", verbose=False)
    assert read_checkpoint(child)["card"]["training"]["init_from"]["name"] == "parent"


@pytest.mark.parametrize("option,grown_key", [("channel_distances", "_in.edge.weight"),
                                               ("channel_angles", "node_mlp.0.weight"),
                                               ("self_condition", "self_gate")])
def test_init_from_grows_a_parent_into_a_richer_network(tmp_path, structures, tiny_config,
                                                        option, grown_key):
    parent = train(structures, tiny_config(out_dir=str(tmp_path / "parent"), max_steps=2),
                   "parent", verbose=False)
    grown = dict(tiny_config().model, **{option: True})
    child = train(structures, tiny_config(out_dir=str(tmp_path / "child"), max_steps=1, lr=0.0,
                                          model=grown, init_from=str(parent)),
                  "child", verbose=False)
    parent_ema, loaded = read_checkpoint(parent)["ema"]["shadow"], read_checkpoint(child)
    assert loaded["card"]["model_config"][option] is True
    if option == "self_condition":  # a new parameter, not new columns: the gate starts shut
        assert float(loaded["model"]["self_gate"]) == 0.0
    for key, value in parent_ema.items():
        child_value = loaded["model"][key]
        if key.endswith(grown_key):  # the new columns start at zero
            assert not child_value[:, value.shape[1]:].any(), key
            child_value = child_value[:, :value.shape[1]]
        assert torch.equal(child_value, value), key
    # the reverse (dropping the option) is another network
    with pytest.raises(CheckpointError, match="another configuration"):
        train(structures, tiny_config(out_dir=str(tmp_path / "back"), max_steps=1,
                                      init_from=str(child)), "back", verbose=False)


def test_init_from_grows_a_parent_with_bond_angle_moments(tmp_path, structures, tiny_config):
    radial = dict(tiny_config().model, n_radial=4)
    parent = train(structures, tiny_config(out_dir=str(tmp_path / "parent"), max_steps=2,
                                           model=radial), "parent", verbose=False)
    child = train(structures, tiny_config(out_dir=str(tmp_path / "child"), max_steps=1, lr=0.0,
                                          model=dict(radial, angular_power=2,
                                                     angular_channels=3),
                                          init_from=str(parent)), "child", verbose=False)
    parent_ema, loaded = read_checkpoint(parent)["ema"]["shadow"], read_checkpoint(child)
    for key, value in parent_ema.items():
        assert torch.equal(loaded["model"][key], value), key
    added = sorted(set(loaded["model"]) - set(parent_ema))
    assert added and all(key.startswith("angular") for key in added)
    assert not loaded["model"]["angular_embed.1.weight"].any()  # the new map starts shut
    assert loaded["model"]["angular.radial.weight"].shape == (3, 4)


def test_init_from_grows_a_parent_deeper_with_new_options(tmp_path, structures, tiny_config):
    radial = dict(tiny_config().model, n_radial=4)
    parent = train(structures, tiny_config(out_dir=str(tmp_path / "parent"), max_steps=2,
                                           model=radial), "parent", verbose=False)
    layers = radial["n_layers"]
    deeper = dict(radial, n_layers=layers + 1, channel_angles=True)
    child = train(structures, tiny_config(out_dir=str(tmp_path / "child"), max_steps=1, lr=0.0,
                                          model=deeper, init_from=str(parent)),
                  "child", verbose=False)
    parent_ema, loaded = read_checkpoint(parent)["ema"]["shadow"], read_checkpoint(child)
    assert loaded["card"]["model_config"]["n_layers"] == layers + 1
    for key, value in parent_ema.items():  # the parent's layers, with the new option's columns
        assert torch.equal(loaded["model"][key][..., :value.shape[-1]], value), key
    added = sorted(set(loaded["model"]) - set(parent_ema))
    assert added and all(key.startswith(f"layers.{layers}.") for key in added)
    assert not loaded["model"][f"layers.{layers}.coord_out.2.weight"].any()  # starts shut
    assert not loaded["model"][f"layers.{layers}.node_mlp.3.weight"].any()
    with pytest.raises(CheckpointError, match="another configuration"):  # no shrinking back
        train(structures, tiny_config(out_dir=str(tmp_path / "back"), max_steps=1,
                                      model=radial, init_from=str(child)), "back", verbose=False)


def test_init_from_refuses_another_network(tmp_path, structures, tiny_config):
    parent = train(structures, tiny_config(out_dir=str(tmp_path / "parent"), max_steps=1),
                   "parent", verbose=False)
    wider = dict(tiny_config().model, hidden=8)
    with pytest.raises(CheckpointError, match="another configuration.*--hidden"):
        train(structures, tiny_config(out_dir=str(tmp_path / "child"), model=wider,
                                      init_from=str(parent)), "child", verbose=False)


def test_cosine_schedule_is_logged_and_resumes_exactly(tmp_path, structures, tiny_config):
    cosine = {"lr": 1e-3, "lr_schedule": "cosine", "lr_final": 0.1}
    path = train(structures, tiny_config(out_dir=str(tmp_path / "a"), max_steps=5, **cosine),
                 "t", verbose=False)
    with open(path.parent / "log.csv") as handle:
        logged = [float(row["lr"]) for row in csv.DictReader(handle)]
    config = tiny_config(max_steps=5, **cosine)
    expected = [config.learning_rate(step, 5) for step in range(5)]
    assert logged[-1] == pytest.approx(expected[-1]) == pytest.approx(1e-4)
    assert expected == sorted(expected, reverse=True) and expected[0] == pytest.approx(1e-3)
    # interrupted after 2 steps and resumed: the same weights as the straight run
    config_b = tiny_config(out_dir=str(tmp_path / "b"), max_steps=5, checkpoint_every=1,
                           **cosine)
    trainer = Trainer(structures, config_b, "t")
    calls = {"n": 0}
    step = trainer._train_step

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    trainer._train_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        trainer.run(verbose=False)
    assert read_checkpoint(tmp_path / "b" / "last.pt")["step"] == 2
    resumed = read_checkpoint(train(structures, config_b, "t", verbose=False))
    straight = read_checkpoint(path)
    assert all(torch.equal(straight["model"][k], resumed["model"][k]) for k in straight["model"])


def test_unknown_lr_schedule_is_refused(tiny_config):
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        tiny_config(lr_schedule="linear")


def test_unknown_time_sampling_is_refused(tiny_config):
    with pytest.raises(ValueError, match="time sampling must be one of"):
        tiny_config(time_sampling="beta")
    with pytest.raises(ValueError, match="log_sigma_std must be > 0"):
        tiny_config(time_sampling="lognormal", log_sigma_std=0.0)


def test_time_sampling_reaches_the_training_steps(tmp_path, structures, tiny_config):
    runs = {kind: read_checkpoint(train(
        structures, tiny_config(out_dir=str(tmp_path / kind), max_steps=2, time_sampling=kind),
        "t", verbose=False)) for kind in ("uniform", "lognormal")}
    weights = [run["model"] for run in runs.values()]
    assert not all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
