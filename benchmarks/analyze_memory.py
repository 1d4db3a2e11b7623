"""Peak memory and wall time of ``ase-amden analyze`` on a set against a reference.

Runs the command in a child process (its peak resident set is the child's own
``ru_maxrss`` from ``os.wait4``), once per QUESTS entropy batch size, and writes
``analyze_memory.json`` into ``--out``. The issue's aim: 64 x 256-atom structures under 1.5 GB.

Run from the repository root::

    python -m benchmarks.analyze_memory datasets/a-Si-anneal.h5 \\
        --reference datasets/a-Si-quench.h5 --split all --batch-sizes 1000 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from .common import format_table, plain, reporter, write_json

__all__ = ["main"]


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one ``ase-amden`` child process."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "ase_amden", *argv],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"ase-amden {' '.join(argv)} failed: {child.stderr.read().decode()}")
    child.stderr.close()
    return wall, usage.ru_maxrss / 1024.0


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; return (and write) its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="structures to analyse (.h5 or any ase.io file)")
    parser.add_argument("--reference", default=None, help="reference structures")
    parser.add_argument("--split", default=None, help="split of an .h5 reference")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1000],
                        help="QUESTS entropy batch sizes to measure")
    parser.add_argument("--plot", action="store_true", help="also draw the PNG report")
    parser.add_argument("--out", default="benchmarks/results", help="folder of the JSON")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    say = reporter(args.quiet)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch_size in args.batch_sizes:
            command = ["analyze", args.file, "--quiet", "--entropy-batch-size", str(batch_size)]
            if args.reference:
                command += ["--reference", args.reference]
            if args.split:
                command += ["--split", args.split]
            if args.plot:
                command += ["--plot", os.path.join(tmp, "report.png")]
            wall, peak = _run(command)
            rows.append({"entropy_batch_size": batch_size, "wall_s": wall, "peak_rss_mib": peak})
    data = {"benchmark": "analyze_memory", "settings": vars(args), "runs": rows}
    write_json(args.out, "analyze_memory.json", plain(data))
    say(format_table(["entropy batch", "wall (s)", "peak RSS (MiB)"],
                     [[r["entropy_batch_size"], r["wall_s"], r["peak_rss_mib"]] for r in rows]))
    return data


if __name__ == "__main__":
    main()
