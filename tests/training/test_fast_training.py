"""Options for fast (GPU) training, exercised on the CPU: bf16 autocast, data held on the
device, a wall-clock limit that stops cleanly."""


import numpy as np
import pytest
import torch
from ase.io import write

from ase_amden.models import periodic_graph
from ase_amden.training import Trainer, collate, concatenate, read_checkpoint, train


def test_concatenated_batches_equal_one_collated_batch(make_structures):
    structures = make_structures(3, seed=2)
    elements = ["O", "Si"]
    whole = collate(structures, elements)
    joined = concatenate([collate([a], elements) for a in structures])
    for name in ("positions", "elements", "cell", "system_idx", "properties", "property_mask"):
        assert torch.equal(getattr(whole, name), getattr(joined, name)), name


def test_data_on_device_trains_exactly_as_host_batches(tmp_path, structures, tiny_config):
    host = read_checkpoint(train(structures, tiny_config(out_dir=str(tmp_path / "a")), "t",
                                 verbose=False))
    held = read_checkpoint(train(structures, tiny_config(out_dir=str(tmp_path / "b"),
                                                         data_on_device=True), "t",
                                 verbose=False))
    assert all(torch.equal(host["model"][k], held["model"][k]) for k in host["model"])


def test_amp_trains_in_bfloat16_and_keeps_float32_weights(tmp_path, structures, tiny_config):
    plain = read_checkpoint(train(structures, tiny_config(out_dir=str(tmp_path / "a")), "t",
                                  verbose=False))
    mixed = read_checkpoint(train(structures, tiny_config(out_dir=str(tmp_path / "b"), amp=True),
                                  "t", verbose=False))
    assert mixed["card"]["training"]["config"]["amp"] is True
    differences = []
    for key, weight in plain["model"].items():
        assert mixed["model"][key].dtype == weight.dtype
        assert torch.isfinite(mixed["model"][key]).all()
        differences.append(float((mixed["model"][key] - weight).abs().max()))
    # bf16 rounding changes the gradients a little: 4 AdamW steps of 1e-3 move weights
    # by at most ~4e-3, so the two runs differ, but by less than the training moved them
    assert 0.0 < max(differences) < 8e-3


def test_periodic_graph_shifts_stay_full_precision_under_autocast():
    positions = torch.tensor([[0.1, 0.2, 0.3], [16.9, 16.8, 0.4]])
    cell = torch.eye(3).unsqueeze(0) * 17.05
    system_idx = torch.zeros(2, dtype=torch.long)
    plain = periodic_graph(positions, cell, system_idx, 3.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = periodic_graph(positions, cell, system_idx, 3.0)
    assert mixed[2].dtype == torch.float32
    assert torch.equal(plain[2], mixed[2]) and plain[2].abs().max() == pytest.approx(17.05)


def test_time_limit_stops_checkpoints_and_resumes(tmp_path, structures, tiny_config):
    config = tiny_config(max_steps=50, time_limit_min=1e-9, lr_schedule="cosine")
    trainer = Trainer(structures, config, "t")
    path = trainer.run(verbose=False)
    saved = read_checkpoint(path)
    assert trainer.stopped_by_time and saved["step"] == 1  # the first step already exceeds it
    assert saved["extra"]["training_s"] > 0
    assert saved["card"]["training"]["training_s"] == saved["extra"]["training_s"]
    # past the limit the cosine has ended: the resumed steps use the final learning rate
    assert config.learning_rate(1, 50, elapsed_s=1.0) == pytest.approx(config.lr * config.lr_final)
    finished = read_checkpoint(train(structures, tiny_config(max_steps=3), "t", verbose=False))
    assert finished["step"] == 3
    assert finished["extra"]["training_s"] > saved["extra"]["training_s"]  # accumulates


def test_a_checkpoint_without_training_time_still_resumes(tmp_path, structures, tiny_config):
    path = train(structures, tiny_config(max_steps=2), "t", verbose=False)
    payload = torch.load(path, weights_only=False)
    del payload["extra"]["training_s"], payload["card"]["training"]["training_s"]
    torch.save(payload, path)  # as written before the option existed
    resumed = read_checkpoint(train(structures, tiny_config(max_steps=3), "t", verbose=False))
    assert resumed["step"] == 3 and 0 < resumed["extra"]["training_s"]


def test_time_limit_must_be_positive(tiny_config):
    with pytest.raises(ValueError, match="time_limit_min must be positive"):
        tiny_config(time_limit_min=0.0)


def test_cli_passes_the_fast_training_options(tmp_path, train_cli):
    saved = read_checkpoint(train_cli(
        "--name", "fast", "--out", str(tmp_path / "cli"), "--max-steps",
        "2", "--batch-size", "4", "--hidden", "8", "--layers", "1", "--device", "cpu",
        "--quiet", "--amp", "--data-on-device", "--time-limit", "5",
    ))
    config = saved["card"]["training"]["config"]
    assert config["amp"] and config["data_on_device"] and config["time_limit_min"] == 5.0
    assert saved["step"] == 2
    assert np.isfinite(saved["extra"]["training_s"])


def test_gpu_train_script_runs_on_the_cpu_at_tiny_size(tmp_path, structures):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]
    data = tmp_path / "data.extxyz"
    write(data, structures)
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(root), "DATA": str(data),
           "OUT": str(tmp_path / "gpu"), "DEVICE": "cpu", "HIDDEN": "8", "LAYERS": "1",
           "CUTOFF": "3", "RADIAL": "4", "BATCH": "4", "STEPS": "3", "MINUTES": "5",
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(root / "benchmarks" / "gpu_train.sh")], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    saved = read_checkpoint(tmp_path / "gpu" / "last.pt")
    config = saved["card"]["training"]["config"]
    assert saved["step"] == 3 and config["amp"] and config["data_on_device"]
    assert config["time_limit_min"] == 5.0 and config["batch_size"] == 4
    assert "wall time" in done.stdout


def test_compile_refuses_the_energy_variant(tiny_config):
    with pytest.raises(ValueError, match="compile does not support the energy variant"):
        tiny_config(compile=True, energy=True)
