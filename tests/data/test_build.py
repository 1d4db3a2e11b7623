import os

import numpy as np
import pytest

from ase_amden.data import AmorphousDataset, make_dataset
from ase_amden.errors import DatasetFormatError


def test_make_and_resume_without_duplicates(tmp_path, tiny_protocol):
    out = str(tmp_path / "tiny.h5")
    made = []
    ds = make_dataset(tiny_protocol, 2, out, workers=2, verbose=False, on_sample=made.append)
    assert sorted(ds.indices) == [0, 1] and len(made) == 2
    made.clear()
    ds = make_dataset(tiny_protocol, 3, out, verbose=False, on_sample=made.append)
    assert [a.info["sample_index"] for a in made] == [2]  # only the missing one ran
    assert sorted(ds.indices) == [0, 1, 2]
    assert ds.protocol["name"] == "tiny-si"
    assert not os.path.exists(out + ".journal")


def test_interrupt_keeps_finished_samples(tmp_path, tiny_protocol):
    out = str(tmp_path / "tiny.h5")

    def stop(_atoms):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_dataset(tiny_protocol, 3, out, verbose=False, on_sample=stop)
    assert len(AmorphousDataset(out)) == 1  # saved before the interrupt
    ds = make_dataset(tiny_protocol, 3, out, verbose=False)
    assert sorted(ds.indices) == [0, 1, 2]


def test_journal_is_merged_on_resume(tmp_path, tiny_protocol):
    out = str(tmp_path / "tiny.h5")
    first = make_dataset(tiny_protocol, 1, str(tmp_path / "elsewhere.h5"), verbose=False)
    journal = out + ".journal"
    os.makedirs(journal)
    first_atoms = first[0]
    AmorphousDataset.write(os.path.join(journal, "00000000.h5"), [first_atoms],
                           protocol=tiny_protocol.to_dict())
    (tmp_path / "tiny.h5.journal" / "00000001.h5").write_bytes(b"half-written")
    made = []
    ds = make_dataset(tiny_protocol, 2, out, verbose=False, on_sample=made.append)
    assert [a.info["sample_index"] for a in made] == [1]
    np.testing.assert_allclose(ds[0].positions, first_atoms.positions)


def test_other_protocol_in_same_file_is_refused(tmp_path, tiny_protocol):
    from dataclasses import replace

    out = str(tmp_path / "tiny.h5")
    make_dataset(tiny_protocol, 1, out, verbose=False)
    with pytest.raises(DatasetFormatError, match="another --output"):
        make_dataset(replace(tiny_protocol, seed=8), 2, out, verbose=False)


def test_count_must_be_positive(tmp_path, tiny_protocol):
    with pytest.raises(ValueError, match="count"):
        make_dataset(tiny_protocol, 0, str(tmp_path / "x.h5"))


def test_journal_holds_only_unmerged_samples(tmp_path, tiny_protocol):
    out = str(tmp_path / "tiny.h5")
    seen = []

    def look(_atoms):
        seen.append(sorted(os.listdir(out + ".journal")))

    make_dataset(tiny_protocol, 2, out, verbose=False, on_sample=look)
    assert seen == [[], []]  # each sample left the journal once it was in the dataset
