"""Make a melt-quench dataset: samples run in parallel on Dask, saved as they finish.

Each finished sample is first written to a journal file (``<output>.journal/``)
and then merged into the dataset, which is rewritten atomically. An interrupted
run therefore never loses a finished sample nor leaves a damaged file, and a
rerun with the same arguments makes only the samples that are missing.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Callable

from ase import Atoms
from tqdm.auto import tqdm

from ..errors import DatasetFormatError, InvalidArgumentError
from .dataset import AmorphousDataset
from .meltquench import PROPERTY_UNITS, Sample, run_protocol
from .protocols import Protocol, get_protocol


def _sample_atoms(sample: Sample) -> Atoms:
    atoms = sample.atoms.copy()
    atoms.info = {**sample.properties, **sample.arrays, "sample_index": sample.index}
    return atoms


def _run_one(protocol: dict, index: int) -> Atoms:
    """Dask task: run one sample in a worker process (plain data in and out)."""
    return _sample_atoms(run_protocol(Protocol.from_dict(protocol), index))


def _journal_dir(output: str) -> str:
    return os.fspath(output) + ".journal"


def _existing(output: str, protocol: Protocol) -> dict[int, Atoms]:
    """Samples already made: those in the dataset and those left in its journal."""
    done: dict[int, Atoms] = {}
    if os.path.exists(output):
        ds = AmorphousDataset(output)
        if ds.protocol and Protocol.from_dict(ds.protocol) != protocol:
            raise DatasetFormatError(
                f"{output} was made with protocol {ds.protocol.get('name')!r} and other "
                f"settings than {protocol.name!r}; choose another --output to start a new dataset"
            )
        done.update({int(a.info["sample_index"]): a for a in ds})
    for path in sorted(glob.glob(os.path.join(_journal_dir(output), "*.h5"))):
        try:
            atoms = AmorphousDataset(path)[0]
        except (DatasetFormatError, FileNotFoundError, IndexError):
            os.remove(path)  # never completed; the sample is made again
            continue
        done.setdefault(int(atoms.info["sample_index"]), atoms)
    return done


def _save(output: str, protocol: Protocol, done: dict[int, Atoms]) -> None:
    images = [done[i] for i in sorted(done)]
    AmorphousDataset.write(output, images, units=PROPERTY_UNITS, protocol=protocol.to_dict())


def make_dataset(
    protocol: str | Protocol,
    count: int,
    output: str,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    verbose: bool = True,
    on_sample: Callable[[Atoms], None] | None = None,
) -> AmorphousDataset:
    """Run a protocol until ``output`` holds samples ``0..count-1``.

    Parameters
    ----------
    protocol
        A :class:`Protocol` or a registered name (see ``ase_amden.data.PROTOCOLS``).
    count
        Total number of samples wanted in the file (those present are kept).
    output
        HDF5 dataset path; created, or extended when it exists.
    workers
        Worker processes of the local Dask cluster (ignored with ``scheduler``).
        With 1 the worker runs inside this process; with more, a script that calls
        this must guard its body with ``if __name__ == "__main__":`` (worker
        processes are spawned and import the script, as with :mod:`multiprocessing`).
    scheduler
        Address of a running Dask scheduler (e.g. ``"tcp://host:8786"``) to fan
        out over a cluster instead of a local one.
    verbose
        Show a progress bar.
    on_sample
        Called with each finished sample after it is saved.

    """
    if count < 1:
        raise InvalidArgumentError(f"count must be at least 1, got {count}")
    if workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, got {workers}")
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    output = os.fspath(output)
    done = _existing(output, protocol)
    todo = [i for i in range(count) if i not in done]
    if done:  # merges what an interrupted run left in the journal
        _save(output, protocol, done)
        shutil.rmtree(_journal_dir(output), ignore_errors=True)
    if not todo:
        return AmorphousDataset(output)

    from dask.distributed import Client, LocalCluster, as_completed

    journal = _journal_dir(output)
    os.makedirs(journal, exist_ok=True)
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=workers > 1,
            dashboard_address=":0",
        )
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        futures = client.map(_run_one, [protocol.to_dict()] * len(todo), todo, pure=False)
        bar = tqdm(total=count, initial=len(done), desc=protocol.name, disable=not verbose)
        for future in as_completed(futures):
            atoms = future.result()
            index = int(atoms.info["sample_index"])
            entry = os.path.join(journal, f"{index:08d}.h5")
            AmorphousDataset.write(entry, [atoms], units=PROPERTY_UNITS,
                                   protocol=protocol.to_dict())
            done[index] = atoms
            _save(output, protocol, done)
            os.remove(entry)  # merged: the dataset now holds it
            bar.update(1)
            if on_sample is not None:
                on_sample(atoms)
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    shutil.rmtree(journal, ignore_errors=True)
    return AmorphousDataset(output)
