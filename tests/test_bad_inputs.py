"""A catalogue of bad inputs: each gives a clear domain error (or warning), never a traceback.

API cases assert the exception type and a message naming the problem; CLI cases (run
in-process through ``ase_amden.cli.main``, a few as real subprocesses) assert a non-zero
exit status, one ``ase-amden...: error: ...`` line on stderr without ``Traceback``, and
that nothing was written to the output folder.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from ase import Atoms
from ase.build import bulk

from ase_amden.analysis import coordination
from ase_amden.calculators import NoiseEnergyCalculator
from ase_amden.checks import check_structures
from ase_amden.cli import main
from ase_amden.data import make_dataset
from ase_amden.dynamics import HMC
from ase_amden.errors import (
    AmdenError,
    CheckpointError,
    InvalidArgumentError,
    InvalidStructureError,
    ResourceError,
    SamplingError,
    StructureCheckError,
    UnknownNameError,
)
from ase_amden.generator import PRETRAINED_DIR, AmorphousGenerator
from ase_amden.structures import read_structures
from ase_amden.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
FAST = {"steps": 2, "seed": 0, "progress": False}


@functools.cache
def _model(name: str) -> AmorphousGenerator:
    return AmorphousGenerator.pretrained(name, device="cpu")


def _si(**kwargs):
    return _model("a-Si").generate(1, **{"n_atoms": 16, **FAST, **kwargs})


def _sio2(**kwargs):
    return _model("a-SiO2").generate(1, **{"cell": 8.0, **FAST, **kwargs})


def _damaged_copy(tmp_path: Path, how: str) -> Path:
    data = (PRETRAINED_DIR / "a-Si.pt").read_bytes()
    path = tmp_path / f"{how}.pt"
    if how == "empty":
        data = b""
    elif how == "text":
        data = b"epoch,loss\n1,0.5\n"
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped":  # 64 bytes in the middle of the largest weight tensor
        data = bytearray(data)
        middle = len(data) // 2
        data[middle:middle + 64] = bytes(255 - b for b in data[middle:middle + 64])
        data = bytes(data)
    path.write_bytes(data)
    return path


def _nan_calculator():
    gen = _model("a-Si-energy")
    broken = copy.copy(gen)
    broken.model = copy.deepcopy(gen.model)
    with torch.no_grad():
        next(broken.model.parameters()).fill_(math.nan)
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.calc = NoiseEnergyCalculator(broken, t=0.1, device="cpu")
    return atoms.get_potential_energy()


def _hmc(timestep):
    return HMC(bulk("Si", "diamond", a=5.431, cubic=True), timestep, temperature_K=300)


def _train(structures, tmp_path, **config):
    settings = {"out_dir": str(tmp_path / "run"), "max_steps": 1, "device": "cpu",
                "model": {"hidden": 8, "n_layers": 1, "n_vector": 2, "cutoff": 3.0}}
    return train(structures, TrainConfig(**{**settings, **config}), "tiny", verbose=False)


def _overlapping():
    atoms = Atoms("Si2", positions=[[0, 0, 0], [0.3, 0, 0]], cell=[6, 6, 6], pbc=True)
    return check_structures([atoms], ["Si"], mode="strict")


_DIAMOND = bulk("Si", "diamond", a=5.431, cubic=True)
_CUDA_MISSING = "CUDA is not available|GPU"

API_CASES = [
    ("count-0", lambda p: _model("a-Si").generate(0, **FAST),
     AmdenError, "count must be a positive integer"),
    ("count-negative", lambda p: _model("a-Si").generate(-1, **FAST), AmdenError, "count"),
    ("count-fraction", lambda p: _model("a-Si").generate(1.5, **FAST), AmdenError, "count"),
    ("steps-0", lambda p: _si(steps=0), AmdenError, "steps must be a positive integer"),
    ("batch-size-0", lambda p: _si(batch_size=0), AmdenError, "batch_size"),
    ("guidance-negative", lambda p: _si(guidance=-1.0), AmdenError, "guidance must be"),
    ("guidance-nan", lambda p: _si(guidance=math.nan), AmdenError, "guidance must be"),
    ("guidance-unconditional",
     lambda p: _model("a-Si-melt").generate(1, n_atoms=16, guidance=1.0, **FAST), AmdenError,
     "needs a conditional model"),
    ("check-mode", lambda p: _si(check="loud"), AmdenError, "check must be one of"),
    ("n-atoms-0", lambda p: _si(n_atoms=0), AmdenError, "n_atoms must be a positive"),
    ("n-atoms-1e9", lambda p: _si(n_atoms=10**9), ResourceError, "GiB.*fewer atoms"),
    ("huge-ghost-cell", lambda p: _sio2(cell=1e4), ResourceError, "GiB.*smaller cell"),
    ("density-g-cm3", lambda p: _si(density=2.33), InvalidArgumentError,
     "number density in atoms/Å\\^3; 2.33 looks like g/cm3"),
    ("density-5", lambda p: _si(density=5.0), InvalidArgumentError, "looks like g/cm3"),
    ("cell-too-full", lambda p: _si(cell=3.0, n_atoms=64), InvalidArgumentError,
     "atoms in this cell.*impossible"),
    ("density-negative", lambda p: _si(density=-1.0), AmdenError, "density must be a positive"),
    ("density-nan", lambda p: _si(density=math.nan), AmdenError, "density must be a positive"),
    ("cell-shape", lambda p: _si(cell=[5.0, 6.0]), InvalidStructureError, "cell must be"),
    ("cell-nan", lambda p: _si(cell=math.nan), InvalidStructureError, "non-finite"),
    ("cell-coplanar", lambda p: _si(cell=[[1, 0, 0], [0, 1, 0], [1, 1, 0]]),
     InvalidStructureError, "zero volume"),
    ("composition-garbage", lambda p: _si(n_atoms=None, composition="Si2O!"), AmdenError,
     "'Si2O!' is not a chemical formula"),
    ("composition-negative", lambda p: _si(n_atoms=None, composition={"Si": -1}), AmdenError,
     "non-negative integers"),
    ("composition-element", lambda p: _si(n_atoms=None, composition="Ge8"), UnknownNameError,
     "unknown element 'Ge'"),
    ("composition-count", lambda p: _si(n_atoms=10, composition={"Si": 8}), AmdenError,
     "has 8 atoms but n_atoms=10"),
    ("sampler-name", lambda p: _si(sampler="nope"), UnknownNameError, "unknown sampler 'nope'"),
    ("sampler-option-name", lambda p: _si(sampler_options={"bogus": 1}), UnknownNameError,
     "unknown option.*bogus"),
    ("sampler-option-type", lambda p: _si(sampler_options={"t_start": "abc"}), AmdenError,
     "invalid option of sampler 'sde'"),
    ("target-unconditional",
     lambda p: _model("a-Si-melt").generate(1, n_atoms=16, targets={"g": 1.0}, **FAST),
     UnknownNameError, "trained without properties"),
    ("target-unknown", lambda p: _sio2(targets={"density": 1.0}), UnknownNameError,
     "unknown target property 'density'"),
    ("target-nan", lambda p: _sio2(targets={"shear_modulus": math.nan}), AmdenError, "finite"),
    ("seed-2**70", lambda p: _si(seed=2**70), InvalidArgumentError, "seed must lie in"),
    ("seed-negative", lambda p: _si(seed=-1), InvalidArgumentError, "seed must lie in"),
    ("device-tpu", lambda p: AmorphousGenerator.pretrained("a-Si", device="tpu"),
     InvalidArgumentError, "unknown device 'tpu'"),
    ("device-cuda-missing", lambda p: AmorphousGenerator.pretrained("a-Si", device="cuda:99"),
     InvalidArgumentError, _CUDA_MISSING),
    ("strict-check", lambda p: _si(steps=2, check="strict"), StructureCheckError,
     "Si-Si pair\\(s\\) closer than"),
    ("strict-overlap", lambda p: _overlapping(), StructureCheckError, "closer than 1.33 Å"),
    ("pretrained-name", lambda p: AmorphousGenerator.pretrained("a-Ge"), UnknownNameError,
     "unknown pretrained model 'a-Ge'"),
    ("checkpoint-missing", lambda p: AmorphousGenerator.from_checkpoint(p / "no.pt", "cpu"),
     CheckpointError, "does not exist"),
    ("checkpoint-empty", lambda p: AmorphousGenerator.from_checkpoint(
        _damaged_copy(p, "empty"), "cpu"), CheckpointError, "empty.pt' is empty \\(0 bytes\\)"),
    ("checkpoint-text", lambda p: AmorphousGenerator.from_checkpoint(
        _damaged_copy(p, "text"), "cpu"), CheckpointError, "text.pt' is not an ase_amden"),
    ("checkpoint-truncated", lambda p: AmorphousGenerator.from_checkpoint(
        _damaged_copy(p, "truncated"), "cpu"), CheckpointError, "damaged or truncated"),
    ("checkpoint-flipped", lambda p: AmorphousGenerator.from_checkpoint(
        _damaged_copy(p, "flipped"), "cpu"), CheckpointError, "flipped.pt.*(checksum|damaged)"),
    ("cutoff-nan", lambda p: coordination(_DIAMOND, math.nan), InvalidArgumentError,
     "cutoff must be a positive, finite distance"),
    ("cutoff-inf", lambda p: coordination(_DIAMOND, math.inf), InvalidArgumentError,
     "finite distance"),
    ("cutoff-1e9", lambda p: coordination(_DIAMOND, 1e9), InvalidArgumentError, "up to 20 Å"),
    ("cutoff-negative", lambda p: coordination(_DIAMOND, -1.0), InvalidArgumentError,
     "positive"),
    ("cutoff-pair-negative", lambda p: coordination(_DIAMOND, {"Si-Si": -2}),
     InvalidArgumentError, "cutoff 'Si-Si' must be a positive"),
    ("cutoff-pair-element", lambda p: coordination(_DIAMOND, {"Si-Xx": 2.0}),
     InvalidArgumentError, "'Xx' is not a chemical symbol"),
    ("hmc-timestep-0", lambda p: _hmc(0.0), InvalidArgumentError, "timestep must be a positive"),
    ("hmc-timestep-nan", lambda p: _hmc(math.nan), InvalidArgumentError, "timestep"),
    ("noise-energy-nan", lambda p: _nan_calculator(), SamplingError, "not finite"),
    ("train-max-steps-0", lambda p: TrainConfig(max_steps=0), InvalidArgumentError,
     "max_steps must be >= 1"),
    ("train-lr-negative", lambda p: TrainConfig(lr=-1.0), InvalidArgumentError,
     "learning rate"),
    ("train-lr-nan", lambda p: TrainConfig(lr=math.nan), InvalidArgumentError, "learning rate"),
    ("train-epochs-0", lambda p: TrainConfig(epochs=0), InvalidArgumentError, "epochs"),
    ("train-empty", lambda p: _train([], p), InvalidStructureError, "no training structures"),
    ("train-not-periodic", lambda p: _train([Atoms("Si2", positions=[[0, 0, 0], [2, 0, 0]])],
                                            p), InvalidStructureError, "not periodic"),
    ("dataset-count-0", lambda p: make_dataset("a-si-melt-quench", 0, str(p / "d.h5")),
     InvalidArgumentError, "count must be at least 1"),
    ("read-garbage", lambda p: read_structures(_garbage(p)), InvalidStructureError,
     "cannot read structures from"),
    ("read-missing", lambda p: read_structures(p / "none.extxyz"), FileNotFoundError,
     "no such file"),
]


def _garbage(folder: Path) -> Path:
    path = folder / "garbage.extxyz"
    path.write_text("3\nthis is not extxyz\nSi 0 0\nX y z w\n")
    return path


@pytest.mark.parametrize("call, error, message", [case[1:] for case in API_CASES],
                         ids=[case[0] for case in API_CASES])
def test_api_bad_input(call, error, message, tmp_path):
    with pytest.raises(error, match=message):
        call(tmp_path)


# ---------------------------------------------------------------------------------- warnings

WARNING_CASES = [
    ("guidance-without-targets", lambda: _sio2(guidance=2.0, check="off"),
     "guidance=2 is ignored without targets"),
    ("target-out-of-range", lambda: _sio2(targets={"shear_modulus": 300.0}, check="off"),
     "shear_modulus=300 GPa is outside the range .*\\(15\\.\\d+ to 36\\.\\d+ GPa\\)"),
    ("n-atoms-on-ghost-model", lambda: _sio2(cell=None, n_atoms=30, check="off"),
     "uses ghost atoms.*n_atoms=30 only sizes the cell"),
    ("empty-structure", lambda: _sio2(cell=2.0), "no atoms"),
    ("close-pairs", lambda: _si(), "Si-Si pair\\(s\\) closer than 1.63 Å"),
]


@pytest.mark.parametrize("call, message", [case[1:] for case in WARNING_CASES],
                         ids=[case[0] for case in WARNING_CASES])
def test_api_warning(call, message):
    with pytest.warns(UserWarning, match=message):
        images = call()
    assert images


def test_ignored_guidance_is_not_recorded():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (atoms,) = _sio2(guidance=2.0, check="off")
    assert atoms.info["guidance"] == 0.0


def test_checks_are_recorded_in_info():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (bad,) = _si()
        (empty,) = _sio2(cell=2.0)
    assert bad.info["check_min_distance"] < 1.33
    assert "closer than" in bad.info["check_warnings"]
    assert len(empty) == 0 and "no atoms" in empty.info["check_warnings"]


# ---------------------------------------------------------------------------------- CLI

@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _garbage(folder)
    (folder / "empty.extxyz").write_text("")
    (folder / "notes.pt").write_text("not a checkpoint")
    (folder / "garbage.h5").write_bytes(b"\x89HDF\r\n not really")
    (folder / "a-folder").mkdir()
    return folder


GEN = ["generate", "--quiet", "--steps", "2", "--n-atoms", "16", "--seed", "0"]
OUT = "{out}/x.extxyz"

CLI_CASES = [
    ("gen-count-0", [*GEN, "--count", "0", "--output", OUT], "--count: must be at least 1"),
    ("gen-count-text", [*GEN, "--count", "two", "--output", OUT], "'two' is not an integer"),
    ("gen-steps-0", [*GEN, "--steps", "0", "--output", OUT], "--steps: must be at least 1"),
    ("gen-batch-0", [*GEN, "--batch-size", "0", "--output", OUT], "--batch-size"),
    ("gen-n-atoms-0", ["generate", "--n-atoms", "0", "--output", OUT], "--n-atoms"),
    ("gen-seed-2**70", [*GEN, "--seed", str(2**70), "--output", OUT], "seeds lie in"),
    ("gen-seed-negative", [*GEN, "--seed", "-5", "--output", OUT], "seeds lie in"),
    ("gen-device-tpu", [*GEN, "--device", "tpu", "--output", OUT], "unknown device 'tpu'"),
    ("gen-device-cuda", [*GEN, "--device", "cuda:99", "--output", OUT], _CUDA_MISSING),
    ("gen-composition", ["generate", "--composition", "Si2O!", "--output", OUT],
     "not a chemical formula"),
    ("gen-sampler-option", [*GEN, "--sampler-option", "t_start=abc", "--output", OUT],
     "invalid option of sampler"),
    ("gen-sampler-option-form", [*GEN, "--sampler-option", "t_start", "--output", OUT],
     "--sampler-option wants NAME=VALUE"),
    ("gen-sampler-option-name", [*GEN, "--sampler-option", "nope=1", "--output", OUT],
     "unknown option"),
    ("gen-target-no-value", ["generate", "--model", "a-SiO2", "--target", "shear_modulus",
                             "--output", OUT], "--target wants NAME=VALUE"),
    ("gen-target-text", ["generate", "--model", "a-SiO2", "--target", "shear_modulus=soft",
                         "--output", OUT], "'soft' is not a number"),
    ("gen-target-unknown", ["generate", "--quiet", "--steps", "2", "--model", "a-SiO2",
                            "--target", "hardness=3", "--output", OUT],
     "unknown target property 'hardness'"),
    ("gen-output-ext", [*GEN, "--output", "{out}/x.nosuchext"], "cannot tell the file format"),
    ("gen-output-lmp", [*GEN, "--output", "{out}/data.lmp"], "--format lammps-data"),
    ("gen-output-poscar", [*GEN, "--count", "2", "--output", "{out}/POSCAR"],
     "holds one structure but --count is 2"),
    ("gen-output-folder", [*GEN, "--output", "{in}/a-folder"], "is a folder"),
    ("gen-format-unknown", [*GEN, "--format", "nope", "--output", OUT],
     "cannot write format 'nope'"),
    ("gen-density-g-cm3", ["generate", "--density", "2.33", "--output", OUT],
     "2.33 looks like g/cm3"),
    ("gen-density-negative", ["generate", "--density", "-1", "--output", OUT],
     "--density: must be positive"),
    ("gen-cell-two", [*GEN, "--cell", "5", "6", "--output", OUT], "--cell takes 1 edge"),
    ("gen-cell-nan", [*GEN, "--cell", "nan", "--output", OUT], "not a finite number"),
    ("gen-guidance-negative", [*GEN, "--guidance", "-1", "--output", OUT], "must be >= 0"),
    ("gen-guidance-unconditional", [*GEN, "--model", "a-Si-melt", "--guidance", "1",
                                    "--output", OUT],
     "needs a conditional model"),
    ("gen-model", [*GEN, "--model", "a-Ge", "--output", OUT], "unknown pretrained model"),
    ("gen-sampler", [*GEN, "--sampler", "nope", "--output", OUT], "unknown sampler 'nope'"),
    ("gen-checkpoint-missing", [*GEN, "--checkpoint", "{in}/none.pt", "--output", OUT],
     "does not exist"),
    ("gen-checkpoint-text", [*GEN, "--checkpoint", "{in}/notes.pt", "--output", OUT],
     "notes.pt' is not an ase_amden checkpoint"),
    ("gen-strict", [*GEN, "--strict", "--output", OUT], "failed their checks"),
    ("gen-huge", ["generate", "--quiet", "--n-atoms", str(10**9), "--output", OUT],
     "GiB.*fewer atoms"),
    ("train-lr", ["train", "{in}/garbage.extxyz", "--name", "x", "--out", "{out}/run",
                  "--lr", "-1"], "--lr: must be positive"),
    ("train-max-steps-0", ["train", "{in}/garbage.extxyz", "--name", "x", "--out", "{out}/run",
                           "--max-steps", "0"], "--max-steps: must be at least 1"),
    ("train-epochs-0", ["train", "{in}/garbage.extxyz", "--name", "x", "--out", "{out}/run",
                        "--epochs", "0"], "--epochs: must be at least 1"),
    ("train-garbage", ["train", "{in}/garbage.extxyz", "--name", "x", "--out", "{out}/run"],
     "cannot read structures from .*garbage.extxyz"),
    ("train-empty", ["train", "{in}/empty.extxyz", "--name", "x", "--out", "{out}/run"],
     "empty.extxyz"),
    ("train-missing", ["train", "{in}/none.extxyz", "--name", "x", "--out", "{out}/run"],
     "no such file"),
    ("train-device", ["train", "{in}/garbage.extxyz", "--name", "x", "--out", "{out}/run",
                      "--device", "tpu"], "unknown device|cannot read"),
    ("train-seed", ["train", "{in}/garbage.extxyz", "--name", "x", "--out", "{out}/run",
                    "--seed", str(2**70)], "seeds lie in"),
    ("analyze-garbage", ["analyze", "{in}/garbage.extxyz"], "cannot read structures"),
    ("analyze-missing", ["analyze", "{in}/none.extxyz"], "no such file"),
    ("analyze-cutoff-nan", ["analyze", "{in}/garbage.extxyz", "--cutoff", "nan"],
     "--cutoff: cutoff must be a positive, finite distance"),
    ("analyze-cutoff-negative", ["analyze", "{in}/garbage.extxyz", "--cutoff", "-1"],
     "--cutoff: cutoff must be a positive"),
    ("analyze-cutoff-huge", ["analyze", "{in}/garbage.extxyz", "--cutoff", "1e9"],
     "up to 20 Å"),
    ("analyze-cutoff-pair", ["analyze", "{in}/garbage.extxyz", "--cutoff", "Si-Si=-2"],
     "cutoff 'Si-Si' must be a positive"),
    ("dataset-make-count-0", ["dataset", "make", "a-si-melt-quench", "--count", "0",
                              "--output", "{out}/d.h5"], "--count: must be at least 1"),
    ("dataset-make-workers-0", ["dataset", "make", "a-si-melt-quench", "--count", "1",
                                "--workers", "0", "--output", "{out}/d.h5"], "--workers"),
    ("dataset-make-protocol", ["dataset", "make", "nope", "--count", "1",
                               "--output", "{out}/d.h5"], "unknown protocol 'nope'"),
    ("dataset-info-missing", ["dataset", "info", "{in}/none.h5"], "none.h5"),
    ("dataset-info-garbage", ["dataset", "info", "{in}/garbage.h5"], "garbage.h5"),
    ("unknown-command", ["fly"], "invalid choice: 'fly'"),
]


def _argv(template, folder_in: Path, folder_out: Path) -> list[str]:
    return [item.format(**{"in": folder_in, "out": folder_out}) for item in template]


def _assert_one_line_error(code: int, err: str, message: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    assert errors[0].startswith("ase-amden")
    assert re.search(message, errors[0]), errors[0]


@pytest.mark.parametrize("template, message", [case[1:] for case in CLI_CASES],
                         ids=[case[0] for case in CLI_CASES])
def test_cli_bad_input(template, message, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(_argv(template, inputs, out))
    _assert_one_line_error(code, capsys.readouterr().err, message)
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


def test_cli_keeps_the_previous_output_when_checks_fail(tmp_path, capsys):
    target = tmp_path / "x.extxyz"
    target.write_text("previous")
    code = main([*GEN, "--strict", "--output", str(target)])
    _assert_one_line_error(code, capsys.readouterr().err, "failed their checks")
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.extxyz"]


def test_cli_warnings_are_one_line_each(tmp_path, capsys):
    target = tmp_path / "x.extxyz"
    assert main([*GEN, "--output", str(target)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    warning = "ase-amden: warning: 1 of 1 structure(s) failed"
    assert any(line.startswith(warning) for line in err.splitlines())
    assert read_structures(target)[0].info["check_warnings"]


SUBPROCESS_CASES = [
    ("count-0", ["generate", "--count", "0", "--output", "{out}/x.extxyz"], "--count"),
    ("analyze-garbage", ["analyze", "{in}/garbage.extxyz"], "cannot read structures"),
]


@pytest.mark.parametrize("template, message", [case[1:] for case in SUBPROCESS_CASES],
                         ids=[case[0] for case in SUBPROCESS_CASES])
def test_cli_subprocess(template, message, inputs, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "ase_amden", *_argv(template, inputs, out)],
                            capture_output=True, text=True, env=env, timeout=120)
    _assert_one_line_error(result.returncode, result.stderr, message)
    assert not out.exists()


def test_catalogue_size():
    assert len(API_CASES) + len(CLI_CASES) + len(SUBPROCESS_CASES) + len(WARNING_CASES) >= 60
