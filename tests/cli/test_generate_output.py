"""``ase-amden generate`` output: every format checked first, written atomically, read back."""

import warnings

import pytest
from ase.io import read

from ase_amden.cli import main
from ase_amden.cli.output import check_output

ARGS = ["generate", "--quiet", "--steps", "1", "--n-atoms", "8", "--seed", "4"]


@pytest.mark.parametrize("name, extra, count", [
    ("x.extxyz", [], 2), ("x.xyz", [], 2), ("x.traj", [], 2), ("x.db", [], 2),
    ("x.json", [], 2), ("x.cif", [], 2), ("POSCAR", [], 1),
    ("data.lmp", ["--format", "lammps-data"], 1),
])
def test_every_format_is_written_whole(name, extra, count, tmp_path):
    target = tmp_path / "sub" / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*ARGS, "--count", str(count), "--output", str(target), *extra]) == 0
    fmt = "lammps-data" if extra else None
    frames = read(target, ":", format=fmt)
    assert len(frames) == count and all(len(atoms) == 8 for atoms in frames)
    assert sorted(p.name for p in target.parent.iterdir()) == [name]  # no temporary files


def test_check_output_leaves_nothing_behind_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.db"
    target.write_bytes(b"old")
    assert check_output(target, 3, ["Si", "O"]) == "db"
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]
