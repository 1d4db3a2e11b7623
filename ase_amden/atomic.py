"""Crash-safe file replacement, shared by datasets and checkpoints."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from glob import escape as glob_escape
from pathlib import Path


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, backup: str | os.PathLike | None = None,
                 keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Write the whole file to the yielded path. When the block ends without an
    exception the file is flushed to disk, given the usual permissions
    (``0o666`` less the umask) and moved over ``path`` with :func:`os.replace`;
    an exception or interrupt removes it and leaves ``path`` as it was. The temporary
    file is hidden, ``.<name>.<pid>.<random>.tmp``; one left by a killed process is
    removed by :func:`remove_stale_tmp` (called here, before writing). With
    ``keep_suffix`` it ends in ``.tmp<suffix of path>`` instead, for writers that
    choose the format from the extension (ASE databases).

    With ``backup``, an existing ``path`` is first hard-linked (or copied) there, so the
    previous version survives (e.g. ``last.pt.bak``) and ``path`` itself never goes
    missing.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "x.txt")
    >>> with atomic_write(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(target).read()
    'done'

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, name = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}.", suffix=suffix,
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if backup is not None and path.exists():
            _keep_copy(path, Path(backup))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _keep_copy(path: Path, backup: Path) -> None:
    backup.unlink(missing_ok=True)
    try:
        os.link(path, backup)
    except OSError:  # file systems without hard links
        shutil.copy2(path, backup)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_tmp(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writers of ``path`` left beside it.

    Only files named by :func:`atomic_write` for ``path`` whose writing process no
    longer runs are removed (a concurrent writer's file is kept). Returns those removed.
    """
    path = Path(path)
    prefix = _tmp_prefix(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f"{glob_escape(prefix)}*.tmp*"):  # with writers' side files
        pid_text = tmp.name[len(prefix):].split(".", 1)[0]
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (best effort: some platforms cannot open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
