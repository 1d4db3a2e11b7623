from ase.io import read, write
from ase.spacegroup import crystal

from ase_amden.cli import main


def _cristobalite():
    atoms = crystal(["Si", "O"], basis=[(0, 0, 0), (0.125, 0.125, 0.125)], spacegroup=227,
                    cellpar=7.16)
    atoms.rattle(0.05, seed=0)
    atoms.info["model"] = "test"
    return atoms


def test_refine_writes_refined_frames_with_provenance(tmp_path, capsys):
    write(tmp_path / "in.extxyz", [_cristobalite(), _cristobalite()])
    code = main(["refine", str(tmp_path / "in.extxyz"), "--output", str(tmp_path / "out.extxyz"),
                 "--potential", "jakse-sio2", "--nvt-ps", "0.02", "--npt-ps", "0.02",
                 "--seed", "4"])
    assert code == 0
    frames = read(tmp_path / "out.extxyz", index=":")
    assert [a.info["refine_seed"] for a in frames] == [4, 5]
    assert all(a.info["model"] == "test" and a.info["refine_npt_ps"] == 0.02 for a in frames)
    assert "wrote 2 refined structures" in capsys.readouterr().out


def test_unknown_potential_is_a_clean_error(tmp_path, capsys):
    write(tmp_path / "in.extxyz", _cristobalite())
    code = main(["refine", str(tmp_path / "in.extxyz"), "--output", str(tmp_path / "o.xyz"),
                 "--potential", "nope", "--quiet"])
    assert code == 2
    assert "unknown potential 'nope'" in capsys.readouterr().err
