import argparse
import json

import pytest
from ase.io import write

from ase_amden.analysis.cli import add_analyze_parser, parse_cutoff
from ase_amden.data import AmorphousDataset


def run(argv):
    parser = argparse.ArgumentParser(prog="ase-amden")
    add_analyze_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_analyze_with_reference(tmp_path, capsys, diamond):
    rattled = diamond.copy()
    rattled.rattle(0.1, seed=0)
    write(tmp_path / "gen.extxyz", [rattled, rattled])
    write(tmp_path / "ref.extxyz", diamond)
    status = run(
        [
            "analyze",
            str(tmp_path / "gen.extxyz"),
            "--reference",
            str(tmp_path / "ref.extxyz"),
            "--calculator",
            "sw-si",
            "--json",
            str(tmp_path / "out.json"),
            "--plot",
            str(tmp_path / "out.png"),
        ]
    )
    assert status == 0
    table = capsys.readouterr().out
    assert "rdf_rmsd" in table and "coordination" in table and "reference" in table
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["reference"]["coordination"] == 4.0
    assert result["reference"]["energy"] == pytest.approx(-4.3366, abs=1e-4)
    assert len(result["generated"]["energies"]) == 2
    assert (tmp_path / "out.png").stat().st_size > 20_000


def test_analyze_hdf5_dataset_quiet(tmp_path, capsys, diamond):
    AmorphousDataset.write(tmp_path / "set.h5", [diamond, diamond])
    assert (
        run(
            [
                "analyze",
                str(tmp_path / "set.h5"),
                "--quiet",
                "--cutoff",
                "Si-Si=2.6",
                "--json",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""
    result = json.loads((tmp_path / "s.json").read_text())
    assert result["n_structures"] == 2 and result["ring_size"] == 6.0


def test_cutoff_parsing_and_missing_file(tmp_path):
    assert parse_cutoff("2.5") == 2.5
    assert parse_cutoff("Si-O=2.0, Si-Si=2.6") == {"Si-O": 2.0, "Si-Si": 2.6}
    with pytest.raises(argparse.ArgumentTypeError, match="Si-O=2.0"):
        parse_cutoff("Si-O:2")
    with pytest.raises(FileNotFoundError, match="no such file"):
        run(["analyze", str(tmp_path / "missing.xyz")])
