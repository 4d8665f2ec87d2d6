"""A generation run written to a folder: the one library call behind ``mogents generate``,
``mogents edit`` and ``mogents generate --sequence`` (:func:`generate_run`: the pipeline's call,
the writers of :mod:`hftrainer_mogents.exports`, ``run.json``), on the job runner
(:func:`~hftrainer_mogents.utils.runner.run_job`), and the folder's rules: what an earlier run
leaves (:func:`prepare_output_dir`) and which of its items are finished
(:func:`finished_items`)."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.exports import file_names, save_motion
from hftrainer_mogents.utils.runner import JobRun, output_problem, run_job, write_summary

if TYPE_CHECKING:
    from hftrainer_mogents.motion.smpl135 import SMPLModel
    from hftrainer_mogents.pipeline import MoGenTSPipeline

__all__ = [
    "RUN_FILE",
    "ModelSource",
    "RunItem",
    "generate_run",
    "slugify",
    "read_prompt_file",
    "prepare_output_dir",
    "finished_items",
    "run_header",
]

RUN_FILE = "run.json"


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
) -> tuple[dict[str, Any], JobRun[RunItem]]:
    """Generate the unfinished ``items`` with one ``produce`` call, write each in ``formats``
    and write ``run.json``; the folder was checked by :func:`prepare_output_dir` first.

    Args:
        out_dir: the run's folder.
        items: every motion of the run.
        produce: ``(pipeline, items to do) -> (motions, run.json entries)``; called once, and
            only when something is left to do (the pipeline is loaded then).
        source: the pipeline to load.
        formats: from :func:`~hftrainer_mogents.exports.parse_formats`.
        record: ``run.json`` entries known before the call (settings, lengths, ...).
        previous: the earlier ``run.json`` being resumed; its finished items are kept.
        smpl_model: the SMPL model of ``smpl``/``glb`` (one batched fit for the run).
        on_item: called with each item's ``run.json`` entry once its files are written.

    Returns:
        The ``run.json`` written, and the runner's :class:`~hftrainer_mogents.utils.runner.JobRun`
        (``todo``: the items generated now).
    """
    out = Path(out_dir)
    done = finished_items(previous, [it.text for it in items], out)
    entries = [done[i] for i in sorted(done)]
    made: dict[str, Any] = {"device": source.device}

    def work(chunk: list[RunItem]) -> None:
        pipe = source.load()
        made["device"] = str(pipe.device)
        motions, extra = produce(pipe, chunk)
        made.update(extra)
        fits = [None] * len(chunk)
        if smpl_model is not None:  # one batched IK for the whole run
            from hftrainer_mogents.motion.export import fit_smpl_params

            fits = fit_smpl_params(motions, model=smpl_model, device=made["device"])
        for item, motion, fit in zip(chunk, motions, fits):
            files = save_motion(
                out,
                item.stem,
                motion,
                formats,
                title=item.text,
                smpl_model=smpl_model,
                smpl_fit=fit,
            )
            entry = {
                "index": item.index,
                "text": item.text,
                "frames": int(len(motion)),
                "files": files,
            }
            entries.append(entry)
            if on_item is not None:
                on_item(entry)

    # one chunk: the prompts of a run share the pipeline's batches, as an uninterrupted run's do
    job = run_job(
        items, work, done=lambda it: it.index in done, skip_existing=bool(done), chunk_size=None
    )
    device = made.pop("device")
    run = {
        **run_header(source.model, source.revision, device, source.dtype, formats),
        **(record or {}),
        **made,
        "items": sorted(entries, key=lambda e: e["index"]),
    }
    write_summary(out, Path(RUN_FILE).stem, run)
    return run, job


def slugify(text: str, max_len: int = 40) -> str:
    """A file-name-safe short form of a caption."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:max_len].rstrip("_") or "motion"


def read_prompt_file(path: str | Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with ``#`` are skipped.

    Raises:
        InvalidInputError: the file is missing or holds no prompt.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"prompt file {path} not found")
    prompts = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not prompts:
        raise InvalidInputError(f"prompt file {path} holds no prompt (one per line)")
    return prompts


def prepare_output_dir(
    out_dir: str | Path, *, overwrite: bool = False, skip_existing: bool = False
) -> dict[str, Any] | None:
    """Make ``out_dir`` ready before anything is computed: created, writable, and not holding an
    earlier run unless asked.

    A folder that holds files is refused, unless ``overwrite`` (the files the earlier
    ``run.json`` lists are removed first) or ``skip_existing`` (the earlier run is resumed: its
    ``run.json`` is returned).

    Returns:
        The earlier ``run.json`` with ``skip_existing``, else None.

    Raises:
        InvalidInputError: not a folder, not writable, an earlier run without a flag saying what
            to do with it, both flags, or nothing to resume.
    """
    out = Path(out_dir)
    if overwrite and skip_existing:
        raise InvalidInputError("give --overwrite or --skip-existing, not both")
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a folder")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
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
    if overwrite and previous is not None:
        for name in _listed_files(previous) + [RUN_FILE]:
            (out / name).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as err:
        raise InvalidInputError(
            f"cannot write to --out {out}: {err.strerror or err}; choose a writable folder"
        ) from err
    return previous if skip_existing else None


def finished_items(
    previous: dict[str, Any] | None, prompts: Sequence[str], out_dir: str | Path
) -> dict[int, dict[str, Any]]:
    """The items of an earlier run that need no new generation: same index, same prompt, and
    every file it lists finished (:func:`~hftrainer_mogents.utils.runner.output_problem`).
    Index -> its ``run.json`` item."""
    if previous is None:
        return {}
    out = Path(out_dir)
    done = {}
    for item in previous.get("items", []):
        i = item.get("index")
        if not isinstance(i, int) or not 0 <= i < len(prompts) or item.get("text") != prompts[i]:
            continue
        names = _item_files(item)
        if names and all(output_problem(out / name) is None for name in names):
            done[i] = item
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
