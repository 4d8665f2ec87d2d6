"""The one sharded, resumable job runner behind the bridge, the test-split generation and
``mogents generate``.

A job is a list of items (clips, batches of a plan, prompts), a ``work`` function that computes
a chunk of them and writes each result atomically (:mod:`hftrainer_mogents.utils.io`), and a
``done`` check. :func:`run_job` keeps this process's shard (item ``i`` goes to shard
``i % num_shards``, :mod:`~hftrainer_mogents.utils.sharding`), leaves out the items already
finished when resuming, feeds the rest to ``work`` in chunks behind a progress bar and returns a
:class:`JobRun` that the job turns into its summary, written by :func:`write_summary`.
:func:`output_problem` is the one check of whether an output file is finished.

It lives in ``utils/`` (above ``errors`` only) so that every job can use it: the test split is
generated from ``evaluation/``, which ``motion/`` and ``cli/`` reach.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from hftrainer_mogents.errors import FolderInUseError
from hftrainer_mogents.utils.io import atomic_write_json, is_temporary
from hftrainer_mogents.utils.sharding import resolve_shard, select_shard, shard_summary_name

__all__ = [
    "LOCK_FILE",
    "JobRun",
    "check_folder_lock",
    "folder_lock",
    "output_problem",
    "remove_temporary_files",
    "run_job",
    "write_summary",
]

LOCK_FILE = ".mogents.lock"

# the first bytes of a finished file of each suffix (a file a killed writer truncated to a few
# bytes, or another file under the name, fails)
_MAGIC: dict[str, tuple[int, bytes]] = {
    ".gif": (0, b"GIF8"),
    ".bvh": (0, b"HIERARCHY"),
    ".glb": (0, b"glTF"),
    ".mp4": (4, b"ftyp"),
}

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class JobRun(Generic[T]):
    """What :func:`run_job` did.

    Attributes:
        items: this shard's items.
        todo: the items given to ``work`` (the others were finished already).
        failures: what ``work`` reported, in order.
        num_shards: processes sharing the job.
        shard_index: this process.
        seconds: time spent in ``work``.
    """

    items: list[T]
    todo: list[T]
    failures: list[dict[str, Any]] = field(default_factory=list)
    num_shards: int = 1
    shard_index: int = 0
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        """Items left out as finished."""
        return len(self.items) - len(self.todo)

    @property
    def shard(self) -> dict[str, int]:
        """``{"num_shards", "shard_index"}``, as the summaries record it."""
        return {"num_shards": self.num_shards, "shard_index": self.shard_index}


def run_job(
    items: Sequence[T],
    work: Callable[[list[T]], Iterable[dict[str, Any]] | None],
    *,
    done: Callable[[T], bool] | None = None,
    skip_existing: bool = False,
    chunk_size: int | None = 1,
    num_shards: int | None = None,
    shard_index: int | None = None,
    progress: bool = False,
    desc: str | None = None,
    unit: str = "it",
) -> JobRun[T]:
    """Run ``work`` over this shard's unfinished items, a chunk at a time.

    Args:
        items: every item of the job, in a fixed order (the shards depend on it).
        work: computes a chunk and writes its outputs; returns the failures of the chunk (dicts
            the job's summary lists) or None. An exception it raises stops the job.
        done: whether an item is finished (with ``skip_existing``); see :func:`output_problem`.
        skip_existing: leave out the items ``done`` accepts.
        chunk_size: items per ``work`` call (None: all in one call).
        num_shards: processes sharing the job (default: torchrun's ``WORLD_SIZE``, else 1).
        shard_index: this process (default: torchrun's ``RANK``, else 0).
        progress: show a progress bar over the items to do.
        desc: the bar's label.
        unit: the bar's unit.

    Returns:
        The :class:`JobRun`.
    """
    from tqdm.auto import tqdm

    n_shards, index = resolve_shard(num_shards, shard_index)
    mine = select_shard(items, n_shards, index)
    todo = [item for item in mine if not (skip_existing and done is not None and done(item))]
    run = JobRun(mine, todo, num_shards=n_shards, shard_index=index)
    size = max(1, len(todo) if chunk_size is None else chunk_size)
    start = time.perf_counter()
    with tqdm(
        total=len(todo), desc=desc, unit=unit, disable=not progress, dynamic_ncols=True
    ) as bar:
        for lo in range(0, len(todo), size):
            chunk = todo[lo : lo + size]
            run.failures += list(work(chunk) or [])
            bar.update(len(chunk))
    run.seconds = time.perf_counter() - start
    return run


def output_problem(
    path: str | os.PathLike[str],
    *,
    key: str | None = None,
    shape: Sequence[int | None] | None = None,
) -> str | None:
    """Why ``path`` is not a finished output, or None when it is one.

    An ``.npy`` (or the array ``key`` of an ``.npz``) must load, hold finite floating-point
    values and no empty axis, and match ``shape`` (None: any size on that axis); an ``.npz``
    without ``key`` must open with every array readable; any other file must not be empty and
    a ``.gif``, ``.bvh``, ``.glb`` or ``.mp4`` must start as one does. A file a killed run left
    half-written fails, so a resumed run does it again.

    Args:
        path: the output file.
        key: the array of an ``.npz`` to check.
        shape: the expected shape, None for any size on an axis.

    Returns:
        ``"missing"``, ``"empty"``, ``"unreadable (...)"``, ``"shape (...), expected (...)"``,
        ``"not finite floating-point values"``, or None.
    """
    path = Path(path)
    if not path.is_file():
        return "missing"
    if path.suffix not in (".npy", ".npz"):
        if path.stat().st_size == 0:
            return "empty"
        offset, magic = _MAGIC.get(path.suffix.lower(), (0, b""))
        with open(path, "rb") as fh:
            head = fh.read(offset + len(magic))
        return None if head[offset:] == magic else f"not a {path.suffix} file (bad header)"
    try:
        if path.suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                if key is None:
                    for name in archive.files:  # every member decompresses (CRC checked)
                        np.asarray(archive[name])
                    return None
                array = np.asarray(archive[key])
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    if shape is not None and (
        array.ndim != len(shape)
        or any(w is not None and n != w for n, w in zip(array.shape, shape))
    ):
        return f"shape {array.shape}, expected {tuple(shape)}"
    if array.size == 0:
        return f"shape {array.shape}, expected {tuple(shape) if shape else 'values'}"
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        return "not finite floating-point values"
    return None


def write_summary(
    folder: str | os.PathLike[str],
    stem: str,
    summary: Mapping[str, Any],
    *,
    num_shards: int = 1,
    shard_index: int = 0,
    sort_keys: bool = True,
) -> Path:
    """Write a job's summary atomically as ``<folder>/<stem>.json`` (``<stem>_s{ii}_of_{nn}.json``
    for one shard of several, so shards sharing a folder keep their own).

    Args:
        folder: the output folder.
        stem: the summary's name without ``.json``.
        summary: JSON-serialisable content.
        num_shards: processes sharing the job.
        shard_index: this process.
        sort_keys: sort the keys (False: keep the summary's order).

    Returns:
        The file written.
    """
    name = shard_summary_name(stem, num_shards, shard_index)
    return atomic_write_json(Path(folder) / name, dict(summary), sort_keys=sort_keys)


def _lock_holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # being written by its run, or damaged: held either way
    return holder if isinstance(holder, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(holder: dict[str, Any] | None) -> bool:
    """A lock of a process of this host that is gone."""
    if holder is None:
        return False
    pid = holder.get("pid")
    return (
        holder.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and pid != os.getpid()
        and not _pid_alive(pid)
    )


def _in_use(folder: Path, holder: dict[str, Any] | None, flag: str) -> FolderInUseError:
    who = (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
        if holder is not None
        else "a run whose lock cannot be read"
    )
    return FolderInUseError(
        f"{flag} {folder} is in use by another run ({who}; lock {folder / LOCK_FILE}): wait for "
        f"it to finish or choose another {flag}; if that run is gone, delete the lock file"
    )


def check_folder_lock(folder: str | os.PathLike[str], *, flag: str = "--out") -> None:
    """Refuse a folder whose lock a live run holds (:func:`folder_lock` takes it); a check
    before anything is loaded, so that a second run fails at once."""
    folder = Path(folder)
    path = folder / LOCK_FILE
    if path.exists():
        holder = _lock_holder(path)
        if not _stale(holder):
            raise _in_use(folder, holder, flag)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], *, flag: str = "--out") -> Iterator[Path]:
    """Hold ``folder``'s lock (an exclusively created ``LOCK_FILE`` holding the pid, host and
    start) for the ``with`` block; it is removed at the end. The stale lock of a dead process of
    this host is taken over with a warning.

    Raises:
        FolderInUseError: another run holds the lock (the message names it).
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(path)
            if not _stale(holder):
                raise _in_use(folder, holder, flag) from None
            logger.warning(
                "taking over the lock of %s left by pid %s (started %s), which is gone",
                folder,
                holder.get("pid") if holder else None,
                holder.get("started") if holder else None,
            )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        break
    else:
        raise _in_use(folder, _lock_holder(path), flag)
    try:
        yield path
    finally:
        if (_lock_holder(path) or {}).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def remove_temporary_files(folder: str | os.PathLike[str]) -> list[str]:
    """Delete the temporary files a killed writer left in ``folder`` (call it holding the
    folder's lock). Returns their names."""
    names = sorted(p.name for p in Path(folder).iterdir() if p.is_file() and is_temporary(p))
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (Path(folder) / name).unlink()
    return names
