"""Negative samples for an energy model: its own exploits, ranked by a true potential.

Denoising score matching teaches an energy model the gradient of its noise energy
``E_hat(x, t)`` near the training glasses, not how it ranks structures away from them.
Descending ``E_hat`` from a real glass can then reach noise energies below the best
training glasses while the true energy does not move (``benchmarks/noise_landscape.py``):
HMC denoising finds such minima. Here they are found and turned into training data:

- :func:`find_exploits` descends ``E_hat`` at a small ``t`` from given glasses (FIRE on
  :class:`~ase_amden.calculators.NoiseEnergyCalculator`), relaxes start and end with a
  true potential, and keeps each descent that lowered ``E_hat`` while the relaxed true
  energy rose as a ranked pair of the relaxed start and the relaxed exploit;
- :func:`relaxed_pairs` makes anchor pairs from data whose order is known (annealed
  against quenched glasses), so that the loss keeps the ranking the model already has;
- :class:`RankingPairs` reads such pairs from a dataset, and :func:`ranking_loss` is a
  logistic (Bradley-Terry) loss on the noise energy per atom of each pair at a small
  ``t``: the member with the lower relaxed true energy should have the lower ``E_hat``.

Training with ``TrainConfig(ranking=path)`` (``ase-amden train --ranking PATH``) adds this
loss to the denoising loss; a new round of exploits from the new weights continues it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.optimize import FIRE
from torch import Tensor
from tqdm.auto import tqdm

from ase_amden.analysis.relax import as_calculator, relax
from ase_amden.errors import DatasetFormatError, InvalidArgumentError
from ase_amden.models.card import ModelCard
from ase_amden.training.batching import Batch

__all__ = [
    "RANK_PAIR",
    "TRUE_ENERGY",
    "RankingPairs",
    "check_ranking_times",
    "find_exploits",
    "ranking_loss",
    "relaxed_pairs",
]

#: ``atoms.info`` key (dataset property) of the pair a structure belongs to.
RANK_PAIR = "rank_pair"
#: ``atoms.info`` key (dataset property) of its relaxed true energy, eV/atom.
TRUE_ENERGY = "true_energy"


def find_exploits(
    calc: Calculator,
    starts: Sequence[Atoms],
    true_calc: Calculator | str,
    *,
    steps: int = 300,
    fmax: float = 0.05,
    true_fmax: float = 0.01,
    min_rise: float = 1e-3,
    first_pair: int = 0,
    progress: bool = True,
) -> list[Atoms]:
    """Descend a noise energy from each start; keep the descents the true energy refuses.

    Parameters
    ----------
    calc
        The landscape to exploit, e.g. ``NoiseEnergyCalculator(model, t=0.05)``.
    starts
        Periodic glasses to start from (e.g. training structures).
    true_calc
        Potential (or its ``ase_amden.potentials`` name) that judges the structures.
    steps, fmax
        FIRE steps and force tolerance of the descent on ``calc`` (its units).
    true_fmax
        Force tolerance of the true relaxations, eV/Å.
    min_rise
        A descent is an exploit when ``E_hat`` fell and the relaxed true energy rose by
        more than this, eV/atom.
    first_pair
        Number of the first pair (to append to earlier rounds).
    progress
        Show a progress bar.

    Returns
    -------
    list of ase.Atoms
        Two structures per exploit, the start then the exploit, each relaxed with the
        true potential (its inherent structure: the pair differs in structure, not in
        thermal noise, which the noise energy rightly ranks), with ``info`` ``rank_pair``
        and ``true_energy`` (eV/atom).

    """
    if steps < 1 or fmax <= 0 or true_fmax <= 0 or min_rise < 0:
        raise InvalidArgumentError(
            f"need steps >= 1, fmax > 0, true_fmax > 0 and min_rise >= 0; got steps={steps}, "
            f"fmax={fmax}, true_fmax={true_fmax}, min_rise={min_rise}")
    pairs: list[Atoms] = []
    true_calc = as_calculator(true_calc)
    for start in tqdm(list(starts), desc="exploits", disable=not progress):
        moved = Atoms(start.numbers, start.positions, cell=start.cell, pbc=True)
        moved.calc = calc
        before = moved.get_potential_energy()
        FIRE(moved, logfile=None).run(fmax=fmax, steps=steps)
        if moved.get_potential_energy() >= before:
            continue  # no descent, no exploit: spare the true relaxations
        pair = _relaxed_pair(start, moved, true_calc, first_pair + len(pairs) // 2, true_fmax)
        if pair[1].info[TRUE_ENERGY] > pair[0].info[TRUE_ENERGY] + min_rise:
            pairs += pair
    return pairs


def relaxed_pairs(
    firsts: Sequence[Atoms],
    seconds: Sequence[Atoms],
    true_calc: Calculator | str,
    *,
    true_fmax: float = 0.01,
    first_pair: int = 0,
    progress: bool = True,
) -> list[Atoms]:
    """Pair ``firsts[k]`` with ``seconds[k]``, both relaxed with a true potential.

    Anchors of a ranking set from data whose order is known (e.g. annealed against
    quenched glasses): :class:`RankingPairs` orders each pair by its relaxed true energy.
    Returns two structures per pair, tagged as by :func:`find_exploits`.
    """
    if len(firsts) != len(seconds):
        raise InvalidArgumentError(
            f"relaxed_pairs needs as many firsts as seconds, got {len(firsts)} and "
            f"{len(seconds)}")
    true_calc = as_calculator(true_calc)
    pairs: list[Atoms] = []
    for k in tqdm(range(len(firsts)), desc="pairs", disable=not progress):
        pairs += _relaxed_pair(firsts[k], seconds[k], true_calc, first_pair + k, true_fmax)
    return pairs


def _relaxed_pair(first: Atoms, second: Atoms, true_calc: Calculator, number: int,
                  true_fmax: float) -> list[Atoms]:
    """Both structures relaxed with ``true_calc``, tagged ``rank_pair`` and ``true_energy``."""
    pair = []
    for atoms in (first, second):
        clean = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
        relaxed = relax(clean, true_calc, fmax=true_fmax)
        item = Atoms(relaxed.numbers, relaxed.positions, cell=relaxed.cell, pbc=True)
        item.info = {RANK_PAIR: float(number),
                     TRUE_ENERGY: float(relaxed.get_potential_energy() / len(relaxed))}
        pair.append(item)
    return pair


@dataclass
class RankingPairs:
    """Structure pairs ordered by a true energy: ``better[k]`` should rank below ``worse[k]``.

    Build it with :meth:`from_structures` from structures carrying ``rank_pair`` and
    ``true_energy`` in ``info`` (as :func:`find_exploits` writes them, or a dataset of them).
    """

    better: list[Atoms]
    worse: list[Atoms]

    @classmethod
    def from_structures(cls, structures: Sequence[Atoms]) -> RankingPairs:
        """Group by ``rank_pair``; each group must be two structures of one atom count."""
        groups: dict[float, list[Atoms]] = {}
        for k, atoms in enumerate(structures):
            missing = {RANK_PAIR, TRUE_ENERGY} - set(atoms.info)
            if missing:
                raise DatasetFormatError(
                    f"ranking structure {k} has no {sorted(missing)} in its info; make ranking "
                    "data with ase_amden.training.ranking.find_exploits or relaxed_pairs ("
                    "'ase-amden dataset exploits' or 'dataset pairs')")
            groups.setdefault(float(atoms.info[RANK_PAIR]), []).append(atoms)
        better, worse = [], []
        for number, group in sorted(groups.items()):
            if len(group) != 2 or len(group[0]) != len(group[1]):
                raise DatasetFormatError(
                    f"ranking pair {number:g} has {len(group)} structure(s) of "
                    f"{[len(a) for a in group]} atoms; each pair needs two of the same size")
            low, high = sorted(group, key=lambda a: a.info[TRUE_ENERGY])
            better.append(low)
            worse.append(high)
        if not better:
            raise DatasetFormatError("no ranking pairs: the ranking data is empty")
        return cls(better, worse)

    def __len__(self) -> int:
        return len(self.better)


def check_ranking_times(times: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` of the ranking loss's diffusion times, checked: ``0 < low <= high <= 1``."""
    low, high = times
    if not 0.0 < low <= high <= 1.0:
        raise InvalidArgumentError(
            f"ranking_times must satisfy 0 < low <= high <= 1, got {tuple(times)}")
    return float(low), float(high)


def ranking_loss(
    model: torch.nn.Module,
    better: Batch,
    worse: Batch,
    card: ModelCard,
    *,
    times: tuple[float, float] = (0.02, 0.1),
    generator: torch.Generator,
) -> Tensor:
    """Logistic ranking loss ``mean softplus(e_better - e_worse)`` on ``E_hat`` per atom (kT).

    Each pair is evaluated at one time ``t ~ U(times)``, clean positions and the mean
    element channel ``alpha_e(t)`` one-hot (as :class:`NoiseEnergyCalculator`), properties
    as given with their masks.
    """
    low, high = check_ranking_times(times)
    like = better.positions
    t = low + (high - low) * torch.rand(better.n_systems, generator=generator,
                                        device=like.device, dtype=like.dtype)
    net = getattr(model, "module", model)
    energies = []
    for batch in (better, worse):
        alpha = card.element_schedule().alpha(t)[batch.system_idx].unsqueeze(-1)
        energy = net.energy(batch.positions, alpha * batch.elements, batch.cell,
                            batch.system_idx, t, batch.properties, batch.property_mask,
                            generator=generator)
        counts = torch.bincount(batch.system_idx, minlength=batch.n_systems).to(energy.dtype)
        energies.append(energy / counts)
    return torch.nn.functional.softplus(energies[0] - energies[1]).mean()
