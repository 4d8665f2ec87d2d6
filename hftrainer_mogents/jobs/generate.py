"""A generation run written to a folder: the one library call behind ``mogents generate``,
``mogents edit`` and ``mogents generate --sequence`` (:func:`generate_run`: the pipeline's call,
the writers of :mod:`hftrainer_mogents.exports`, ``run.json``), on the job runner
(:func:`~hftrainer_mogents.utils.runner.run_job`), and the folder's rules: what an earlier run
leaves (:func:`prepare_output_dir`) and which of its items are finished
(:func:`finished_items`)."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hftrainer_mogents.errors import InvalidInputError, OutputWriteError
from hftrainer_mogents.exports import file_names, save_motion
from hftrainer_mogents.utils.io import is_temporary
from hftrainer_mogents.utils.runner import (
    LOCK_FILE,
    JobRun,
    check_folder_lock,
    folder_lock,
    output_problem,
    remove_temporary_files,
    run_job,
    write_summary,
)

if TYPE_CHECKING:
    from hftrainer_mogents.motion.smpl135 import SMPLModel
    from hftrainer_mogents.pipeline import MoGenTSPipeline

__all__ = [
    "RUN_FILE",
    "ModelSource",
    "RunItem",
    "generate_run",
    "sequence_producer",
    "slugify",
    "read_prompt_file",
    "prepare_output_dir",
    "finished_items",
    "run_header",
]

RUN_FILE = "run.json"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """The pipeline a run loads and how it runs (the ``--model ... --dtype`` flags)."""

    model: str
    revision: str | None = None
    local_files_only: bool = False
    device: str | None = None
    dtype: str = "float32"

    def load(self) -> MoGenTSPipeline:
        """The pipeline, ready to run (on the CPU, with the process's freed memory kept)."""
        from hftrainer_mogents.pipeline import MoGenTSPipeline
        from hftrainer_mogents.utils.memory import keep_freed_memory

        pipe = MoGenTSPipeline.from_pretrained(
            self.model,
            revision=self.revision,
            local_files_only=self.local_files_only,
            device=self.device,
            dtype=self.dtype,
        )
        if pipe.device.type == "cpu":
            keep_freed_memory()  # this process is ours: spare the page faults of every forward
        return pipe


@dataclass(frozen=True)
class RunItem:
    """One motion of a run: its index, its text (the animation's title) and its file stem."""

    index: int
    text: str
    stem: str


# the motions of the items given (in their order) and the run.json entries the call adds
Produce = Callable[["MoGenTSPipeline", list[RunItem]], tuple[Sequence[np.ndarray], dict[str, Any]]]


def sequence_producer(
    texts: Sequence[str],
    lengths: Sequence[int],
    *,
    transition: int,
    seed: int,
    generation_config: Any,
) -> Produce:
    """The produce step of a one-motion run chaining ``texts`` (``pipe.generate_long``), for
    :func:`generate_run`: its ``run.json`` entries are the settings and the sequence plan.

    Args:
        texts: the segments' prompts.
        lengths: their frame counts (or None entries, as ``generate_long`` takes).
        transition: frames regenerated at each junction.
        seed: the seed.
        generation_config: the sampling settings.
    """

    def produce(pipe: MoGenTSPipeline, todo: list[RunItem]) -> tuple[list[Any], dict[str, Any]]:
        result = pipe.generate_long(
            list(texts),
            list(lengths),
            transition=transition,
            seed=seed,
            generation_config=generation_config,
        )
        return result.motions, {
            "settings": result.settings,
            "sequence": result.settings["sequence"],
        }

    return produce


# the expected shape of a format's array, by the item's frame count
_SHAPES: dict[str, Callable[[int], tuple[int, ...]]] = {
    "npy": lambda frames: (frames, 263),
    "joints": lambda frames: (frames, 22, 3),
}


def generate_run(
    out_dir: str | Path,
    items: Sequence[RunItem],
    produce: Produce,
    *,
    source: ModelSource,
    formats: Sequence[str],
    record: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
    smpl_model: SMPLModel | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
    batch_size: int | None = None,
    overwrite: bool = False,
) -> tuple[dict[str, Any], JobRun[RunItem]]:
    """Generate the unfinished ``items`` a batch at a time, write each item's files when its
    batch is done and rewrite ``run.json`` after every batch (``"complete"`` says whether the
    run finished); the folder was checked by :func:`prepare_output_dir` first.

    The run holds the folder's lock (:func:`~hftrainer_mogents.utils.runner.folder_lock`)
    throughout and removes the temporary files a killed run left. Nothing of an earlier run is
    removed before the first batch is generated: with ``overwrite`` the files its ``run.json``
    lists go then. A batch is generated whole even when some of its items were written before
    a kill, so a resumed run writes what an uninterrupted one would have. A folder this call
    created is removed again when the run fails before writing anything.

    Args:
        out_dir: the run's folder.
        items: every motion of the run.
        produce: ``(pipeline, items of a batch) -> (motions, run.json entries)``; called only
            for the batches with something left to do (the pipeline is loaded then).
        source: the pipeline to load.
        formats: from :func:`~hftrainer_mogents.exports.parse_formats`.
        record: ``run.json`` entries known before the call (settings, lengths, ...).
        previous: the earlier ``run.json`` being resumed; its finished items are kept, and a
            pipeline with other weights (``model_fingerprint``), dtype or device class is
            refused.
        smpl_model: the SMPL model of ``smpl``/``glb`` (one batched fit per batch).
        on_item: called with each item's ``run.json`` entry once its files are written.
        batch_size: items per ``produce`` call, by their position in ``items`` (None: all).
        overwrite: replace an earlier run in the folder (after the first batch is generated).

    Returns:
        The ``run.json`` written, and the runner's :class:`~hftrainer_mogents.utils.runner.JobRun`
        (``todo``: the batches generated now).

    Raises:
        FolderInUseError: another run holds the folder.
        InvalidInputError: the resumed run was made by another model, dtype or device class.
        OutputWriteError: a file could not be written (disk full, ...); the folder is named.
    """
    out = Path(out_dir)
    created = _missing_parents(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _write_error(out, err) from err
    wrote = False
    try:
        with folder_lock(out):
            run, job, wrote = _run_locked(
                out,
                items,
                produce,
                source=source,
                formats=formats,
                record=record,
                previous=previous,
                smpl_model=smpl_model,
                on_item=on_item,
                batch_size=batch_size,
                overwrite=overwrite,
            )
    except BaseException:
        if not wrote:
            _remove_empty(created)
        raise
    return run, job


def _run_locked(
    out: Path,
    items: Sequence[RunItem],
    produce: Produce,
    *,
    source: ModelSource,
    formats: Sequence[str],
    record: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    smpl_model: SMPLModel | None,
    on_item: Callable[[dict[str, Any]], None] | None,
    batch_size: int | None,
    overwrite: bool,
) -> tuple[dict[str, Any], JobRun[Any], bool]:
    stray = remove_temporary_files(out)
    if stray:
        logger.warning("removed %d temporary file(s) a killed run left in %s", len(stray), out)
    replaced = _read_run(out / RUN_FILE) if (out / RUN_FILE).is_file() else None
    if previous is None and replaced is not None and not overwrite:
        raise InvalidInputError(
            f"--out {out} now holds a run.json of another run (it finished while this one "
            "started): pass --overwrite to replace it, --skip-existing to resume it, or choose "
            "another --out"
        )
    if previous is not None:
        _check_same_dtype(previous, source)
    done = finished_items(previous, [it.text for it in items], out)
    entries = {i: done[i] for i in done}
    state: dict[str, Any] = {
        "pipe": None,
        "header": None,
        "made": {
            "device": (previous or {}).get("device", source.device),
            "model_fingerprint": (previous or {}).get("model_fingerprint"),
        },
        "wrote": False,
    }

    def summary(complete: bool) -> dict[str, Any]:
        if state["header"] is None:
            state["header"] = run_header(source.model, source.revision, None, source.dtype, formats)
        return {
            **state["header"],
            **(record or {}),
            **state["made"],
            "complete": complete,
            "items": [entries[i] for i in sorted(entries)],
        }

    def write_run(complete: bool) -> dict[str, Any]:
        run = summary(complete)
        try:
            write_summary(out, Path(RUN_FILE).stem, run)
        except OSError as err:
            raise _write_error(out, err) from err
        return run

    def work(batches: list[list[RunItem]]) -> None:
        for batch in batches:
            if state["pipe"] is None:
                pipe = source.load()
                fingerprint = pipe.fingerprint()
                if previous is not None:
                    _check_same_model(previous, fingerprint, str(pipe.device), source)
                if len(batches) > 1:  # one bar over the run's batches instead of one per call
                    pipe.set_progress_bar_config(disable=True)
                state["pipe"] = pipe
                state["made"] = {"device": str(pipe.device), "model_fingerprint": fingerprint}
            motions, extra = produce(state["pipe"], batch)
            state["made"].update(extra)
            fits: list[Any] = [None] * len(batch)
            if smpl_model is not None:  # one batched IK per batch
                from hftrainer_mogents.motion.export import fit_smpl_params

                fits = fit_smpl_params(motions, model=smpl_model, device=state["made"]["device"])
            if not state["wrote"]:  # the first output: the earlier run goes now
                if overwrite and replaced is not None:
                    for name in _listed_files(replaced) + [RUN_FILE]:
                        (out / name).unlink(missing_ok=True)
                write_run(complete=False)
                state["wrote"] = True
            new = []
            for item, motion, fit in zip(batch, motions, fits):
                if item.index in done:  # kept from the earlier run
                    continue
                try:
                    files = save_motion(
                        out,
                        item.stem,
                        motion,
                        formats,
                        title=item.text,
                        smpl_model=smpl_model,
                        smpl_fit=fit,
                    )
                except OSError as err:
                    raise _write_error(out, err) from err
                entries[item.index] = {
                    "index": item.index,
                    "text": item.text,
                    "frames": int(len(motion)),
                    "files": files,
                }
                new.append(entries[item.index])
            write_run(complete=False)  # the batch is recorded once all its files are written
            for entry in new:
                if on_item is not None:
                    on_item(entry)

    size = max(1, len(items) if batch_size is None else batch_size)
    batches = [list(items[lo : lo + size]) for lo in range(0, len(items), size)]
    job = run_job(
        batches,
        work,
        done=lambda batch: all(it.index in done for it in batch),
        skip_existing=bool(done),
        chunk_size=1,
        progress=len(batches) > 1,
        desc="MoGenTS",
        unit="batch",
    )
    run = write_run(complete=True)
    todo = [it for batch in job.todo for it in batch if it.index not in done]
    flat = JobRun(list(items), todo, job.failures, job.num_shards, job.shard_index, job.seconds)
    return run, flat, True


def _check_same_dtype(previous: dict[str, Any], source: ModelSource) -> None:
    earlier = previous.get("dtype")
    if earlier is not None and earlier != source.dtype:
        raise InvalidInputError(
            f"--skip-existing: the earlier run was made with --dtype {earlier}, this one asks "
            f"for --dtype {source.dtype}; resume with --dtype {earlier}, or use --overwrite or "
            "a new --out"
        )


def _check_same_model(
    previous: dict[str, Any], fingerprint: str, device: str, source: ModelSource
) -> None:
    """Refuse to resume a run made by other weights or on another device class."""
    earlier = previous.get("model_fingerprint")
    if earlier is None:
        logger.warning(
            "the earlier run's run.json records no model fingerprint: its model cannot be "
            "compared with %s",
            source.model,
        )
    elif earlier != fingerprint:
        raise InvalidInputError(
            f"--skip-existing: the model at --model {source.model} is not the one of the earlier "
            f"run (weight digest {fingerprint[:12]}, the earlier run's {earlier[:12]}); the "
            "folder would mix two models: use --overwrite or a new --out"
        )
    before = str(previous.get("device") or "").split(":")[0]
    now = device.split(":")[0]
    if before and before != now:
        raise InvalidInputError(
            f"--skip-existing: the earlier run ran on {before}, this one on {now} (their "
            f"numbers differ); resume with --device {before}, or use --overwrite or a new --out"
        )


def _write_error(out: Path, err: OSError) -> OutputWriteError:
    reason = "the disk is full" if err.errno == errno.ENOSPC else (err.strerror or str(err))
    return OutputWriteError(
        f"cannot write to --out {out}: {reason}; the files of the unfinished batch are not "
        "recorded in run.json (free space or choose another --out, then resume with "
        "--skip-existing)"
    )


def _missing_parents(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def slugify(text: str, max_len: int = 40) -> str:
    """A file-name-safe short form of a caption."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:max_len].rstrip("_") or "motion"


def read_prompt_file(path: str | Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with ``#`` are skipped.

    Raises:
        InvalidInputError: the file is missing, not UTF-8 text or holds no prompt.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"--from-file {path} not found")
    try:
        data = path.read_bytes()
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\0"), data.index(b"\0") + 1, "NUL")
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidInputError(
            f"--from-file {path} is not UTF-8 text (byte {err.start}: {err.reason}); save it "
            "as UTF-8, one prompt per line"
        ) from None
    except OSError as err:
        raise InvalidInputError(f"cannot read --from-file {path}: {err.strerror or err}") from err
    prompts = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not prompts:
        raise InvalidInputError(f"prompt file {path} holds no prompt (one per line)")
    return prompts


def prepare_output_dir(
    out_dir: str | Path, *, overwrite: bool = False, skip_existing: bool = False
) -> dict[str, Any] | None:
    """Check ``out_dir`` before anything is loaded: writable (or creatable), not in use by
    another run, and not holding an earlier run unless asked. Nothing is created or removed
    here: :func:`generate_run` creates the folder, and replaces an earlier run's files only once
    its first batch is generated.

    A folder that holds files is refused, unless ``overwrite`` (the files the earlier
    ``run.json`` lists are replaced) or ``skip_existing`` (the earlier run is resumed: its
    ``run.json`` is returned).

    Returns:
        The earlier ``run.json`` with ``skip_existing``, else None.

    Raises:
        InvalidInputError: not a folder, not writable, an earlier run without a flag saying what
            to do with it, both flags, or nothing to resume.
        FolderInUseError: another run holds the folder.
    """
    out = Path(out_dir)
    if overwrite and skip_existing:
        raise InvalidInputError("give --overwrite or --skip-existing, not both")
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a folder")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "a file is in its path" if not existing.is_dir() else f"{existing} is not writable"
        raise InvalidInputError(f"cannot write to --out {out}: {why}; choose a writable folder")
    if not out.is_dir():
        return None
    check_folder_lock(out)
    held = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE and not is_temporary(p.name))
    previous = _read_run(out / RUN_FILE) if (out / RUN_FILE).is_file() else None
    if held and not (overwrite or skip_existing):
        raise InvalidInputError(
            f"--out {out} already holds {len(held)} file(s)"
            + (" of an earlier run" if previous is not None else "")
            + ": pass --overwrite to replace the files its run.json lists, --skip-existing to keep "
            "the prompts already done, or choose another --out"
        )
    if skip_existing and held and previous is None:
        raise InvalidInputError(
            f"--skip-existing: {out} holds files but no {RUN_FILE} to resume from; use --overwrite "
            "or another --out"
        )
    return previous if skip_existing else None


def finished_items(
    previous: dict[str, Any] | None, prompts: Sequence[str], out_dir: str | Path
) -> dict[int, dict[str, Any]]:
    """The items of an earlier run that need no new generation: same index, same prompt, and
    every file it lists finished (:func:`~hftrainer_mogents.utils.runner.output_problem`: it
    loads, the features and joints hold the item's frames in the right shape, finite).
    Index -> its ``run.json`` item."""
    if previous is None:
        return {}
    out = Path(out_dir)
    done = {}
    for item in previous.get("items", []):
        i = item.get("index")
        if not isinstance(i, int) or not 0 <= i < len(prompts) or item.get("text") != prompts[i]:
            continue
        files = item.get("files", {})
        frames = item.get("frames")
        names = _item_files(item)
        if not names or not isinstance(frames, int) or isinstance(frames, bool):
            continue
        problems = [
            output_problem(
                out / files[fmt],
                shape=_SHAPES[fmt](frames) if fmt in _SHAPES else None,
            )
            for fmt in files
            if isinstance(files.get(fmt), str) and files[fmt] in names
        ]
        if all(problem is None for problem in problems):
            done[i] = item
        else:
            logger.warning("prompt %d: its files are damaged; it is generated again", i)
    return done


def _listed_files(run: dict[str, Any]) -> list[str]:
    names = []
    for item in run.get("items", []):
        # only plain names inside the folder: a run.json cannot point the removal elsewhere
        names += [name for name in _item_files(item) if Path(name).name == name]
    return names


def run_header(
    model: str, revision: str | None, device: str | None, dtype: str, formats: Sequence[str]
) -> dict[str, Any]:
    """The first keys of every ``run.json``: when, which package, which model and how it ran."""
    from datetime import datetime, timezone

    from hftrainer_mogents._version import __version__

    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hftrainer_mogents": __version__,
        "model": model,
        "revision": revision,
        "device": device,
        "dtype": dtype,
        "formats": list(formats),
    }


def _item_files(item: dict[str, Any]) -> list[str]:
    return file_names(item.get("files", {}))


def _read_run(path: Path) -> dict[str, Any]:
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInputError(f"{path} is not a readable run.json ({err})") from err
    if not isinstance(run, dict):
        raise InvalidInputError(f"{path} is not a run.json (not a JSON object)")
    return run
