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


def test_dataset_merge_keeps_each_sample_and_its_split(tmp_path, capsys):
    import numpy as np

    paths = []
    for k, rate in enumerate((1.0, 100.0)):
        images = []
        for i in range(3):
            atoms = bulk("Si", "diamond", a=5.43, cubic=True)
            atoms.rattle(0.05, seed=10 * k + i)
            atoms.info = {"cooling_rate": rate, "density": 2.3 + i, **({"extra": 1.0} if k else {})}
            images.append(atoms)
        ds = AmorphousDataset.write(tmp_path / f"{k}.h5", images, units={"cooling_rate": "K/ps"},
                                    held_out_mask=[i == 2 for i in range(3)])
        paths.append(ds.path)
    out = tmp_path / "merged.h5"
    assert main(["dataset", "merge", *paths, "--output", str(out)]) == 0
    assert "6 samples" in capsys.readouterr().out
    merged = AmorphousDataset(out)
    assert merged.property_names == ["cooling_rate", "density"]  # "extra" is not in both
    assert merged.property_units["cooling_rate"] == "K/ps"
    assert list(merged.properties("cooling_rate")) == [1.0] * 3 + [100.0] * 3
    assert list(merged.split_indices("test")) == [2, 5]
    first = AmorphousDataset(paths[1])[1]
    np.testing.assert_array_equal(merged[4].positions, first.positions)
    assert [s["samples"] for s in merged.protocol["sources"]] == [3, 3]
    code = main(["dataset", "merge", *paths, "--output", str(out), "--properties", "extra"])
    assert code != 0 and "has no property 'extra'" in capsys.readouterr().err
