import math
from dataclasses import asdict, replace

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.cell import Cell

import ase_amden
import ase_amden.generator as generator_module
from ase_amden.diffusion import ElementSchedule
from ase_amden.errors import (
    AmdenError,
    InvalidStructureError,
    SamplingError,
    UnknownNameError,
)
from ase_amden.generator import AmorphousGenerator
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
from ase_amden.training import save_checkpoint

PROPS = ("shear_modulus", "ring_size")


def _card(**changes):
    config = DenoiserConfig(n_classes=3, property_names=PROPS, hidden=16, n_layers=1,
                            n_vector=2, cutoff=3.0)
    card = ModelCard(
        name="toy-SiO2", elements=["Si", "O"], model_config=asdict(config), rho_max=0.05,
        property_names=list(PROPS), property_units=["GPa", ""], property_mean=[30.0, 6.0],
        property_std=[2.0, 0.5],
        training={"default_n_atoms": 8, "default_number_density": 0.04},
    )
    return replace(card, **changes)


@pytest.fixture
def card():
    return _card()


@pytest.fixture
def model(card):
    torch.manual_seed(0)
    return Denoiser(DenoiserConfig(**card.model_config)).double()


@pytest.fixture
def gen(model, card):
    return AmorphousGenerator(model, card, device="cpu")


@pytest.fixture
def plain_gen(model):
    """The same network, as a model trained without ghosts."""
    return AmorphousGenerator(model, _card(rho_max=None), device="cpu")


FAST = {"steps": 3, "progress": False}


class Recorder(torch.nn.Module):
    """Stand-in with the Denoiser signature that predicts zero noise and records its inputs."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.calls = []

    def forward(self, positions, elements, cell, system_idx, t, properties=None,
                property_mask=None, step_size=None):
        self.calls.append({"n_systems": cell.shape[0], "properties": properties,
                           "mask": property_mask})
        return self.scale * positions, self.scale * elements


class GhostOracle(Recorder):
    """Predicts the exact element noise of a clean channel in which every second node of each
    structure is a ghost; with the deterministic ode sampler these nodes end as ghosts.
    """

    def forward(self, positions, elements, cell, system_idx, t, properties=None,
                property_mask=None, step_size=None):
        super().forward(positions, elements, cell, system_idx, t)
        counts = torch.bincount(system_idx, minlength=cell.shape[0])
        local = torch.arange(len(system_idx)) - (torch.cumsum(counts, 0) - counts)[system_idx]
        target = torch.where(local % 2 == 0, 2, local % 2 - 1)  # ghost, Si, ghost, Si, ...
        clean = torch.nn.functional.one_hot(target, 3).double()
        schedule = ElementSchedule(1.5)
        t_atom = t[system_idx].unsqueeze(-1)
        eps_e = (elements - schedule.alpha(t_atom) * clean) / schedule.sigma(t_atom)
        return torch.zeros_like(positions), eps_e


def test_generate_returns_periodic_atoms_with_info(plain_gen, tmp_path):
    cell = np.diag([6.0, 6.5, 7.0])
    structures = plain_gen.generate(3, cell=cell, n_atoms=10, sampler="ode", seed=1,
                                    targets={"shear_modulus": 32.0}, guidance=0.5,
                                    check="off", **FAST)
    assert len(structures) == 3
    for atoms in structures:
        assert isinstance(atoms, Atoms) and len(atoms) == 10
        assert np.allclose(atoms.cell.array, cell) and atoms.pbc.all()
        assert set(atoms.numbers) <= {8, 14}
        frac = atoms.get_scaled_positions(wrap=False)
        assert (frac >= 0).all() and (frac < 1).all()
        info = {k: v for k, v in atoms.info.items() if k not in ("model_hash", "structure_index")}
        assert info == {"model": "toy-SiO2", "sampler": "ode", "steps": 3, "seed": 1,
                        "target_shear_modulus": 32.0, "guidance": 0.5, "count": 3,
                        "batch_size": 3, "fixed_composition": False,
                        "ase_amden_version": ase_amden.__version__, "crystalline": False,
                        "space_group": "P1", "space_group_number": 1}
    assert not np.allclose(structures[0].positions, structures[1].positions)
    # info survives extended XYZ
    ase.io.write(tmp_path / "out.extxyz", structures)
    back = ase.io.read(tmp_path / "out.extxyz", index=":")
    assert back[2].info["target_shear_modulus"] == 32.0 and back[2].info["seed"] == 1
    assert [a.info["structure_index"] for a in back] == [0, 1, 2]


@pytest.mark.parametrize("make_seed", [lambda: 7, lambda: np.random.default_rng(7),
                                       lambda: torch.Generator().manual_seed(7)],
                         ids=["int", "numpy", "torch"])
def test_same_seed_same_structures(gen, make_seed):
    first = gen.generate(2, cell=7.0, seed=make_seed(), **FAST)
    second = gen.generate(2, cell=7.0, seed=make_seed(), **FAST)
    other = gen.generate(2, cell=7.0, seed=8, **FAST)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.numbers, b.numbers) and np.array_equal(a.positions, b.positions)
        assert a.info["seed"] == b.info["seed"]
    assert not np.array_equal(first[0].positions[:3], other[0].positions[:3])


def test_seed_none_records_a_seed_that_reproduces(gen):
    (atoms,) = gen.generate(cell=7.0, **FAST)
    (again,) = gen.generate(cell=7.0, seed=atoms.info["seed"], **FAST)
    assert isinstance(atoms.info["seed"], int)
    assert np.array_equal(atoms.positions, again.positions)


def test_ghosts_fill_the_cell_and_are_removed(card):
    oracle = GhostOracle()
    gen = AmorphousGenerator(oracle, card, device="cpu")
    structures = gen.generate(2, cell=8.0, sampler="ode", seed=0, **FAST)
    n_nodes = math.floor(0.05 * 8.0**3)  # 25 nodes, 13 of them ghosts
    assert oracle.calls[0]["n_systems"] == 2
    for atoms in structures:
        assert len(atoms) == n_nodes // 2 == 12
        assert set(atoms.numbers) == {14}


def test_ghost_model_decides_the_atom_count(gen):
    for atoms in gen.generate(2, cell=8.0, seed=3, **FAST):
        assert 0 < len(atoms) <= 25 and 0 not in atoms.numbers


@pytest.mark.parametrize(
    ("composition", "n_atoms", "formula"),
    [({"Si": 4, "O": 8}, None, "O8Si4"), ("SiO2", 9, "O6Si3"), ("Si2O3", None, "O3Si2"),
     (["O", "Si", "O"], None, "O2Si")],
)
def test_fixed_composition_is_exact_and_uses_no_ghosts(gen, composition, n_atoms, formula):
    structures = gen.generate(2, cell=8.0, composition=composition, n_atoms=n_atoms, seed=0,
                              **FAST)
    for atoms in structures:
        assert atoms.get_chemical_formula(mode="hill", empirical=False) == formula


@pytest.mark.parametrize(
    "cell",
    [7.0, [7.0, 7.0, 7.0], np.eye(3) * 7.0, Cell(np.eye(3) * 7.0),
     Atoms(cell=np.eye(3) * 7.0, pbc=True)],
    ids=["edge", "lengths", "matrix", "Cell", "Atoms"],
)
def test_cell_forms(plain_gen, cell):
    (atoms,) = plain_gen.generate(cell=cell, n_atoms=4, seed=0, **FAST)
    assert np.allclose(atoms.cell.array, np.eye(3) * 7.0)


def test_cell_from_n_atoms_and_density_and_from_training_defaults(plain_gen, gen):
    (atoms,) = plain_gen.generate(n_atoms=6, density=0.03, seed=0, **FAST)
    assert len(atoms) == 6 and atoms.get_volume() == pytest.approx(200.0)
    (atoms,) = plain_gen.generate(seed=0, **FAST)  # default_n_atoms 8 at 0.04 atoms/Å^3
    assert len(atoms) == 8 and atoms.get_volume() == pytest.approx(200.0)
    (atoms,) = gen.generate(n_atoms=20, density=0.04, seed=0, **FAST)  # ghosts: cell only
    assert atoms.get_volume() == pytest.approx(500.0) and len(atoms) <= 25


def test_batches_go_through_the_network_together(card):
    recorder = Recorder()
    gen = AmorphousGenerator(recorder, card, device="cpu")
    structures = gen.generate(5, cell=6.0, batch_size=2, seed=0, **FAST)
    assert len(structures) == 5
    per_call = [c["n_systems"] for c in recorder.calls]
    assert per_call == [2] * 4 + [2] * 4 + [1] * 4  # steps + 1 calls per batch


def test_targets_are_normalised_and_missing_ones_masked(card):
    recorder = Recorder()
    gen = AmorphousGenerator(recorder, card, device="cpu")
    gen.generate(2, cell=6.0, targets={"shear_modulus": 34.0}, seed=0, **FAST)
    call = recorder.calls[0]
    assert call["n_systems"] == 2
    assert torch.allclose(call["properties"][:, 0], torch.tensor([2.0, 2.0], dtype=torch.float64))
    assert call["mask"].tolist() == [[True, False], [True, False]]
    recorder.calls.clear()
    gen.generate(2, cell=6.0, targets={"ring_size": 5.5}, guidance=1.0, seed=0, **FAST)
    call = recorder.calls[0]
    assert call["n_systems"] == 4  # conditional and unconditional halves
    assert call["mask"].tolist() == [[False, True]] * 2 + [[False, False]] * 2
    assert float(call["properties"][0, 1]) == pytest.approx(-1.0)


def test_the_card_targets_apply_when_the_caller_gives_none():
    recorder = Recorder()
    gen = AmorphousGenerator(recorder, _card(sampling={"targets": {"shear_modulus": 34.0}}),
                             device="cpu")
    (atoms,) = gen.generate(cell=6.0, seed=0, **FAST)
    assert recorder.calls[0]["mask"].tolist() == [[True, False]]
    assert float(recorder.calls[0]["properties"][0, 0]) == pytest.approx(2.0)
    assert atoms.info["target_shear_modulus"] == 34.0  # the provenance records it
    for given, mask in (({}, [[False, False]]), ({"ring_size": 5.5}, [[False, True]])):
        recorder.calls.clear()
        gen.generate(cell=6.0, seed=0, targets=given, **FAST)
        assert recorder.calls[0]["mask"].tolist() == mask  # the caller's, not added to


def test_progress_bar(gen, capsys):
    gen.generate(cell=6.0, steps=2, seed=0, progress=True)
    assert "3/3" in capsys.readouterr().err


def test_device_auto():
    gen = AmorphousGenerator(Recorder(), _card(), device="auto")
    assert gen.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


BAD_INPUTS = [
    ({"targets": {"youngs_modulus": 50.0}}, UnknownNameError,
     r"unknown target property 'youngs_modulus'; valid names are: 'ring_size', 'shear_modulus'"),
    ({"composition": {"Si": 2, "Cu": 1}}, UnknownNameError,
     r"unknown element 'Cu'; valid names are: 'O', 'Si'"),
    ({"cell": [[5, 0, 0], [0, 5, 0], [5, 5, 0]]}, InvalidStructureError, "zero volume"),
    ({"cell": [[5, 0, 0], [0, 5, 0], [0, 0, 0]]}, InvalidStructureError,
     r"not periodic along lattice vector\(s\) \[2\]"),
    ({"cell": Atoms(cell=np.eye(3) * 6, pbc=[True, True, False])}, InvalidStructureError,
     "periodic in all three directions"),
    ({"n_atoms": 10, "density": 0.2}, AmdenError,
     "above the maximum density .* rho_max = 0.05 atoms/Å"),
    ({"cell": 3.0, "composition": {"Si": 4}}, AmdenError, "rho_max = 0.05"),
    ({"steps": 0}, AmdenError, "steps must be a positive integer"),
    ({"count": 0}, AmdenError, "count must be a positive integer"),
    ({"sampler": "euler"}, UnknownNameError, "unknown sampler 'euler'; valid names are: .*'ode'"),
    ({"cell": 6.0, "n_atoms": 5}, AmdenError, "decides the number of atoms itself"),
    ({"composition": "SiO2", "n_atoms": 10}, AmdenError, "multiple of 3"),
    ({"guidance": -1.0}, AmdenError, "guidance"),
    ({"batch_size": 0}, AmdenError, "batch_size"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_INPUTS)
def test_bad_inputs_give_clear_errors(gen, kwargs, error, message):
    kwargs = {"seed": 0, **FAST, **kwargs}
    with pytest.raises(error, match=message):
        gen.generate(**kwargs)


def test_no_cell_and_no_defaults(model):
    gen = AmorphousGenerator(model, _card(training={}), device="cpu")
    with pytest.raises(AmdenError, match="give a cell, or n_atoms and density"):
        gen.generate(**FAST)


def test_sampler_must_fit_the_objective(model):
    gen = AmorphousGenerator(model, _card(objective="flow"), device="cpu")
    with pytest.raises(AmdenError, match="objective 'flow'"):
        gen.generate(cell=6.0, **FAST)


def test_nan_during_sampling_names_the_step(model, card):
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(math.nan)
    gen = AmorphousGenerator(model, card, device="cpu")
    with pytest.raises(SamplingError, match=r"step 1 of 4 \(t = 0\.9900"):
        gen.generate(cell=6.0, seed=0, **FAST)


def test_from_checkpoint_and_pretrained(tmp_path, monkeypatch, gen, model, card):
    path = save_checkpoint(tmp_path / "toy.pt", model, card)
    loaded = AmorphousGenerator.from_checkpoint(path, device="cpu")
    assert loaded.card == card
    expected = gen.generate(cell=7.0, seed=4, **FAST)[0]
    got = loaded.generate(cell=7.0, seed=4, **FAST)[0]
    assert np.array_equal(expected.numbers, got.numbers)
    assert np.allclose(expected.positions, got.positions)

    monkeypatch.setattr(generator_module, "PRETRAINED_DIR", tmp_path)
    assert AmorphousGenerator.available_pretrained() == ["toy"]
    assert AmorphousGenerator.pretrained("toy", device="cpu").card.name == "toy-SiO2"
    with pytest.raises(UnknownNameError, match="unknown pretrained model 'a-Si'.*'toy'"):
        AmorphousGenerator.pretrained("a-Si")
    monkeypatch.setattr(generator_module, "PRETRAINED_DIR", tmp_path / "empty")
    with pytest.raises(UnknownNameError, match="no pretrained models are installed"):
        AmorphousGenerator.pretrained("a-Si")
