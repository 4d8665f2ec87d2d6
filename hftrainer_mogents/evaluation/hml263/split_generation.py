"""Generation of the HumanML3D test split for the evaluation protocol: the plan (which caption,
which length, which seed for every generator call) and the sharded, resumable run that follows it.
:func:`~hftrainer_mogents.evaluation.hml263.benchmark.run_benchmark` then scores the folder.

The generator is any object with the pipeline's ``infer_t2m(texts, lengths, *, seed=None,
batch_size=..., **generation_kwargs) -> list[(T_i, 263) arrays]`` (lengths in frames at 20 fps,
outputs in physical units), e.g. ``MoGenTSPipeline``.

The plan is fixed before anything runs: one item per test entry (whole clip or sub-clip), the
caption it is generated from (the first, or one drawn with the seed) and its length (the entry's,
floored to a multiple of 4 and kept within [40, 196]); the items, sorted by length, are cut into
batches of ``batch_size``, and batch ``j`` is generated with the seed ``batch_seed(seed, j)``.
So an item's output depends on the seed and the plan only, never on sharding (batch ``j`` goes to
shard ``j % num_shards``) or on restarts. Multimodality items (``mm_samples`` entries drawn with the
seed) are generated ``mm_repeats`` times each, in one call per entry, with Gumbel sampling as the
reference does for its multimodality batches.

Output folder::

    <out_dir>/<key>.npy                (T, 263) float32, physical units
    <out_dir>/mm/<key>__r<k>.npy       repeated generations for multimodality
    <out_dir>/generation.json          the plan and settings (the evaluator reads the captions)
    <out_dir>/_generation_summary[_sII_of_NN].json   written / skipped / failed of a run

Every file is written under a temporary name and renamed, so a killed run leaves no half-written
prediction; ``skip_existing`` resumes it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hftrainer_mogents.config import DIM_POSE, clamp_length
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.evaluation.hml263.dataset import (
    Caption,
    HumanML3DTestSplit,
    TestEntry,
    read_test_split,
)
from hftrainer_mogents.generation_config import GenerationConfig

__all__ = [
    "PREDICTIONS_FORMAT",
    "TextToMotionGenerator",
    "PlannedItem",
    "PlannedBatch",
    "GenerationPlan",
    "batch_seed",
    "plan_test_split",
    "generate_test_split",
    "load_generator",
    "default_mm_samples",
    "read_anno_fallback",
]

logger = logging.getLogger(__name__)

PREDICTIONS_FORMAT = "hftrainer-mogents-hml263-predictions-v1"
SUMMARY_STEM = "_generation_summary"  # + _sII_of_NN for one shard of several
MM_SAMPLES = 96  # the reference: 3 batches of 32 texts ...
MM_REPEATS = 30  # ... generated 30 times each
MM_ITEMS_PER_TEXT = 32  # a small split: one multimodality text per evaluation batch of items


def default_mm_samples(n_items: int) -> int:
    """Multimodality texts of a split of ``n_items``: the reference's 96 (the whole test set has
    ~4400 items), fewer on a small split (one per 32 items, at least one), so a quick run on a
    few ids does not spend most of its time on repeats."""
    return min(MM_SAMPLES, max(1, n_items // MM_ITEMS_PER_TEXT)) if n_items else 0


class TextToMotionGenerator(Protocol):
    """What the protocol needs of a generator (``MoGenTSPipeline`` satisfies it)."""

    def infer_t2m(
        self, texts: list[str], lengths: list[int], *, seed: int | None = None, **kwargs: Any
    ) -> list[np.ndarray]:
        """``B`` texts and lengths (frames, 20 fps) -> ``B`` motions ``(T_i, 263)``."""
        ...


@dataclass(frozen=True)
class PlannedItem:
    """One prediction to generate.

    Attributes:
        key: prediction file stem (the test entry's key).
        text: the caption sentence given to the generator.
        caption_index: which caption of the entry (the evaluator scores against it).
        length: frames requested.
    """

    key: str
    text: str
    caption_index: int
    length: int


@dataclass(frozen=True)
class PlannedBatch:
    """One generator call.

    Attributes:
        index: batch number (its shard is ``index % num_shards``).
        seed: the call's seed.
        items: the items, in call order.
        files: output file of each item, relative to the output folder.
        mm: a multimodality batch (one text repeated).
    """

    index: int
    seed: int
    items: tuple[PlannedItem, ...]
    files: tuple[str, ...]
    mm: bool = False


@dataclass
class GenerationPlan:
    """All generator calls of a test-split generation.

    Attributes:
        batches: main batches, then multimodality batches.
        settings: what the outputs depend on (seed, kwargs, batch size, caption choice, ...).
    """

    batches: list[PlannedBatch]
    settings: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        """The ``generation.json`` content."""
        items = {
            item.key: {
                "caption_index": item.caption_index,
                "text": item.text,
                "length": item.length,
            }
            for batch in self.batches
            if not batch.mm
            for item in batch.items
        }
        mm = {
            batch.items[0].key: {
                "caption_index": batch.items[0].caption_index,
                "n": len(batch.items),
            }
            for batch in self.batches
            if batch.mm
        }
        return {"format": PREDICTIONS_FORMAT, **self.settings, "items": items, "mm": mm}


def batch_seed(seed: int, index: int, stream: int = 0) -> int:
    """The seed of batch ``index`` (``stream`` 0: main batches, 1: multimodality batches)."""
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1)[0])


def plan_test_split(
    split: HumanML3DTestSplit,
    *,
    seed: int = 0,
    batch_size: int = 32,
    caption_selection: str = "first",
    generation_kwargs: GenerationConfig | Mapping[str, Any] | None = None,
    mm_samples: int | None = None,
    mm_repeats: int = MM_REPEATS,
    mm_gumbel_sample: bool = True,
) -> GenerationPlan:
    """Fix every generator call of a test-split generation (see the module doc).

    Args:
        split: the test entries.
        seed: base seed.
        batch_size: items per call.
        caption_selection: ``"first"`` caption of each entry, or ``"random"`` (drawn with the
            seed).
        generation_kwargs: sampling settings: a :class:`GenerationConfig`, or keyword arguments
            of the generator's ``infer_t2m`` (settings not given: the ``GenerationConfig``
            defaults); stored whole in ``generation.json``.
        mm_samples: entries generated ``mm_repeats`` times for multimodality (0: none; None:
            :func:`default_mm_samples`, the reference's 96 or fewer on a small split); capped by
            the number of entries.
        mm_repeats: generations per multimodality entry.
        mm_gumbel_sample: sample the multimodality calls with Gumbel noise (the reference does).

    Returns:
        The plan.
    """
    if mm_samples is None:
        mm_samples = default_mm_samples(len(split.entries))
        if mm_samples < MM_SAMPLES:
            logger.warning(
                "a split of %d items: %d multimodality texts instead of %d",
                len(split.entries),
                mm_samples,
                MM_SAMPLES,
            )
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    if caption_selection not in ("first", "random"):
        raise InvalidInputError(
            f"caption_selection must be 'first' or 'random', got {caption_selection!r}"
        )
    if mm_samples < 0 or (mm_samples and mm_repeats < 2):
        raise InvalidInputError(
            f"mm_samples must be >= 0 and mm_repeats >= 2, got {mm_samples} and {mm_repeats}"
        )
    kwargs = _generation_kwargs(generation_kwargs)
    rng = np.random.default_rng([seed, 2])
    entries = split.entries
    if caption_selection == "random":
        caption_idx = rng.integers(0, [len(e.captions) for e in entries])
    else:
        caption_idx = np.zeros(len(entries), dtype=np.int64)
    items = [
        PlannedItem(e.key, e.captions[c].text, int(c), clamp_length(e.length))
        for e, c in zip(entries, caption_idx)
    ]
    batches = [
        PlannedBatch(
            index=j,
            seed=batch_seed(seed, j),
            items=tuple(items[lo : lo + batch_size]),
            files=tuple(f"{it.key}.npy" for it in items[lo : lo + batch_size]),
        )
        for j, lo in enumerate(range(0, len(items), batch_size))
    ]
    chosen = sorted(rng.choice(len(items), min(mm_samples, len(items)), replace=False).tolist())
    first_mm = len(batches)
    for n, i in enumerate(chosen):
        item = items[i]
        batches.append(
            PlannedBatch(
                index=first_mm + n,
                seed=batch_seed(seed, n, stream=1),
                items=(item,) * mm_repeats,
                files=tuple(f"mm/{item.key}__r{k:02d}.npy" for k in range(mm_repeats)),
                mm=True,
            )
        )
    settings = {
        "seed": seed,
        "batch_size": batch_size,
        "caption_selection": caption_selection,
        "generation_kwargs": kwargs,
        "mm_samples": len(chosen),
        "mm_repeats": mm_repeats if chosen else 0,
        "mm_generation_kwargs": {**kwargs, "gumbel_sample": mm_gumbel_sample},
        "length_rule": "floor to a multiple of 4, within [40, 196]",
        "dataset_root": str(split.root),
        "split_file": str(split.split_file),
    }
    return GenerationPlan(batches, settings)


def model_fingerprint(generator: Any) -> str | None:
    """The generator's ``fingerprint()`` (e.g. :meth:`MoGenTSPipeline.fingerprint`, a digest of
    its weights), or None for a generator that offers none."""
    fingerprint = getattr(generator, "fingerprint", None)
    return str(fingerprint()) if callable(fingerprint) else None


def _check_manifest(path: Path, manifest: dict[str, Any], skip_existing: bool) -> None:
    if not (skip_existing and path.is_file()):
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    theirs, ours = old.get("model_fingerprint"), manifest.get("model_fingerprint")
    if theirs is not None and ours is not None and theirs != ours:
        raise InvalidInputError(
            f"{path.parent} holds predictions of another model (fingerprint {theirs[:16]}..., "
            f"this one {ours[:16]}...); --skip-existing would mix two models: use another "
            "output folder, or the model that made them"
        )
    keys = (
        "format",
        "seed",
        "batch_size",
        "caption_selection",
        "generation_kwargs",
        "mm_samples",
        "mm_repeats",
        "items",
    )
    changed = [k for k in keys if old.get(k) != manifest.get(k)]
    if changed:
        raise InvalidInputError(
            f"{path.parent} holds predictions generated with other settings ({', '.join(changed)} "
            "differ); --skip-existing would mix them: use another output folder, or run "
            "without --skip-existing to regenerate everything"
        )


def generate_test_split(
    generator: TextToMotionGenerator,
    dataset_root: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    split: HumanML3DTestSplit | None = None,
    split_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
    generation_kwargs: GenerationConfig | Mapping[str, Any] | None = None,
    batch_size: int = 32,
    caption_selection: str = "first",
    mm_samples: int | None = None,
    mm_repeats: int = MM_REPEATS,
    mm_gumbel_sample: bool = True,
    num_shards: int | None = None,
    shard_index: int | None = None,
    skip_existing: bool = False,
    max_samples: int | None = None,
    progress: bool = True,
    anno_file: str | os.PathLike[str] | None = None,
    anno_output_fps: float = 20.0,
) -> dict[str, Any]:
    """Generate one ``.npy`` per HumanML3D test item (and the multimodality repeats).

    Args:
        generator: an object with ``infer_t2m`` (see :class:`TextToMotionGenerator`).
        dataset_root: the HumanML3D folder (or pass ``split``).
        out_dir: the prediction folder.
        split: an already read split.
        split_file: an id list instead of the folder's ``test.txt``.
        seed: base seed of the plan (see the module doc).
        generation_kwargs: sampling settings passed to ``infer_t2m`` (as
            :func:`plan_test_split`).
        batch_size: texts per ``infer_t2m`` call.
        caption_selection: ``"first"`` or ``"random"`` caption per item.
        mm_samples: items generated ``mm_repeats`` times for multimodality (0: none; None: the
            reference's 96, fewer on a small split, see :func:`default_mm_samples`).
        mm_repeats: generations per multimodality item.
        mm_gumbel_sample: Gumbel sampling for the multimodality calls (as the reference).
        num_shards: processes sharing the work (default: torchrun's ``WORLD_SIZE`` or 1).
        shard_index: this process (default: torchrun's ``RANK`` or 0).
        skip_existing: skip batches whose files all exist (resume); refuses a folder generated
            with other settings.
        max_samples: only the first ids of the split (quick runs).
        progress: show a progress bar.
        anno_file: the zoo's fallback for split ids whose motion or text file is missing: an
            annotation JSON read by :func:`read_anno_fallback`; those ids are generated as
            whole clips (the evaluator has no ground truth for them and leaves them out).
        anno_output_fps: frame rate the annotation's lengths are converted to (20: HumanML3D).

    Returns:
        The run summary (also written to ``_generation_summary*.json``): ``written``,
        ``skipped``, ``failed`` (keys and errors), ``n_batches``, ``seconds``.
    """
    from hftrainer_mogents.utils.io import atomic_write_json
    from hftrainer_mogents.utils.runner import output_problem, run_job, write_summary
    from hftrainer_mogents.utils.sharding import resolve_shard

    num_shards, shard_index = resolve_shard(num_shards, shard_index)
    split = _with_fallback(split, dataset_root, split_file, max_samples, anno_file, anno_output_fps)
    plan = plan_test_split(
        split,
        seed=seed,
        batch_size=batch_size,
        caption_selection=caption_selection,
        generation_kwargs=generation_kwargs,
        mm_samples=mm_samples,
        mm_repeats=mm_repeats,
        mm_gumbel_sample=mm_gumbel_sample,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {**plan.manifest(), "model_fingerprint": model_fingerprint(generator)}
    manifest_path = out / "generation.json"
    _check_manifest(manifest_path, manifest, skip_existing)
    atomic_write_json(manifest_path, manifest)  # same content from every shard

    counts = {"written": 0, "skipped": 0}
    redone: list[dict[str, Any]] = []
    todo_files: dict[int, list[bool]] = {}  # batch -> which of its files to (re)write

    def done(batch: PlannedBatch) -> bool:
        # an existing file counts as done only if it is a whole prediction
        problems = [
            output_problem(out / f, shape=(it.length, DIM_POSE))
            for f, it in zip(batch.files, batch.items)
        ]
        for name, problem in zip(batch.files, problems):
            if problem not in (None, "missing"):
                logger.warning("redoing %s: %s", name, problem)
                redone.append({"file": name, "problem": problem})
        todo_files[batch.index] = [problem is not None for problem in problems]
        if not any(todo_files[batch.index]):
            counts["skipped"] += len(batch.files)
            return True
        return False

    def work(chunk: list[PlannedBatch]) -> list[dict[str, Any]]:
        batch = chunk[0]
        kwargs = plan.settings["mm_generation_kwargs" if batch.mm else "generation_kwargs"]
        todo = todo_files.get(batch.index, [True] * len(batch.files))
        return _generate_batch(generator, batch, todo, out, batch_size, kwargs, counts)

    run = run_job(
        plan.batches,
        work,
        done=done,
        skip_existing=skip_existing,
        num_shards=num_shards,
        shard_index=shard_index,
        progress=progress,
        desc=f"generate (shard {shard_index}/{num_shards})",
    )
    summary = {
        "out_dir": str(out),
        "num_shards": num_shards,
        "shard_index": shard_index,
        "n_batches": len(run.items),
        "n_files": sum(len(b.files) for b in run.items),
        **counts,
        "failed": run.failures,
        "redone": redone,
        "seconds": round(run.seconds, 3),
        "settings": dict(plan.settings),
    }
    write_summary(out, SUMMARY_STEM, summary, num_shards=num_shards, shard_index=shard_index)
    logger.info(
        "[done] written %d, skipped %d, failed %d",
        counts["written"],
        counts["skipped"],
        sum(len(f["files"]) for f in run.failures),
    )
    return summary


def _with_fallback(
    split: HumanML3DTestSplit | None,
    dataset_root: str | os.PathLike[str] | None,
    split_file: str | os.PathLike[str] | None,
    max_samples: int | None,
    anno_file: str | os.PathLike[str] | None,
    anno_output_fps: float,
) -> HumanML3DTestSplit:
    """The split to generate: read unless given, with the annotation file's ids added."""
    if split is None:
        if dataset_root is None:
            raise InvalidInputError("pass dataset_root (a HumanML3D folder) or split")
        split = read_test_split(dataset_root, split_file=split_file, max_samples=max_samples)
    if anno_file is None:
        return split
    missing = [k for k, why in split.skipped.items() if why.startswith("missing")]
    extra = read_anno_fallback(anno_file, missing, output_fps=anno_output_fps)
    if not extra:
        return split
    logger.info("%d ids without dataset files generated from %s", len(extra), anno_file)
    return HumanML3DTestSplit(
        split.root,
        split.split_file,
        sorted([*split.entries, *extra], key=lambda e: e.length),
        {k: v for k, v in split.skipped.items() if k not in {e.key for e in extra}},
        split.texts_dir,
    )


def _generate_batch(
    generator: TextToMotionGenerator,
    batch: PlannedBatch,
    todo: list[bool],
    out: Path,
    batch_size: int,
    kwargs: dict[str, Any],
    counts: dict[str, int],
) -> list[dict[str, Any]]:
    """One generator call of the plan: its files written (those in ``todo``), its failures
    returned; one failing batch must not stop the run."""
    from hftrainer_mogents.utils.io import atomic_save_npy

    try:
        motions = generator.infer_t2m(
            [it.text for it in batch.items],
            [it.length for it in batch.items],
            seed=batch.seed,
            batch_size=batch_size,
            **kwargs,
        )
        if len(motions) != len(batch.items):
            raise InvalidInputError(
                f"infer_t2m returned {len(motions)} motions for {len(batch.items)} texts"
            )
    except Exception as err:  # recorded in the summary; the other batches go on
        logger.exception("batch %d failed", batch.index)
        error = f"{type(err).__name__}: {err}"
        return [{"batch": batch.index, "files": list(batch.files), "error": error}]
    failed = []
    for name, motion, needed in zip(batch.files, motions, todo):
        if not needed:
            counts["skipped"] += 1
            continue
        motion = np.asarray(motion, dtype=np.float32)
        if motion.ndim != 2 or motion.shape[1] != DIM_POSE or not np.isfinite(motion).all():
            error = f"bad output: shape {motion.shape}, finite {bool(np.isfinite(motion).all())}"
            failed.append({"batch": batch.index, "files": [name], "error": error})
            continue
        atomic_save_npy(out / name, motion)
        counts["written"] += 1
    return failed


def read_anno_fallback(
    anno_file: str | os.PathLike[str], ids: list[str], *, output_fps: float = 20.0
) -> list[TestEntry]:
    """Whole-clip entries for ``ids`` from an annotation file, the zoo's ``--anno_file``.

    The file is JSON ``{"data_list": {id: {"hierarchical_caption_path", "fps", "num_frames"}}}``
    (or the mapping itself); the caption is the first non-empty one of the ``macro``, ``meso``,
    ``micro`` lists of the caption JSON (a relative path is taken from the annotation file's
    folder), the length ``round(num_frames * output_fps / fps)`` frames (``fps`` default 30).
    Ids without a usable record are left out.

    Raises:
        ArtifactNotFoundError: the annotation file is missing.
        ArtifactFormatError: it is not such JSON.
    """
    from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError

    path = Path(anno_file)
    if not path.is_file():
        raise ArtifactNotFoundError(f"annotation file {path} (--anno_file) not found")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        records = payload.get("data_list", payload)
        if not isinstance(records, dict):
            raise TypeError("data_list is not a mapping")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as err:
        raise ArtifactFormatError(
            f"{path}: expected JSON {{'data_list': {{id: {{'hierarchical_caption_path', 'fps', "
            f"'num_frames'}}}}}} ({err})"
        ) from err
    out = []
    for clip_id in ids:
        record = records.get(clip_id)
        if not isinstance(record, dict):
            continue
        caption_path = Path(str(record.get("hierarchical_caption_path", "")))
        if not caption_path.is_absolute():
            caption_path = path.parent / caption_path
        text = _first_hierarchical_caption(caption_path)
        fps, frames = float(record.get("fps") or 30.0), int(record.get("num_frames") or 0)
        if text is None or fps <= 0 or frames <= 0:
            continue
        length = max(1, round(frames * output_fps / fps))
        out.append(TestEntry(clip_id, clip_id, None, length, (Caption(text, (), 0),)))
    return out


def _first_hierarchical_caption(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    for level in ("macro", "meso", "micro"):
        values = data.get(level) or []
        for value in values if isinstance(values, list) else [values]:
            if str(value).strip():
                return str(value).strip()
    return None


def load_generator(model_path: str | None, *, device: str | None = None) -> Any:
    """The MoGenTS pipeline through the zoo loader (``load("mogents", model_path, device=...)``)."""
    from hftrainer_mogents.zoo.loader import load

    kwargs = {} if device is None else {"device": device}
    return load("mogents", model_path, **kwargs)


def _generation_kwargs(given: GenerationConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """Every sampling setting of a call: the :class:`GenerationConfig` defaults, then ``given``.

    MoGenTS' own settings are validated here, before anything runs; other keys are passed on
    as they are (another zoo model's ``infer_t2m`` may take settings of its own).
    """
    if isinstance(given, GenerationConfig):
        return given.to_dict()
    given = dict(given or {})
    misplaced = [k for k in ("seed", "batch_size") if k in given]
    if misplaced:
        raise InvalidInputError(
            f"generation_kwargs holds {misplaced}: those are not sampling settings (each batch "
            "gets its own seed from the run's); pass seed= and batch_size= instead"
        )
    ours = {k: v for k, v in given.items() if k in GenerationConfig.__dataclass_fields__}
    return {**GenerationConfig.from_dict(ours).to_dict(), **given}
