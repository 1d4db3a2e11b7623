"""Seconds per training step on the CPU: plain, torch.compile, bf16 autocast, 1 or 2 threads.

Each variant trains the shipped ``a-Si`` network (its card's configuration: hidden 64,
3 layers, cutoff 5 Å, radial basis, channel distances; fresh weights) through
:class:`ase_amden.training.Trainer` for ``--warmup + --steps`` steps on batches of
``--batch-size`` structures of ``--dataset`` (log-normal noise levels, as the shipped model
was trained); the step times are the differences of the trainer's ``elapsed_s`` log, and the
first ``--warmup`` (compilation, caches) are left out. A step twice as fast is twice the
training per CPU-hour.

Writes ``train_step_speed.json`` into ``--out``. From the repository root::

    python -m benchmarks.train_step_speed --steps 20
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ase_amden.data import AmorphousDataset
from ase_amden.generator import AmorphousGenerator
from ase_amden.training import TrainConfig, Trainer

from .common import DEFAULT_OUT, environment, format_table, reporter, write_json

#: name -> (TrainConfig options, torch threads).
VARIANTS = {
    "plain-1": ({}, 1),
    "plain-2": ({}, 2),
    "amp-1": ({"amp": True}, 1),
    "compile-1": ({"compile": True}, 1),
    "compile-2": ({"compile": True}, 2),
}
#: Network options the trainer fills in itself (not overrides).
_SET_BY_TRAINER = ("n_classes", "property_names", "shortcut", "energy", "sigma_x_max")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="a-Si", help="shipped model whose network is timed")
    parser.add_argument("--dataset", default="datasets/a-Si-anneal.h5", help="training data")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--batch-size", type=int, default=4, help="structures per step")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the JSON")
    parser.add_argument("--quick", action="store_true", help="2 timed steps, tiny network")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    args.steps = args.steps or (2 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    return args


def network_options(model: str, quick: bool) -> dict:
    """The model's network configuration as trainer overrides (tiny in quick mode)."""
    config = AmorphousGenerator.pretrained(model, device="cpu").card.model_config
    options = {k: v for k, v in config.items() if k not in _SET_BY_TRAINER}
    if quick:
        options.update(hidden=8, n_layers=1)
    return options


def time_variant(structures, options: dict, threads: int, network: dict, args) -> dict:
    """Median and spread of the step times of one variant, s."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = TrainConfig(
                out_dir=folder, max_steps=args.warmup + args.steps, batch_size=args.batch_size,
                log_every=1, checkpoint_every=10**9, device="cpu", property_names=[],
                model=network, time_sampling="lognormal", **options)
            start = time.perf_counter()
            Trainer(structures, config, "speed").run(resume=False, verbose=False)
            total = time.perf_counter() - start
            with open(Path(folder) / "log.csv") as handle:
                elapsed = [float(row["elapsed_s"]) for row in csv.DictReader(handle)]
    finally:
        torch.set_num_threads(previous)
    steps = np.diff([0.0, *elapsed])[args.warmup:]
    return {"options": options, "threads": threads, "median_s": float(np.median(steps)),
            "min_s": float(steps.min()), "max_s": float(steps.max()),
            "warmup_s": float(elapsed[args.warmup - 1]) if args.warmup else 0.0,
            "total_s": total, "timed_steps": int(steps.size)}


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    say = reporter(args.quiet)
    dataset = AmorphousDataset(args.dataset)
    train_rows = dataset.split_indices("train")[: 2 * args.batch_size]
    structures = [dataset[int(i)] for i in train_rows]
    network = network_options(args.model, args.quick)
    results = {}
    for name in args.variants:
        options, threads = VARIANTS[name]
        results[name] = time_variant(structures, options, threads, network, args)
        say(f"{name}: {results[name]['median_s']:.3g} s per step")
    base = results.get("plain-1", next(iter(results.values())))["median_s"]
    for entry in results.values():
        entry["speedup_vs_plain_1"] = base / entry["median_s"]
    data = {"benchmark": "train_step_speed", "model": args.model, "network": network,
            "n_atoms": len(structures[0]), "batch_size": args.batch_size,
            "environment": environment("cpu"),
            "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
            "variants": results}
    path = write_json(args.out, "train_step_speed.json", data)
    say(format_table(["variant", "threads", "s/step (median)", "min", "max", "warm-up s",
                      "speed-up"],
                     [[n, r["threads"], r["median_s"], r["min_s"], r["max_s"], r["warmup_s"],
                       r["speedup_vs_plain_1"]] for n, r in results.items()]))
    say(f"wrote {path}")
    return data


if __name__ == "__main__":
    main()
