"""kill -9 in the middle of work: target files are absent or complete, and a rerun finishes.

Each test starts a real child process, waits until it is inside the step under test
(writing structures, building a dataset, training), sends SIGKILL, checks what is on
disk, and runs the same command again.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.io import read, write

from ase_amden.cli import main
from ase_amden.data import AmorphousDataset
from ase_amden.training import load_checkpoint, read_checkpoint

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _random_structures(count: int, n_atoms: int = 6, length: float = 4.0) -> list[Atoms]:
    rng = np.random.default_rng(0)
    return [Atoms(numbers=rng.choice([8, 14], n_atoms), positions=rng.random((n_atoms, 3)) * length,
                  cell=np.eye(3) * length, pbc=True) for _ in range(count)]


def _kill_when(command: list[str], ready, timeout: float = 120.0) -> bool:
    """Run ``command``; SIGKILL it as soon as ``ready()`` is true. True if it was killed."""
    child = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while child.poll() is None and time.monotonic() < deadline:
            if ready():
                child.send_signal(signal.SIGKILL)
                child.wait()
                return True
            time.sleep(0.002)
        return False
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _run(command: list[str]) -> None:
    subprocess.run(command, env=ENV, check=True, capture_output=True, timeout=300)


def test_kill_while_writing_generated_structures(tmp_path):
    target = tmp_path / "x.db"
    argv = ["generate", "--quiet", "--count", "200", "--n-atoms", "8", "--steps", "1",
            "--seed", "3", "--output", str(target)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*argv[:2], "--count", "2", *argv[4:]]) == 0  # a previous file
    assert len(read(target, ":")) == 2

    def writing() -> bool:  # rows are going in: past ASE's unlink of the empty temporary file
        for tmp in tmp_path.glob(".x.db.*.tmp*"):
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_size > 0:
                    return True
        return False

    for _ in range(3):  # the kill can land just after the writer's final rename: try again
        assert _kill_when([sys.executable, "-m", "ase_amden", *argv], writing), \
            "the child finished before it was seen writing"
        frames = read(target, ":")
        assert len(frames) in (2, 200)  # the previous file, or the whole new one
        if len(frames) == 2:
            break
        write(target, frames[:2])
    assert len(frames) == 2, "no kill landed while the new file was being written"
    assert any(tmp_path.glob(".x.db.*.tmp*"))  # the killed writer's temporary file

    _run([sys.executable, "-m", "ase_amden", *argv])
    frames = read(target, ":")
    assert len(frames) == 200
    assert all(len(atoms) == 8 and np.isfinite(atoms.positions).all() for atoms in frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]  # stale files cleaned


_BUILD = textwrap.dedent("""
    import sys
    from ase_amden.data import Protocol, Stage, make_dataset
    protocol = Protocol(name="tiny-si", potential="sw-si", formula={"Si": 1}, n_atoms=(16, 24),
                        density_g_cm3=2.33, timestep_fs=2.0,
                        stages=(Stage("minimize"), Stage("nvt", 2500.0, 1000.0, 0.4)), seed=7)
    make_dataset(protocol, int(sys.argv[2]), sys.argv[1], verbose=False)
""")


def test_kill_during_a_dataset_build(tmp_path):
    target = tmp_path / "d.h5"
    command = [sys.executable, "-c", _BUILD, str(target), "4"]
    assert _kill_when(command, target.exists), "the child finished before the first sample"
    first = AmorphousDataset(target)  # complete and loadable after the kill
    done = sorted(int(atoms.info["sample_index"]) for atoms in first)
    assert 1 <= len(done) < 4 and len(set(done)) == len(done)
    kept = {i: atoms.positions.copy() for i, atoms in zip(done, first, strict=True)}

    _run(command)
    final = AmorphousDataset(target)
    indices = [int(atoms.info["sample_index"]) for atoms in final]
    assert sorted(indices) == [0, 1, 2, 3]
    for i, atoms in zip(indices, final, strict=True):
        if i in kept:  # samples finished before the kill are kept as they were
            np.testing.assert_array_equal(atoms.positions, kept[i])
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def _train_argv(data: Path, out: Path) -> list[str]:
    return ["train", str(data), "--name", "tiny", "--out", str(out), "--max-steps", "60",
            "--checkpoint-every", "10", "--batch-size", "2", "--hidden", "8", "--layers",
            "1", "--cutoff", "3", "--device", "cpu", "--quiet"]


def _log(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def test_kill_during_training_resumes_exactly(tmp_path):
    data = tmp_path / "data.extxyz"
    write(data, _random_structures(4))
    out = tmp_path / "run"
    backup = out / "last.pt.bak"  # exists once two checkpoints were written
    command = [sys.executable, "-m", "ase_amden", *_train_argv(data, out)]
    assert _kill_when(command, backup.exists), "the child finished before two checkpoints"
    step = int(read_checkpoint(out / "last.pt")["step"])
    assert 20 <= step < 60
    assert int(read_checkpoint(backup)["step"]) == step - 10

    _run(command)
    rows = _log(out / "log.csv")
    steps = [row["step"] for row in rows]
    assert steps == list(range(10, 61, 10))  # no replayed step twice, none lost
    elapsed = [row["elapsed_s"] for row in rows]
    assert elapsed == sorted(elapsed)  # elapsed_s continues over the restart
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())

    # the resumed run ends with the weights of a run never interrupted
    assert main(_train_argv(data, tmp_path / "straight")) == 0
    resumed = load_checkpoint(out / "last.pt").state["model"]
    straight = load_checkpoint(tmp_path / "straight" / "last.pt").state["model"]
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
