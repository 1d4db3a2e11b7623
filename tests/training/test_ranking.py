"""Ranking an energy model by a true potential: exploits, pairs, loss, training, CLI."""

import argparse
from dataclasses import asdict

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes

from ase_amden.cli.dataset import add_dataset_parser
from ase_amden.data import AmorphousDataset
from ase_amden.errors import AmdenError, DatasetFormatError, InvalidArgumentError
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
from ase_amden.potentials import get_calculator
from ase_amden.training import (
    RankingPairs,
    Trainer,
    collate,
    find_exploits,
    ranking_loss,
    read_checkpoint,
    relaxed_pairs,
)
from ase_amden.training.ranking import RANK_PAIR, TRUE_ENERGY

SW_DIAMOND = -4.3366  # eV/atom, Stillinger-Weber diamond Si at a = 5.431 Å


class _Spring(Calculator):
    """A stand-in landscape: harmonic wells pulling every atom to ``target`` positions."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, target: np.ndarray, k: float = 5.0):
        super().__init__()
        self.target, self.k = target, k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        shift = self.atoms.positions - self.target
        self.results["energy"] = 0.5 * self.k * float((shift**2).sum())
        self.results["forces"] = -self.k * shift


def _diamond():
    return bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)


def test_a_landscape_that_pulls_away_from_the_crystal_is_an_exploit_ranked_by_sw():
    crystal = _diamond()
    # The wrong landscape's minimum: the crystal rattled by 0.7 Å, which SW relaxes to a
    # disordered minimum far above the crystal (about -4.01 eV/atom).
    wrong = crystal.copy()
    wrong.rattle(0.7, seed=1)
    target = wrong.positions
    pairs = find_exploits(_Spring(target), [crystal], "sw-si", steps=400, first_pair=3,
                          progress=False)
    assert len(pairs) == 2
    start, exploit = pairs
    assert start.info[RANK_PAIR] == exploit.info[RANK_PAIR] == 3.0
    assert start.info[TRUE_ENERGY] == pytest.approx(SW_DIAMOND, abs=2e-4)
    assert exploit.info[TRUE_ENERGY] > SW_DIAMOND + 0.1
    # Both are stored relaxed with SW: the crystal as it was, the exploit as the defect
    # structure the wrong minimum relaxes to.
    np.testing.assert_allclose(start.positions, crystal.positions, atol=1e-3)
    exploit.calc = get_calculator("sw-si")
    assert exploit.get_potential_energy() / len(exploit) == pytest.approx(
        exploit.info[TRUE_ENERGY], abs=1e-6)
    assert np.abs(exploit.get_forces()).max() < 0.02
    ranked = RankingPairs.from_structures(pairs)
    assert ranked.better[0] is start and ranked.worse[0] is exploit


def test_a_landscape_whose_minimum_is_the_start_gives_no_exploit():
    crystal = _diamond()
    assert find_exploits(_Spring(crystal.positions.copy()), [crystal], "sw-si",
                         steps=50, progress=False) == []


def test_find_exploits_refuses_bad_settings():
    with pytest.raises(InvalidArgumentError, match="min_rise"):
        find_exploits(_Spring(np.zeros((1, 3))), [], "sw-si", min_rise=-1.0)


def _tagged(atoms, pair, energy):
    atoms = atoms.copy()
    atoms.info = {RANK_PAIR: float(pair), TRUE_ENERGY: float(energy)}
    return atoms


def test_pairs_are_ordered_by_true_energy_and_malformed_pairs_are_named(make_structures):
    a, b, c = make_structures(3)
    pairs = RankingPairs.from_structures([_tagged(a, 0, -4.0), _tagged(b, 0, -4.1)])
    assert pairs.better[0].info[TRUE_ENERGY] == -4.1
    assert pairs.worse[0].info[TRUE_ENERGY] == -4.0 and len(pairs) == 1
    with pytest.raises(DatasetFormatError, match="pair 0 has 3"):
        RankingPairs.from_structures([_tagged(x, 0, 0.0) for x in (a, b, c)])
    with pytest.raises(DatasetFormatError, match="has no .'rank_pair', 'true_energy'."):
        RankingPairs.from_structures([a])
    with pytest.raises(DatasetFormatError, match="empty"):
        RankingPairs.from_structures([])


def _energy_model(tiny_model):
    torch.manual_seed(0)
    config = DenoiserConfig(n_classes=3, property_names=("g",), energy=True, **tiny_model)
    card = ModelCard(name="t", elements=["O", "Si"], model_config=asdict(config),
                     property_names=["g"], property_mean=[30.0], property_std=[5.0],
                     energy=True)
    return Denoiser(config).double(), card


def _batch(structures, card):
    return collate(structures, card.elements, ["g"], [30.0], [5.0]).to("cpu", torch.float64)


def test_ranking_loss_is_the_logistic_loss_of_the_energies_per_atom_and_trains(
        make_structures, tiny_model):
    model, card = _energy_model(tiny_model)
    good, bad = make_structures(2, n_atoms=6, seed=4), make_structures(2, n_atoms=6, seed=5)
    better, worse = _batch(good, card), _batch(bad, card)
    loss = float(ranking_loss(model, better, worse, card, times=(0.05, 0.05),
                              generator=torch.Generator().manual_seed(0)).detach())
    t = torch.full((2,), 0.05, dtype=torch.float64)
    alpha = float(card.element_schedule().alpha(0.05))

    def per_atom(batch):
        energy = model.energy(batch.positions, alpha * batch.elements, batch.cell,
                              batch.system_idx, t, batch.properties, batch.property_mask,
                              generator=torch.Generator().manual_seed(0))
        return energy / 6

    expected = torch.nn.functional.softplus(per_atom(better) - per_atom(worse)).mean()
    assert loss == pytest.approx(float(expected.detach()), rel=1e-6)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(30):
        optimizer.zero_grad()
        ranking_loss(model, better, worse, card, generator=torch.Generator().manual_seed(step)
                     ).backward()
        optimizer.step()
    after = float(ranking_loss(model, better, worse, card, times=(0.05, 0.05),
                               generator=torch.Generator().manual_seed(0)).detach())
    assert after < 0.5 * loss
    assert float((per_atom(better) < per_atom(worse)).all())


def _pairs_file(tmp_path, make_structures):
    good, bad = make_structures(2, n_atoms=6, seed=7), make_structures(2, n_atoms=6, seed=8)
    items = []
    for k, (g, b) in enumerate(zip(good, bad, strict=True)):
        items += [_tagged(g, k, -4.2), _tagged(b, k, -4.0)]
    path = tmp_path / "pairs.h5"
    AmorphousDataset.write(path, items, units={TRUE_ENERGY: "eV/atom"})
    return path


def test_training_with_ranking_pairs_ranks_them(tmp_path, structures, make_structures,
                                                tiny_config):
    path = _pairs_file(tmp_path, make_structures)
    config = tiny_config(energy=True, ranking=str(path), ranking_weight=20.0,
                         ranking_pairs=2, max_steps=25, lr=1e-2)
    trainer = Trainer(structures, config, "ranked")
    pairs = RankingPairs.from_structures(AmorphousDataset(path))

    def loss(model):
        return float(ranking_loss(model, _batch(pairs.better, trainer.card),
                                  _batch(pairs.worse, trainer.card), trainer.card,
                                  times=(0.05, 0.05), generator=torch.Generator().manual_seed(0)
                                  ).detach())

    torch.manual_seed(config.seed)
    untrained = Denoiser(DenoiserConfig(**trainer.card.model_config)).double()
    trainer.run(verbose=False)
    trained = trainer.model.double()
    assert loss(trained) < 0.5 * loss(untrained)


def test_train_cli_passes_the_ranking_options(tmp_path, make_structures, train_cli):
    path = _pairs_file(tmp_path, make_structures)
    saved = read_checkpoint(train_cli(
        "--name", "ranked", "--out", str(tmp_path / "cli"), "--energy", "--max-steps", "2",
        "--batch-size", "2", "--hidden", "8", "--layers", "1", "--device", "cpu", "--quiet",
        "--ranking", str(path), "--ranking-weight", "3", "--ranking-pairs", "1",
    ))
    config = saved["card"]["training"]["config"]
    assert (config["ranking"], config["ranking_weight"], config["ranking_pairs"]) == (
        str(path), 3.0, 1)


def test_ranking_is_only_for_energy_models_and_checks_its_settings(tiny_config):
    with pytest.raises(InvalidArgumentError, match="energy model"):
        tiny_config(ranking="pairs.h5")
    with pytest.raises(InvalidArgumentError, match="ranking_pairs"):
        tiny_config(energy=True, ranking_pairs=0)
    with pytest.raises(InvalidArgumentError, match="ranking_times"):
        tiny_config(energy=True, ranking_times=(0.2, 0.1))


def _dataset_cli(*argv):
    parser = argparse.ArgumentParser(prog="ase-amden")
    add_dataset_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dataset", *argv])
    return args.handler(args)


def test_exploits_cli_writes_and_appends_ranked_pairs(tmp_path):
    # The shipped a-Si-energy descended from the first training quench glass: its noise
    # energy falls while the relaxed SW energy rises by about 0.009 eV/atom.
    out = tmp_path / "pairs.h5"
    common = ["exploits", "a-Si-energy", "datasets/a-Si-quench.h5", "--potential", "sw-si",
              "--output", str(out), "--steps", "100", "--count", "1", "--quiet"]
    assert _dataset_cli(*common) == 0
    assert _dataset_cli(*common) == 0  # the same start again: appended as pair 1
    written = AmorphousDataset(out)
    assert written.protocol["kind"] == "ranking pairs" and written.property_units[
        TRUE_ENERGY] == "eV/atom"
    assert [a.info[RANK_PAIR] for a in written] == [0.0, 0.0, 1.0, 1.0]
    pairs = RankingPairs.from_structures(written)
    for better, worse in zip(pairs.better, pairs.worse, strict=True):
        assert -4.08 < better.info[TRUE_ENERGY] < -4.06  # a relaxed SW quench glass
        assert worse.info[TRUE_ENERGY] > better.info[TRUE_ENERGY] + 1e-3
    with pytest.raises(AmdenError, match="--first"):
        _dataset_cli(*common, "--first", "-1")


def test_relaxed_pairs_of_data_rank_the_crystal_below_a_disordered_cell():
    crystal = _diamond()
    disordered = crystal.copy()
    disordered.rattle(0.7, seed=1)
    pairs = RankingPairs.from_structures(
        relaxed_pairs([disordered], [crystal], "sw-si", progress=False))
    assert pairs.better[0].info[TRUE_ENERGY] == pytest.approx(SW_DIAMOND, abs=2e-4)
    assert pairs.worse[0].info[TRUE_ENERGY] > SW_DIAMOND + 0.1
    with pytest.raises(InvalidArgumentError, match="as many firsts as seconds"):
        relaxed_pairs([crystal], [], "sw-si")


def test_pairs_cli_appends_relaxed_pairs_of_two_datasets(tmp_path):
    crystal = _diamond()
    disordered = crystal.copy()
    disordered.rattle(0.7, seed=1)
    paths = []
    for name, atoms in (("good", crystal), ("bad", disordered)):
        paths.append(str(tmp_path / f"{name}.h5"))
        AmorphousDataset.write(paths[-1], [atoms], held_out_mask=[False])
    out = tmp_path / "anchors.h5"
    command = ["pairs", *paths, "--potential", "sw-si", "--output", str(out), "--quiet"]
    assert _dataset_cli(*command) == 0
    assert _dataset_cli(*command) == 0
    written = AmorphousDataset(out)
    assert [a.info[RANK_PAIR] for a in written] == [0.0, 0.0, 1.0, 1.0]
    assert written.protocol["data"] == paths
    energies = [a.info[TRUE_ENERGY] for a in written]
    assert energies[0] == pytest.approx(SW_DIAMOND, abs=2e-4) and energies[1] > -4.2
