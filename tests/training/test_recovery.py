"""Recovery from damaged checkpoints and interrupted runs: checksums, backups, the log."""

import csv
import shutil

import pytest
import torch

from ase_amden.checks import pair_min_distances
from ase_amden.errors import CheckpointError
from ase_amden.training import load_checkpoint, read_checkpoint, train
from ase_amden.training.checkpoint import backup_path, weights_checksum


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_checkpoint_keeps_a_backup_and_verifies_its_checksum(tmp_path, structures, tiny_config):
    path = train(structures, tiny_config(max_steps=4, checkpoint_every=2), "t", verbose=False)
    backup = backup_path(path)
    assert backup.name == "last.pt.bak"
    assert read_checkpoint(path)["step"] == 4 and read_checkpoint(backup)["step"] == 2
    payload = read_checkpoint(path)
    assert payload["checksum"] == weights_checksum(payload["model"], payload["ema"]["shadow"])
    payload["model"][next(iter(payload["model"]))].add_(1e-3)  # damaged weights
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not match their SHA-256.*last.pt.bak"):
        load_checkpoint(path)


def test_damaged_last_checkpoint_resumes_from_the_backup(tmp_path, structures, tiny_config):
    straight = train(structures, tiny_config(out_dir=str(tmp_path / "a"), max_steps=6),
                     "t", verbose=False)
    path = train(structures, tiny_config(out_dir=str(tmp_path / "b"), max_steps=4,
                                         checkpoint_every=2), "t", verbose=False)
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.warns(UserWarning, match="resuming from the backup .*last.pt.bak"):
        train(structures, tiny_config(out_dir=str(tmp_path / "b"), max_steps=6), "t",
              verbose=False)
    resumed, reference = load_checkpoint(path).state, load_checkpoint(straight).state
    assert resumed["step"] == 6
    for key, value in reference["model"].items():
        assert torch.equal(resumed["model"][key], value)


def test_log_drops_replayed_steps_and_continues_elapsed(tmp_path, structures, tiny_config):
    config = tiny_config(max_steps=4, checkpoint_every=2, log_every=1)
    path = train(structures, config, "t", verbose=False)
    log = path.parent / "log.csv"
    before = _rows(log)
    assert [int(r["step"]) for r in before] == [1, 2, 3, 4]
    shutil.copy(backup_path(path), path)  # as if killed after step 4's log line, before its save
    with open(log, "a") as handle:
        handle.write("5,2,0.1")  # and a line cut in the middle
    train(structures, config, "t", verbose=False)
    after = _rows(log)
    assert [int(r["step"]) for r in after] == [1, 2, 3, 4]
    assert after[:2] == before[:2]
    elapsed = [float(r["elapsed_s"]) for r in after]
    assert elapsed == sorted(elapsed) and elapsed[2] >= elapsed[1]


def test_stale_temporary_files_are_removed_on_the_next_run(tmp_path, structures, tiny_config):
    out = tmp_path / "run"
    out.mkdir()
    stale = out / ".last.pt.999999999.abcd1234.tmp"  # no process has this id
    stale.write_bytes(b"half")
    train(structures, tiny_config(max_steps=1), "t", verbose=False)
    assert not stale.exists()
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "log.csv"]


def test_card_stores_closest_pairs_of_the_training_data(structures, tiny_config):
    path = train(structures, tiny_config(max_steps=1), "t", verbose=False)
    card = load_checkpoint(path).card
    assert card.training["min_distances"] == pytest.approx(pair_min_distances(structures))
    assert set(card.training["min_distances"]) <= {"O-O", "O-Si", "Si-Si"}
