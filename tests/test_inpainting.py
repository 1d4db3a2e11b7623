"""Positional inpainting and observable guidance through AmorphousGenerator.generate."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.constraints import FixAtoms

from ase_amden import AmorphousGenerator
from ase_amden.analysis.scattering import ScatteringSetup, structure_factor
from ase_amden.diffusion import FlowSampler, HMCSampler, ShortcutSampler
from ase_amden.diffusion.inpainting import min_distances
from ase_amden.diffusion.observables import ObservableGuidance
from ase_amden.errors import AmdenError, InvalidStructureError


@pytest.fixture(scope="module")
def generator():
    return AmorphousGenerator.pretrained("a-Si", device="cpu")


def _slab_template():
    slab = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 1))
    slab.cell[2, 2] = 5.43 * 2.2
    slab.pbc = True
    slab.set_constraint(FixAtoms(indices=range(len(slab))))
    return slab


@pytest.mark.parametrize("sampler", ["sde", "ode", "langevin"])
def test_fixed_atoms_do_not_move(generator, sampler):
    template = _slab_template()
    out = generator.generate(2, template=template, sampler=sampler, steps=4, seed=0,
                             progress=False)
    n_fixed = len(template)
    expected_free = round(generator.card.training["default_number_density"]
                          * template.get_volume()) - n_fixed
    for atoms in out:
        assert len(atoms) == n_fixed + expected_free
        assert np.array_equal(atoms.positions[:n_fixed], template.positions)
        assert atoms.get_chemical_symbols()[:n_fixed] == template.get_chemical_symbols()
        assert atoms.constraints[0].get_indices().tolist() == list(range(n_fixed))
        closest = min_distances(atoms.positions[n_fixed:], template.positions, atoms.cell.array)
        # the closest Si-Si pair of the model's training data (2.17 Å), not the 1.78 Å fallback
        limit = generator.card.training["min_distances"]["Si-Si"]
        assert limit == pytest.approx(2.1735, abs=1e-3)
        assert closest.min() >= limit - 1e-6
        assert atoms.info["inpainting_pushed"] >= atoms.info["inpainting_violations"] == 0


def test_fixed_mask_and_counts(generator):
    template = _slab_template()
    template.set_constraint()
    mask = np.zeros(len(template), dtype=bool)
    mask[:8] = True
    atoms = generator.generate(template=template, fixed_mask=mask, n_atoms=40, steps=3, seed=1,
                               progress=False)[0]
    assert len(atoms) == 48
    assert np.array_equal(atoms.positions[:8], template.positions[:8])


def test_bad_templates(generator):
    template = _slab_template()
    for sampler in (FlowSampler(), ShortcutSampler()):  # no eps model ships for these
        with pytest.raises(AmdenError, match="cannot hold atoms"):
            AmorphousGenerator._check_conditioning(sampler, template, None, None)
    no_cell = Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], constraint=FixAtoms([0]))
    with pytest.raises(InvalidStructureError, match="no cell"):
        generator.generate(template=no_cell, steps=2, progress=False)
    free = _slab_template()
    free.set_constraint()
    with pytest.raises(AmdenError, match="no fixed atoms"):
        generator.generate(template=free, steps=2, progress=False)
    with pytest.raises(AmdenError, match="fixed_mask"):
        generator.generate(template=free, fixed_mask=[True], steps=2, progress=False)
    with pytest.raises(AmdenError, match="not both"):
        generator.generate(template=template, cell=10.0, steps=2, progress=False)


def test_observable_guidance_reports_rfactor(generator):
    reference = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    q = np.linspace(1.3, 8.0, 30)
    s_q = structure_factor(reference, q)
    out = generator.generate(2, n_atoms=64, steps=3, seed=0, progress=False,
                             observables={"structure_factor": (q, s_q, {"strength": 1.0})})
    for atoms in out:
        rfactor = atoms.info["observable_rfactor"]
        assert np.isfinite(rfactor) and rfactor > 0
    for sampler in (HMCSampler(), FlowSampler()):
        with pytest.raises(AmdenError, match="cannot be guided"):
            AmorphousGenerator._check_conditioning(sampler, None, None,
                                                   {"structure_factor": (q, s_q)})
    with pytest.raises(AmdenError, match="below"):
        generator.generate(n_atoms=64, steps=2, progress=False,
                           observables={"structure_factor": (np.linspace(0.2, 8, 30), s_q)})
    with pytest.raises(AmdenError, match="same length"):
        generator.generate(n_atoms=64, steps=2, progress=False,
                           observables={"rdf": (np.linspace(1, 5, 10), np.ones(9))})


def test_guidance_gradient_lowers_the_misfit():
    """Small steps down the guidance gradient bring a random cell towards a crystal's S(q)."""
    crystal = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    q = np.linspace(1.3, 8.0, 40)
    setup = ScatteringSetup("structure_factor", q, structure_factor(crystal, q), ["Si"])
    guidance = ObservableGuidance(None, setup, None)
    rng = np.random.default_rng(0)
    x = torch.tensor(crystal.positions + rng.normal(0, 0.3, crystal.positions.shape))
    cell = torch.tensor(crystal.cell.array)[None]
    system = torch.zeros(len(crystal), dtype=torch.long)
    guidance.species = system
    before = setup.rfactor(setup(x, system, cell, system))[0]
    for _ in range(10):
        x = x - 0.01 * guidance.misfit_gradient(x, cell, system)
    assert setup.rfactor(setup(x, system, cell, system))[0] < 0.8 * before


def test_hmc_sampler_holds_fixed_atoms():
    template = _slab_template()
    energy_model = AmorphousGenerator.pretrained("a-Si-energy", device="cpu")
    atoms = energy_model.generate(template=template, sampler="hmc", steps=3, seed=0,
                                  progress=False)[0]
    assert np.array_equal(atoms.positions[: len(template)], template.positions)
    assert 0.0 <= atoms.info["hmc_acceptance"] <= 1.0


def test_min_distance_safeguard_is_pairwise_and_explicit(generator):
    template = _slab_template()
    atoms = generator.generate(template=template, min_distance=2.1, steps=3, seed=3,
                               progress=False)[0]
    n_fixed = len(template)
    closest = min_distances(atoms.positions[n_fixed:], template.positions, atoms.cell.array)
    assert atoms.info["inpainting_violations"] == int((closest < 2.1 - 1e-9).sum()) == 0
    with pytest.raises(AmdenError, match="min_distance"):
        generator.generate(template=template, min_distance=-1.0, steps=2, progress=False)


def test_generate_command_inpaints_and_follows_a_measured_curve(tmp_path, capsys):
    from ase.io import read, write

    from ase_amden.cli import main

    template = _slab_template()
    template.set_constraint()
    write(tmp_path / "slab.extxyz", template)
    out = tmp_path / "inpainted.extxyz"
    assert main(["generate", "--model", "a-Si", "--template", str(tmp_path / "slab.extxyz"),
                 "--fixed", "0-7,9", "--n-atoms", "30", "--steps", "3", "--seed", "2",
                 "--output", str(out), "--quiet"]) == 0
    (atoms,) = read(out, index=":")
    assert len(atoms) == 39
    assert np.allclose(atoms.positions[:9], template.positions[[0, 1, 2, 3, 4, 5, 6, 7, 9]])

    q = np.linspace(1.3, 8.0, 30)
    np.savetxt(tmp_path / "sq.dat", np.column_stack([q, structure_factor(
        bulk("Si", "diamond", a=5.43, cubic=True).repeat(2), q)]))
    guided = tmp_path / "guided.extxyz"
    assert main(["generate", "--model", "a-Si", "--n-atoms", "64", "--steps", "3",
                 "--observable", f"structure_factor={tmp_path / 'sq.dat'}",
                 "--observable-weighting", "xray", "--output", str(guided), "--quiet"]) == 0
    assert np.isfinite(read(guided).info["observable_rfactor"])

    for argv, message in (
        (["--fixed", "0-3"], "--fixed needs --template"),
        (["--template", str(tmp_path / "slab.extxyz"), "--fixed", "0-99"], "has 32 atoms"),
        (["--observable", f"rdf={tmp_path / 'missing.dat'}"], "cannot read the measured"),
    ):
        capsys.readouterr()
        assert main(["generate", "--model", "a-Si", "--n-atoms", "64", "--steps", "2",
                     "--output", str(tmp_path / "x.extxyz"), "--quiet", *argv]) == 2
        assert message in capsys.readouterr().err


def test_thresholds_use_the_training_pairs_and_fall_back_to_covalent_radii():
    from ase_amden.diffusion.inpainting import InpaintingPlan

    plan = InpaintingPlan(np.eye(3) * 10.0, np.zeros((2, 3)), ["O", "Si"], ["Si", "O", "O"],
                          None, {"O-Si": 1.55, "Si-Si": 2.3})
    covalent_oo = 0.8 * 2 * 0.66
    np.testing.assert_allclose(plan.thresholds(), [[1.55, 2.3], [covalent_oo, 1.55],
                                                   [covalent_oo, 1.55]])
    explicit = InpaintingPlan(np.eye(3) * 10.0, np.zeros((2, 3)), ["O", "Si"], ["Si"], 1.0,
                              {"O-Si": 1.55})
    np.testing.assert_allclose(explicit.thresholds(), [[1.0, 1.0]])
