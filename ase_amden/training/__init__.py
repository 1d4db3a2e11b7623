"""Training: batching, losses, EMA, checkpoints, the training loop and its CLI."""

from ase_amden.training.batching import (
    Batch,
    collate,
    collate_for,
    concatenate,
    data_hash,
    element_vocabulary,
)
from ase_amden.training.checkpoint import (
    LoadedCheckpoint,
    export_for_shipping,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from ase_amden.training.cli import add_train_parser
from ase_amden.training.ema import ExponentialMovingAverage
from ase_amden.training.loss import (
    LossTerms,
    TimeSampling,
    denoising_loss,
    flow_matching_loss,
    objective_loss,
    shortcut_loss,
)
from ase_amden.training.ranking import RankingPairs, find_exploits, ranking_loss, relaxed_pairs
from ase_amden.training.trainer import TrainConfig, Trainer, train

__all__ = [
    "Batch",
    "ExponentialMovingAverage",
    "LoadedCheckpoint",
    "LossTerms",
    "RankingPairs",
    "TimeSampling",
    "TrainConfig",
    "Trainer",
    "add_train_parser",
    "collate",
    "collate_for",
    "concatenate",
    "data_hash",
    "denoising_loss",
    "element_vocabulary",
    "export_for_shipping",
    "find_exploits",
    "flow_matching_loss",
    "load_checkpoint",
    "objective_loss",
    "ranking_loss",
    "read_checkpoint",
    "relaxed_pairs",
    "save_checkpoint",
    "shortcut_loss",
    "train",
]
