"""Generation speed: wall time per structure, and how it grows with the number of atoms.

1. 256-atom a-Si at 200 sampler steps: seconds per structure generated one at a time
   (batch 1) and ``--batch`` at a time (one batched run), measured side by side.
2. Scaling with atom count (256, 512, 1000, 2000, 4000, 8000 by default): one structure each,
   in a cube at the model's training number density; sizes from ``--large-from`` on run
   ``--large-steps`` steps, so seconds per sampler step (grid interval, the final step to
   t = 0 included) is the comparable number
   and ``s_per_200_steps`` extrapolates it. Peak memory: CUDA's ``max_memory_allocated`` on
   GPU; on CPU the process's peak resident set (``ru_maxrss``, cumulative: sizes run in
   increasing order, so each value is the peak up to that size).

3. Throughput: structures per second at ``--n-atoms`` for each of ``--throughput-steps``
   (1, 5, 200) and ``--throughput-batches`` (1, 8, 32): one ``generate`` call of ``batch``
   structures with ``batch_size=batch`` (one graph and one network call per step for the
   whole batch). Cells with ``steps x batch`` above ``--throughput-max-work`` are left out
   (listed in ``skipped``). Each cell also reports the process CPU seconds per structure
   (time.process_time, all threads), which unlike the wall time does not grow when other
   processes share the cores. The sampler is ``--throughput-sampler`` (default: the card's,
   i.e. ``shortcut`` for a shortcut model; ``ode`` otherwise, whose ``steps`` grid has
   ``steps + 1`` network calls).

Timings use time.perf_counter after one warm-up generation; CPU thread count and device are
reported (torch's default: all cores, unless OMP_NUM_THREADS or ``--threads`` say otherwise).
Writes ``generation_speed.json`` into ``--out``.

Run on the shipped model (from the repository root)::

    python -m benchmarks.generation_speed --model a-Si
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from ase_amden.diffusion import get_sampler
from ase_amden.generator import AmorphousGenerator

from .common import (
    add_common_arguments,
    apply_threads,
    environment,
    fill_defaults,
    format_table,
    load_generators,
    peak_rss_mib,
    reporter,
    synchronize,
    write_json,
)

#: a-Si at 2.33 g/cm^3, atoms/Å^3 (used when the model stores no training density).
A_SI_NUMBER_DENSITY = 0.04996


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, several_models=False)
    parser.add_argument("--n-atoms", type=int, default=None, help="atoms of the batch test (256)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default 200)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 8)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="atom counts of the scaling test (default 256 ... 8000)")
    parser.add_argument("--large-from", type=int, default=None,
                        help="sizes from this on use --large-steps (default 2000)")
    parser.add_argument("--large-steps", type=int, default=None,
                        help="steps for the large sizes (default 20)")
    parser.add_argument("--density", type=float, default=None,
                        help="number density, atoms/Å^3 (default: the model's training value)")
    parser.add_argument("--sampler", default="sde", help="sampler name (default sde)")
    parser.add_argument("--throughput-steps", type=int, nargs="+", default=None,
                        help="step counts of the throughput test (default 1 5 200)")
    parser.add_argument("--throughput-batches", type=int, nargs="+", default=None,
                        help="batch sizes of the throughput test (default 1 8 32)")
    parser.add_argument("--throughput-max-work", type=int, default=None,
                        help="largest steps x batch run in the throughput test (default 2000)")
    parser.add_argument("--throughput-sampler", default=None,
                        help="sampler of the throughput test (default: the card's, else ode)")
    args = parser.parse_args(argv)
    defaults = {"n_atoms": (256, 16), "steps": (200, 3), "batch": (8, 2),
                "sizes": ([256, 512, 1000, 2000, 4000, 8000], [16, 32]),
                "large_from": (2000, 32), "large_steps": (20, 2),
                "throughput_steps": ([1, 5, 200], [1, 2]),
                "throughput_batches": ([1, 8, 32], [1, 2]),
                "throughput_max_work": (2000, 4)}
    fill_defaults(args, defaults)
    return args


def timed_generation(generator: AmorphousGenerator, count: int, n_atoms: int, steps: int,
                     density: float, args, batch_size: int | None = None) -> float:
    """Seconds to generate ``count`` structures of ``n_atoms``."""
    synchronize(generator.device)
    start = time.perf_counter()
    generator.generate(count, n_atoms=n_atoms, density=density, sampler=args.sampler,
                       steps=steps, batch_size=batch_size, seed=args.seed, progress=False)
    synchronize(generator.device)
    return time.perf_counter() - start


def batch_test(generator, density, args) -> dict:
    """Seconds per structure at batch 1 and batched, same size and steps."""
    n, steps, batch = args.n_atoms, args.steps, args.batch
    one = sum(timed_generation(generator, 1, n, steps, density, args) for _ in range(batch))
    batched = timed_generation(generator, batch, n, steps, density, args, batch_size=batch)
    return {
        "n_atoms": n,
        "steps": steps,
        "structures": batch,
        "batch_1_s_per_structure": one / batch,
        "batched_s_per_structure": batched / batch,
        "batch_size": batch,
        "speedup": one / batched,
    }


def throughput_test(generator: AmorphousGenerator, density: float, args) -> dict:
    """Structures per second (wall) and CPU seconds per structure, per steps and batch."""
    sampler = args.throughput_sampler or generator.card.sampling.get("sampler", "ode")
    rows, skipped = [], []
    for steps in args.throughput_steps:
        for batch in args.throughput_batches:
            if steps * batch > args.throughput_max_work:
                skipped.append({"steps": steps, "batch": batch})
                continue
            synchronize(generator.device)
            wall, cpu = time.perf_counter(), time.process_time()
            generator.generate(batch, n_atoms=args.n_atoms, density=density, sampler=sampler,
                               steps=steps, batch_size=batch, seed=args.seed, progress=False)
            synchronize(generator.device)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rows.append({"steps": steps, "batch": batch, "structures_per_s": batch / wall,
                         "wall_s_per_structure": wall / batch,
                         "cpu_s_per_structure": cpu / batch})
    return {"sampler": sampler, "n_atoms": args.n_atoms, "rows": rows, "skipped": skipped}


def scaling_test(generator, density, args) -> list[dict]:
    """One structure per size; seconds per sampler step and peak memory."""
    rows = []
    cuda = generator.device.type == "cuda"
    sampler = get_sampler(args.sampler)
    for n in sorted(args.sizes):
        steps = args.large_steps if n >= args.large_from else args.steps
        if cuda:
            torch.cuda.reset_peak_memory_stats(generator.device)
        seconds = timed_generation(generator, 1, n, steps, density, args)
        calls = len(sampler.time_grid(steps)) - 1  # sampler steps, final step to t = 0 included
        rows.append({
            "n_atoms": n,
            "steps": steps,
            "sampler_steps": calls,
            "seconds": seconds,
            "s_per_step": seconds / calls,
            "s_per_200_steps": seconds / calls * (len(sampler.time_grid(200)) - 1),
            "peak_memory_mib": (torch.cuda.max_memory_allocated(generator.device) / 2**20
                                if cuda else peak_rss_mib()),
            "memory_kind": "cuda_max_allocated" if cuda else "process_peak_rss",
        })
    return rows


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its JSON content."""
    args = parse_args(argv)
    apply_threads(args.threads)
    say = reporter(args.quiet)
    (generator,) = load_generators(args.model, args.checkpoint, args.device)
    density = args.density or generator.card.training.get("default_number_density",
                                                          A_SI_NUMBER_DENSITY)
    timed_generation(generator, 1, args.n_atoms, 1, density, args)  # warm-up
    batch = batch_test(generator, density, args)
    throughput = throughput_test(generator, density, args)
    scaling = scaling_test(generator, density, args)
    data = {
        "benchmark": "generation_speed",
        "model": generator.card.name,
        "environment": environment(generator.device),
        "settings": {k: v for k, v in vars(args).items() if k != "quiet"},
        "number_density": density,
        "batch": batch,
        "throughput": throughput,
        "scaling": scaling,
    }
    path = write_json(args.out, "generation_speed.json", data)
    say(format_table(
        ["n_atoms", "steps", "batch 1 s/struct", f"batch {batch['batch_size']} s/struct",
         "speedup"],
        [[batch["n_atoms"], batch["steps"], batch["batch_1_s_per_structure"],
          batch["batched_s_per_structure"], batch["speedup"]]],
    ))
    say("")
    say(f"throughput, {throughput['n_atoms']} atoms, sampler {throughput['sampler']}:")
    say(format_table(
        ["steps", "batch", "structures/s", "wall s/struct", "CPU s/struct"],
        [[r["steps"], r["batch"], r["structures_per_s"], r["wall_s_per_structure"],
          r["cpu_s_per_structure"]] for r in throughput["rows"]],
    ))
    say("")
    say(format_table(
        ["n_atoms", "steps", "seconds", "s/step", "s/200 steps", "peak MiB"],
        [[r["n_atoms"], r["steps"], r["seconds"], r["s_per_step"], r["s_per_200_steps"],
          r["peak_memory_mib"]] for r in scaling],
    ))
    env = data["environment"]
    say(f"device {env['device']}, torch threads {env['torch_threads']}, "
        f"CPU cores {env['cpu_count']}; wrote {path}")
    return data


if __name__ == "__main__":
    main()
