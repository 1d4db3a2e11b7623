import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from ase_amden.cli import main
from ase_amden.data import AmorphousDataset, import_structures, parse_type_map
from ase_amden.errors import AmdenError, DatasetFormatError, UnknownNameError

DM2 = Path(__file__).resolve().parents[3] / "shared" / "data" / "dm2-a-sio2"


def _silica(seed: int) -> Atoms:
    rng = np.random.default_rng(seed)
    atoms = Atoms("Si4O8", positions=rng.uniform(0, 7.0, (12, 3)), cell=[7.0, 7.1, 7.2], pbc=True)
    atoms.set_initial_charges([2.4] * 4 + [-1.2] * 8)
    return atoms


@pytest.fixture
def lammps_files(tmp_path):
    """Two LAMMPS data files (real units, charge style, type 1 = O, 2 = Si), DM2's naming."""
    paths = []
    for k, rate in enumerate(["0_1k", "100k"]):
        path = tmp_path / f"sio2_12_glass_{rate}_sample{k}.dat"
        write(path, _silica(k), format="lammps-data", atom_style="charge", units="real",
              specorder=["O", "Si"], masses=True)
        paths.append(path)
    return paths


def test_lammps_import_round_trips_positions_cell_elements_properties_and_licence(
        lammps_files, tmp_path):
    out = tmp_path / "ds.h5"
    ds = import_structures(
        lammps_files, out, type_map={1: "O", 2: "Si"},
        name_pattern=r"glass_(?P<cooling_rate>[0-9_]+)k_", held_out_pattern="sample1",
        units={"cooling_rate": "K/ps"}, source="unit test", licence="MIT",
        licence_text="Permission is hereby granted", lammps_style="charge",
        lammps_units="real", verbose=False,
    )
    reread = AmorphousDataset(out)
    assert len(reread) == 2 and ds.path == reread.path
    for k, atoms in enumerate(reread):
        original = _silica(k)
        # LAMMPS stores atoms by type; match them by element then position.
        assert atoms.get_chemical_formula() == original.get_chemical_formula()
        np.testing.assert_allclose(atoms.cell[:], original.cell[:], atol=1e-9)
        for symbol in ("Si", "O"):
            a = atoms.positions[atoms.symbols == symbol]
            b = original.positions[original.symbols == symbol]
            np.testing.assert_allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)], atol=1e-6)
    np.testing.assert_allclose(reread.properties("cooling_rate"), [0.1, 100.0])
    assert reread.property_units["cooling_rate"] == "K/ps"
    assert reread.protocol["licence"] == "MIT"
    assert reread.protocol["licence_text"].startswith("Permission")
    assert reread.protocol["source"] == "unit test"
    assert reread.protocol["files"] == [p.name for p in lammps_files]
    assert reread.split_indices("test").tolist() == [1]
    assert "initial_charges" not in reread[0].arrays


def test_the_dm2_silica_files_import_with_their_cooling_rates(tmp_path):
    files = sorted(DM2.glob("sio2_3000_glass_*_sample0.dat"))
    assert len(files) == 4, f"DM2 data expected in {DM2}"
    ds = import_structures(files, tmp_path / "dm2.h5", type_map={1: "O", 2: "Si"},
                           name_pattern=r"glass_(?P<cooling_rate>[0-9_]+)k_",
                           lammps_style="charge", lammps_units="real", verbose=False)
    rates = dict(zip((f.name for f in files), ds.properties("cooling_rate"), strict=True))
    assert rates["sio2_3000_glass_0_1k_sample0.dat"] == pytest.approx(0.1)
    assert rates["sio2_3000_glass_100k_sample0.dat"] == pytest.approx(100.0)
    assert all(a.get_chemical_formula() == "O2000Si1000" for a in ds)


def test_cli_import_writes_the_dataset(lammps_files, tmp_path, capsys):
    licence = tmp_path / "LICENSE"
    licence.write_text("MIT licence text")
    out = tmp_path / "cli.h5"
    code = main(["dataset", "import", *map(str, lammps_files), "--output", str(out),
                 "--type-map", "1=O,2=Si", "--name-pattern", r"glass_(?P<cooling_rate>[0-9_]+)k_",
                 "--units", "cooling_rate=K/ps", "--property", "pressure=0", "--licence", "MIT",
                 "--licence-file", str(licence), "--lammps-style", "charge",
                 "--lammps-units", "real", "--quiet"])
    assert code == 0
    ds = AmorphousDataset(out)
    assert sorted(ds.property_names) == ["cooling_rate", "pressure"]
    assert ds.protocol["licence_text"] == "MIT licence text"


def test_extxyz_import_keeps_info_properties(tmp_path):
    images = [_silica(0), _silica(1)]
    for k, atoms in enumerate(images):
        atoms.info["cooling_rate"] = 10.0**k
    write(tmp_path / "set.extxyz", images)
    ds = import_structures([tmp_path / "set.extxyz"], tmp_path / "x.h5", verbose=False)
    np.testing.assert_allclose(ds.properties("cooling_rate"), [1.0, 10.0])


def test_type_map_parsing_and_its_errors():
    assert parse_type_map("1=O,2=Si") == {1: "O", 2: "Si"}
    with pytest.raises(AmdenError, match="type=element"):
        parse_type_map("O=1")
    with pytest.raises(UnknownNameError, match="unknown element 'Xx'"):
        parse_type_map("1=Xx")
    with pytest.raises(AmdenError, match="empty"):
        parse_type_map(" , ")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"type_map": {1: "O"}}, AmdenError, r"atom types \[2\]"),
        ({"name_pattern": r"rate_(?P<cooling_rate>\d+)"}, AmdenError, "does not match"),
        ({"name_pattern": r"(?P<cooling_rate>glass)"}, AmdenError, "not a number"),
        ({"name_pattern": r"(?P<x"}, AmdenError, "not a valid regular expression"),
        ({"lammps_style": "full"}, DatasetFormatError, "atom_style 'full'"),
    ],
)
def test_bad_import_arguments_are_named(lammps_files, tmp_path, kwargs, error, match):
    base = {"type_map": {1: "O", 2: "Si"}, "lammps_style": "charge", "lammps_units": "real"}
    out = tmp_path / "bad.h5"
    with pytest.raises(error, match=match):
        import_structures(lammps_files, out, **{**base, **kwargs}, verbose=False)
    assert not out.exists()


def test_missing_file_and_empty_list_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        import_structures([tmp_path / "nope.dat"], tmp_path / "o.h5", verbose=False)
    with pytest.raises(AmdenError, match="no files"):
        import_structures([], tmp_path / "o.h5", verbose=False)
    assert not os.path.exists(tmp_path / "o.h5")
