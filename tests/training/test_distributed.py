import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from ase import Atoms

from ase_amden.data import AmorphousDataset
from ase_amden.training import read_checkpoint
from ase_amden.training.ranking import RANK_PAIR, TRUE_ENERGY

WORKER = """
import sys, os
import numpy as np
import torch
from ase import Atoms
from ase_amden.training import TrainConfig, Trainer

out = sys.argv[1]
rng = np.random.default_rng(0)
structures = []
for _ in range(4):
    atoms = Atoms(numbers=rng.choice([8, 14], 5), positions=rng.random((5, 3)) * 4.0,
                  cell=np.eye(3) * 4.0, pbc=True)
    atoms.info["g"] = float(rng.normal())
    structures.append(atoms)
extra = dict(self_condition=True, channel_distances=True) if sys.argv[2] == "sc" else {}
variant = dict(energy=True, ranking=sys.argv[3]) if sys.argv[2] == "ranking" else dict(ghosts=True)
config = TrainConfig(out_dir=out, max_steps=3, batch_size=1, device="cpu",
                     property_names=["g"], model=dict(hidden=8, n_layers=1, n_vector=2,
                     cutoff=3.0, time_dim=4, property_dim=4, **extra), **variant)
trainer = Trainer(structures, config, "ddp")
trainer.run(verbose=False)
rank = os.environ["RANK"]
torch.save(trainer.model.state_dict(), os.path.join(out, f"weights_rank{rank}.pt"))
"""


def _ranking_pairs(path):
    rng = np.random.default_rng(1)
    items = []
    for k in range(4):
        atoms = Atoms(numbers=rng.choice([8, 14], 5), positions=rng.random((5, 3)) * 4.0,
                      cell=np.eye(3) * 4.0, pbc=True)
        atoms.info = {RANK_PAIR: float(k // 2), TRUE_ENERGY: float(k % 2)}
        items.append(atoms)
    AmorphousDataset.write(path, items)


@pytest.mark.parametrize("variant", ["plain", "sc", "ranking"],
                         ids=["plain", "self-conditioning", "energy-ranking"])
def test_torchrun_two_ranks_end_with_identical_weights(tmp_path, variant):
    """Also with self-conditioning, whose estimate each rank draws on its own steps, and
    with the ranking loss of an energy model, whose pairs each rank draws on its own."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    out = tmp_path / "run"
    pairs = tmp_path / "pairs.h5"
    _ranking_pairs(pairs)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(out), variant, str(pairs)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = torch.load(out / "weights_rank0.pt", weights_only=True)
    rank1 = torch.load(out / "weights_rank1.pt", weights_only=True)
    checkpoint = read_checkpoint(out / "last.pt")
    assert checkpoint["step"] == 3
    assert (checkpoint["card"]["rho_max"] is None) == (variant == "ranking")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
        assert torch.equal(rank0[key], checkpoint["model"][key]), key
    # only rank 0 wrote files besides the weight dumps
    assert sorted(p.name for p in out.iterdir()) == [
        "last.pt", "log.csv", "weights_rank0.pt", "weights_rank1.pt"]
