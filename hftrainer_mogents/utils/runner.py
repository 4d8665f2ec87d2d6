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

import logging
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from hftrainer_mogents.utils.io import atomic_write_json
from hftrainer_mogents.utils.sharding import resolve_shard, select_shard, shard_summary_name

__all__ = ["JobRun", "output_problem", "run_job", "write_summary"]

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
    without ``key`` must open; any other file must not be empty. A file a killed run left
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
        return None if path.stat().st_size > 0 else "empty"
    try:
        if path.suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                if key is None:
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
