"""train() validates on the dataset's held-out split and logs val_loss in log.csv."""

import csv

import numpy as np
import pytest

from ase_amden.cli import main
from ase_amden.data import AmorphousDataset
from ase_amden.training import load_checkpoint, train


@pytest.fixture
def dataset(tmp_path, make_structures):
    images = make_structures(6, seed=3)
    mask = [False, True, False, False, True, False]  # two held out
    return AmorphousDataset.write(tmp_path / "data.h5", images, units={"g": "GPa"},
                                  held_out_mask=mask)


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_held_out_split_is_the_validation_set(tmp_path, dataset, tiny_config):
    config = tiny_config(max_steps=None, epochs=2)  # 4 train structures, batch 2: 2 steps/epoch
    path = train(dataset, config, "tiny", verbose=False)
    history = load_checkpoint(path).card.training["history"]
    assert [h["epoch"] for h in history] == [0, 1]
    assert all(np.isfinite(h["val_loss"]) for h in history)
    rows = _rows(tmp_path / "run" / "log.csv")
    assert [r["val_loss"] != "" for r in rows] == [False, True, False, True]  # epoch ends
    assert float(rows[-1]["val_loss"]) == pytest.approx(history[-1]["val_loss"])


def test_explicit_validation_wins_and_plain_atoms_have_none(tmp_path, dataset, tiny_config,
                                                             make_structures):
    path = train(make_structures(4), tiny_config(), "tiny", verbose=False)
    assert "val_loss" not in load_checkpoint(path).card.training["history"][-1]
    assert all(r["val_loss"] == "" for r in _rows(tmp_path / "run" / "log.csv"))


def test_cli_train_logs_validation_loss(tmp_path, dataset, capsys):
    out = tmp_path / "cli"
    assert main(["train", str(dataset.path), "--name", "tiny", "--out", str(out),
                 "--max-steps", "2", "--batch-size", "2", "--hidden", "8", "--layers", "1",
                 "--cutoff", "3.0", "--device", "cpu", "--quiet"]) == 0
    rows = _rows(out / "log.csv")
    assert rows[-1]["val_loss"] != "" and np.isfinite(float(rows[-1]["val_loss"]))
