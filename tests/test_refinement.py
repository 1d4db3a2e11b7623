"""Short MD refinement (NVT then NPT) with LAMMPS potentials and ASE calculators."""

import argparse

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from ase.spacegroup import crystal

from ase_amden.errors import AmdenError, InvalidStructureError, RefinementError, UnknownNameError
from ase_amden.potentials import get_calculator
from ase_amden.refinement import refine
from ase_amden.training.batching import mass_density


def cristobalite(scale: float = 1.0) -> Atoms:
    """Si64O128 (2 x 2 x 2 beta-cristobalite), rattled, cell scaled by ``scale``."""
    atoms = crystal(["Si", "O"], basis=[(0, 0, 0), (0.125, 0.125, 0.125)], spacegroup=227,
                    cellpar=7.16).repeat(2)
    atoms.set_cell(atoms.cell * scale, scale_atoms=True)
    atoms.rattle(0.05, seed=1)
    atoms.info["model"] = "test"
    return atoms


def quartz() -> Atoms:
    """Alpha-quartz, Si24O48, in a hexagonal cell."""
    return crystal(["Si", "O"], [(0.4697, 0, 1 / 3), (0.4135, 0.2669, 0.2144)],
                   spacegroup=152, cellpar=[4.916, 4.916, 5.405, 90, 90, 120]).repeat(2)


def coordination(atoms: Atoms, centre: int, cutoff: float = 2.0) -> np.ndarray:
    i, j = neighbor_list("ij", atoms, cutoff)
    unlike = atoms.numbers[i] != atoms.numbers[j]
    counts = np.bincount(i[unlike], minlength=len(atoms))
    return counts[atoms.numbers == centre]


def test_lammps_refinement_keeps_silica_bonded_and_npt_relaxes_a_compressed_cell():
    start = cristobalite(scale=0.97)  # compressed: positive pressure
    before = start.copy()
    nvt = refine(start, "jakse-sio2", nvt_ps=0.05, npt_ps=0.0, verbose=False)
    both = refine(start, "jakse-sio2", nvt_ps=0.05, npt_ps=0.2, verbose=False)
    np.testing.assert_array_equal(start.positions, before.positions)  # input untouched
    for refined in (nvt, both):
        assert refined.get_chemical_formula() == start.get_chemical_formula()
        assert np.all(coordination(refined, 14) == 4)  # tetrahedral Si
        assert np.all(coordination(refined, 8) == 2)  # bridging O
        i, j, d = neighbor_list("ijd", refined, 2.0)
        assert d[refined.numbers[i] != refined.numbers[j]].mean() == pytest.approx(1.635,
                                                                                 abs=0.02)
    np.testing.assert_allclose(nvt.cell[:], start.cell[:], atol=1e-9)  # NVT: volume fixed
    assert both.info["refine_density"] < mass_density(start) - 0.03  # NPT: the cell expands
    np.testing.assert_allclose(both.cell.cellpar()[3:], 90.0, atol=1e-6)  # shape kept
    assert both.info["model"] == "test"
    assert both.info["refine_potential"] == "jakse-sio2"
    assert (both.info["refine_nvt_ps"], both.info["refine_npt_ps"]) == (0.05, 0.2)
    assert both.info["refine_temperature_K"] == 300.0
    assert both.info["refine_density"] == pytest.approx(mass_density(both))


def test_lammps_refinement_returns_a_rotated_triclinic_cell_in_its_own_orientation():
    atoms = quartz()
    atoms.rotate(35, (1, 2, 3), rotate_cell=True)  # no cell vector along x any more
    refined = refine(atoms, "jakse-sio2", nvt_ps=0.05, npt_ps=0.0, seed=3, verbose=False)
    np.testing.assert_allclose(refined.cell[:], atoms.cell[:], atol=1e-9)
    step = refined.get_positions() - atoms.get_positions()
    fractional = np.linalg.solve(atoms.cell[:].T, step.T).T
    step = (fractional - np.round(fractional)) @ atoms.cell[:]
    assert np.linalg.norm(step, axis=1).max() < 0.5  # thermal motion, not a misplaced frame
    assert np.all(coordination(refined, 14) == 4)
    relaxed = refine(atoms, "jakse-sio2", nvt_ps=0.0, npt_ps=0.05, seed=3, verbose=False)
    assert np.all(coordination(relaxed, 14) == 4)
    assert relaxed.cell.volume != pytest.approx(atoms.cell.volume, rel=1e-6)


def test_ase_calculator_refinement_expands_quartz_at_constant_shape():
    # Jakse quartz is 12 % less dense than the real one: at the real cell it is under
    # pressure, and NPT (Berendsen, isotropic) must expand it without changing its shape.
    atoms = quartz()
    atoms.rattle(0.02, seed=0)
    refined = refine(atoms, get_calculator("jakse-sio2"), nvt_ps=0.02, npt_ps=0.1, seed=2,
                     verbose=False)
    assert refined.get_volume() > atoms.get_volume() * 1.005
    np.testing.assert_allclose(refined.cell.cellpar()[3:], [90, 90, 120], atol=1e-9)
    assert refined.cell.lengths()[2] / refined.cell.lengths()[0] == pytest.approx(
        atoms.cell.lengths()[2] / atoms.cell.lengths()[0], rel=1e-9)
    assert np.all(coordination(refined, 14) == 4)
    assert refined.info["refine_potential"] == "PotentialCalculator"
    first, again = (refine(atoms, get_calculator("jakse-sio2"), nvt_ps=0.01, npt_ps=0.0,
                           seed=2, verbose=False) for _ in range(2))
    np.testing.assert_allclose(again.positions, first.positions)  # seeded


def test_the_benchmark_refines_through_this_api():
    from benchmarks.silica_cooling_rate import refine_set

    args = argparse.Namespace(refine="jakse-sio2", refine_ps=(0.02, 0.02), seed=0)
    refined, seconds = refine_set([cristobalite()], args)
    assert len(refined) == 1 and seconds > 0
    assert refined[0].info["refine_npt_ps"] == 0.02


@pytest.mark.parametrize("kwargs, match", [
    ({"nvt_ps": -1.0}, "nvt_ps must be a finite length >= 0"),
    ({"npt_ps": float("nan")}, "npt_ps must be a finite length"),
    ({"temperature": 0.0}, "temperature must be"),
    ({"timestep_fs": -1.0}, "timestep_fs must be"),
    ({"pressure": float("inf")}, "pressure must be"),
    ({"seed": -1}, "seed must be an integer"),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(AmdenError, match=match):
        refine(cristobalite(), "jakse-sio2", verbose=False, **kwargs)


def test_bad_structures_and_potentials_are_named():
    with pytest.raises(UnknownNameError, match="unknown potential 'lj'.*'jakse-sio2'"):
        refine(cristobalite(), "lj", verbose=False)
    copper = bulk("Cu", "fcc", a=3.6, cubic=True)
    with pytest.raises(UnknownNameError, match=r"no parameters for \['Cu'\]"):
        refine(copper, "jakse-sio2", verbose=False)
    broken = cristobalite()
    broken.positions[5] = np.nan
    with pytest.raises(InvalidStructureError, match="NaN or infinite positions"):
        refine(broken, "jakse-sio2", verbose=False)
    with pytest.raises(InvalidStructureError, match="periodic"):
        refine(Atoms("SiO2", positions=np.eye(3)), "jakse-sio2", verbose=False)
    with pytest.raises(AmdenError, match="potential name or an ASE calculator"):
        refine(cristobalite(), 42, verbose=False)


def test_calculator_without_stress_cannot_run_npt():
    from ase.calculators.lj import LennardJones

    calc = LennardJones()
    calc.implemented_properties = ["energy", "forces"]
    with pytest.raises(AmdenError, match="no stress, which NPT needs"):
        refine(bulk("Ar", "fcc", a=5.3, cubic=True), calc, verbose=False)


def test_a_failing_md_is_a_refinement_error():
    with pytest.raises(RefinementError, match="timestep_fs"):
        refine(cristobalite(), "jakse-sio2", nvt_ps=4.0, npt_ps=0.0, timestep_fs=40.0,
               verbose=False)


# ------------------------------------------------------------ generate(refine=...)

REFINE = {"nvt_ps": 0.02, "npt_ps": 0.02}


@pytest.fixture(scope="module")
def si_gen():
    from ase_amden.generator import AmorphousGenerator

    return AmorphousGenerator.pretrained("a-Si", device="cpu")


def test_generate_refines_each_structure_as_refine_would_with_its_own_seed(si_gen):
    from ase_amden.random_streams import structure_seed

    kwargs = dict(n_atoms=64, steps=4, seed=3, progress=False, check="off")
    raw = si_gen.generate(2, **kwargs)
    refined = si_gen.generate(2, refine="sw-si", refine_options=REFINE, **kwargs)
    for i, (before, after) in enumerate(zip(raw, refined, strict=True)):
        expected = refine(before, "sw-si", seed=structure_seed(3, i) % (2**31 - 1),
                          verbose=False, **REFINE)
        np.testing.assert_allclose(after.positions, expected.positions, atol=1e-8)
        np.testing.assert_allclose(after.cell[:], expected.cell[:], atol=1e-8)
        assert after.info["refine_potential"] == "sw-si" and after.info["structure_index"] == i
        assert after.info["refine_npt_ps"] == 0.02 and after.info["seed"] == 3
    assert refined[0].info["refine_seed"] != refined[1].info["refine_seed"]
    assert not np.allclose(refined[0].positions, raw[0].positions)


def test_generate_refinement_requests_are_checked_before_sampling(si_gen):
    from ase.calculators.lj import LennardJones

    small = dict(n_atoms=64, steps=1, progress=False)
    with pytest.raises(AmdenError, match="refine_options given without refine="):
        si_gen.generate(1, refine_options=REFINE, **small)
    with pytest.raises(AmdenError, match=r"unknown refinement option\(s\) \['nvt'\]"):
        si_gen.generate(1, refine="sw-si", refine_options={"nvt": 1.0}, **small)
    with pytest.raises(AmdenError, match="nvt_ps must be a finite length"):
        si_gen.generate(1, refine="sw-si", refine_options={"nvt_ps": -1.0}, **small)
    with pytest.raises(UnknownNameError, match=r"no parameters for \['Si'\]"):
        si_gen.generate(1, refine="eam-cuzr", **small)
    calc = LennardJones()
    calc.implemented_properties = ["energy", "forces"]
    with pytest.raises(AmdenError, match="no stress, which NPT needs"):
        si_gen.generate(1, refine=calc, **small)
    template = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    with pytest.raises(AmdenError, match="move the template's fixed atoms"):
        si_gen.generate(1, template=template, fixed_mask=[True] * 8 + [False] * 56,
                        refine="sw-si", **small)


def test_a_refined_structure_is_not_regenerated_silently(si_gen):
    (atoms,) = si_gen.generate(1, n_atoms=64, steps=2, seed=0, progress=False, check="off",
                               refine="sw-si", refine_options=REFINE)
    with pytest.raises(AmdenError, match="refined by MD after generation"):
        si_gen.regenerate(atoms)


def test_generate_command_refines(tmp_path):
    from ase.io import read

    from ase_amden.cli import main

    out = tmp_path / "refined.extxyz"
    assert main(["generate", "--model", "a-Si", "--n-atoms", "64", "--steps", "2", "--count",
                 "1", "--output", str(out), "--quiet", "--refine", "sw-si",
                 "--refine-nvt-ps", "0.01", "--refine-npt-ps", "0", "--refine-temperature",
                 "500"]) == 0
    (atoms,) = read(out, index=":")
    assert atoms.info["refine_potential"] == "sw-si"
    assert (atoms.info["refine_nvt_ps"], atoms.info["refine_temperature_K"]) == (0.01, 500.0)
    again = tmp_path / "again.extxyz"
    assert main(["refine", str(out), "--output", str(again), "--potential", "sw-si",
                 "--nvt-ps", "0.01", "--npt-ps", "0.01", "--quiet"]) == 0
    assert read(again).info["refine_npt_ps"] == 0.01
