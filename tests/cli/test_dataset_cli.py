from ase.build import bulk

from ase_amden.cli import main
from ase_amden.data import AmorphousDataset


def test_dataset_info_prints_counts_and_ranges(tmp_path, capsys):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.info["potential_energy"] = -4.3
    AmorphousDataset.write(tmp_path / "d.h5", [atoms, atoms], units={"potential_energy": "eV/atom"})
    assert main(["dataset", "info", str(tmp_path / "d.h5")]) == 0
    out = capsys.readouterr().out
    assert "samples: 2" in out and "potential_energy" in out and "eV/atom" in out


def test_unknown_protocol_is_a_clean_error(tmp_path, capsys):
    code = main(["dataset", "make", "nope", "--count", "1", "--output", str(tmp_path / "x.h5")])
    assert code == 2
    assert "valid names" in capsys.readouterr().err
