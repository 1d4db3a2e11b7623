"""``ase-amden analyze`` as a report: each row once with units, --split, progress, batch size."""

import argparse
import json

import pytest
from ase.io import write

from ase_amden.analysis import environment_entropy
from ase_amden.analysis.cli import add_analyze_parser, format_table
from ase_amden.data import AmorphousDataset
from ase_amden.errors import AmdenError


def run(argv):
    parser = argparse.ArgumentParser(prog="ase-amden")
    add_analyze_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def rattled(diamond):
    images = []
    for seed in range(4):
        atoms = diamond.copy()
        atoms.rattle(0.05 * (seed + 1), seed=seed)
        images.append(atoms)
    return images


def test_summary_prints_each_row_once_with_units(tmp_path, capsys, rattled):
    write(tmp_path / "s.extxyz", rattled)
    assert run(["analyze", str(tmp_path / "s.extxyz")]) == 0
    captured = capsys.readouterr()
    rows = [line.split()[0] for line in captured.out.splitlines()[2:]]
    assert rows == ["n_structures", "n_atoms", "density", "coordination", "ring_size", "entropy"]
    assert "atoms/Å^3" in captured.out and "nats" in captured.out
    assert "entropy" in captured.err  # the progress bar names its stages


def test_quiet_prints_nothing(tmp_path, capsys, rattled):
    write(tmp_path / "s.extxyz", rattled)
    assert run(["analyze", str(tmp_path / "s.extxyz"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_reference_dataset_is_compared_by_its_held_out_split(tmp_path, capsys, rattled):
    data = AmorphousDataset.write(tmp_path / "ref.h5", rattled,
                                  held_out_mask=[False, True, False, True])
    write(tmp_path / "gen.extxyz", rattled[0])
    counts = {}
    for split, expected in ((None, 2), ("train", 2), ("all", 4)):
        argv = ["analyze", str(tmp_path / "gen.extxyz"), "--reference", data.path, "--quiet",
                "--json", str(tmp_path / "out.json")]
        assert run(argv + (["--split", split] if split else [])) == 0
        counts[split] = json.loads((tmp_path / "out.json").read_text())["reference"][
            "n_structures"]
        assert counts[split] == expected
    assert run(["analyze", str(tmp_path / "gen.extxyz"), "--reference", data.path]) == 0
    out = capsys.readouterr().out
    assert "(test split, 2)" in out
    assert sum(line.startswith("rdf_rmsd") for line in out.splitlines()) == 1
    with pytest.raises(AmdenError, match="--split selects a split of an .h5 dataset"):
        run(["analyze", str(tmp_path / "gen.extxyz"), "--reference",
             str(tmp_path / "gen.extxyz"), "--split", "test"])


def test_table_of_a_comparison_has_one_row_per_quantity():
    results = {"rdf_rmsd": 0.1, "adf_rmsd": 0.002, "overlap": 0.5,
               "generated": {"n_structures": 2, "energy": -4.0, "energies": [-4.0, -4.0]},
               "reference": {"n_structures": 3, "energy": -4.1, "energies": [-4.1] * 3}}
    lines = format_table(results).splitlines()
    assert [line.split()[0] for line in lines] == [
        "quantity", "n_structures", "energy", "rdf_rmsd", "adf_rmsd", "overlap"]
    assert lines[2].endswith("eV/atom") and lines[4].endswith("1/degree")


def test_entropy_batch_size_changes_memory_not_the_result(rattled):
    assert environment_entropy(rattled, batch_size=7) == pytest.approx(
        environment_entropy(rattled, batch_size=1000), rel=1e-10)
    with pytest.raises(ValueError, match="batch_size"):
        environment_entropy(rattled, batch_size=0)
