import h5py
import numpy as np
import pytest
from ase.build import bulk

from ase_amden.data import AmorphousDataset, held_out
from ase_amden.errors import DatasetFormatError, InvalidStructureError, UnknownNameError


def _images(n=12):
    images = []
    for i in range(n):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (1, 1, 1 + i % 2)
        atoms.rattle(0.05, seed=i)
        atoms.info = {"potential_energy": -4.0 - 0.01 * i, "elastic_tensor": np.eye(6) * i}
        images.append(atoms)
    return images


def test_round_trip(tmp_path):
    images = _images()
    ds = AmorphousDataset.write(tmp_path / "d.h5", images, units={"potential_energy": "eV/atom"},
                                protocol={"name": "test"})
    assert len(ds) == len(images)
    for a, b in zip(images, ds, strict=True):
        np.testing.assert_allclose(a.positions, b.positions)
        np.testing.assert_allclose(a.cell[:], b.cell[:])
        assert b.info["potential_energy"] == a.info["potential_energy"]
        np.testing.assert_allclose(b.info["elastic_tensor"], a.info["elastic_tensor"])
    assert ds.property_units["potential_energy"] == "eV/atom"
    assert ds.protocol == {"name": "test"}
    expected = [a.info["potential_energy"] for a in images]
    np.testing.assert_allclose(ds.properties("potential_energy"), expected)
    with pytest.raises(UnknownNameError, match="potential_energy"):
        ds.properties("shear_modulus")


def test_split_is_stable_and_partitions():
    train = [i for i in range(1000) if not held_out(i)]
    assert 60 < 1000 - len(train) < 140  # about 10 % held out
    assert held_out(5) == held_out(5)


def test_split_indices(tmp_path):
    ds = AmorphousDataset.write(tmp_path / "d.h5", _images(40))
    train, test = ds.split_indices("train"), ds.split_indices("test")
    assert len(train) + len(test) == 40 and not set(train) & set(test)
    assert all(held_out(ds.indices[i]) for i in test)


def test_hash_changes_with_content(tmp_path):
    images = _images(3)
    h1 = AmorphousDataset.write(tmp_path / "a.h5", images).content_hash()
    images[1].positions[0, 0] += 1e-6
    h2 = AmorphousDataset.write(tmp_path / "b.h5", images).content_hash()
    assert h1 != h2 and len(h1) == 64


@pytest.mark.parametrize("suffix", [".extxyz", ".db"])
def test_conversion_through_ase_io(tmp_path, suffix):
    ds = AmorphousDataset.write(tmp_path / "d.h5", _images(4))
    ds.to_file(str(tmp_path / f"d{suffix}"))
    back = AmorphousDataset.from_file(str(tmp_path / f"d{suffix}"), str(tmp_path / "e.h5"))
    assert len(back) == 4
    np.testing.assert_allclose(back[2].positions, ds[2].positions, atol=1e-6)
    assert back[2].info["potential_energy"] == pytest.approx(ds[2].info["potential_energy"])
    np.testing.assert_allclose(back[2].info["elastic_tensor"], ds[2].info["elastic_tensor"])


def test_foreign_hdf5_is_refused(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetFormatError, match="not written by ase_amden"):
        AmorphousDataset(tmp_path / "other.h5")


def test_truncated_file_is_refused(tmp_path):
    AmorphousDataset.write(tmp_path / "d.h5", _images(4))
    data = (tmp_path / "d.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match="not a readable"):
        AmorphousDataset(tmp_path / "cut.h5")


def test_bad_structures_are_refused(tmp_path):
    images = _images(2)
    images[1].positions[0, 0] = np.nan
    with pytest.raises(InvalidStructureError, match="NaN"):
        AmorphousDataset.write(tmp_path / "d.h5", images)
    images = _images(2)
    images[0].pbc = False
    with pytest.raises(InvalidStructureError, match="periodic"):
        AmorphousDataset.write(tmp_path / "d.h5", images)
    assert not (tmp_path / "d.h5").exists()


def test_mismatched_properties_are_refused(tmp_path):
    images = _images(2)
    del images[1].info["potential_energy"]
    with pytest.raises(DatasetFormatError, match="same properties"):
        AmorphousDataset.write(tmp_path / "d.h5", images)


def test_written_files_get_usual_permissions(tmp_path):
    import os

    path = tmp_path / "d.h5"
    AmorphousDataset.write(path, _images(1))
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask
