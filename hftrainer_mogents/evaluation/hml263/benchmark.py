"""The HumanML3D-263 benchmark as one call: generate the test split (optional), evaluate the
prediction folder, write ``verify_hml263.json`` and ``.md``.

Every front-end runs it: ``mogents evaluate hml263``, ``scripts/verify_evaluators.py --which
hml263`` and, through :func:`run_from_spec`, the zoo's benchmark entry
(``mogents-humanml3d-test``), which a zoo runner calls knowing only the spec::

    run_from_spec(spec, dataset_root=..., evaluator_dir=..., out_dir=..., model_path=None, seed=None)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.evaluation.base import (
    check_coverage,
    check_scoring_options,
    collect_predictions,
)
from hftrainer_mogents.evaluation.hml263 import split_generation
from hftrainer_mogents.evaluation.hml263.dataset import read_test_split
from hftrainer_mogents.evaluation.hml263.predictions import rename_legacy_keys
from hftrainer_mogents.evaluation.hml263.published import PUBLISHED_HML263
from hftrainer_mogents.evaluation.hml263.split_generation import (
    MM_REPEATS,
    TextToMotionGenerator,
    generate_test_split,
)
from hftrainer_mogents.generation_config import GenerationConfig

__all__ = [
    "CAPTION_SELECTIONS",
    "EVALUATOR_DTYPES",
    "PUBLISHED_HML263",
    "run_benchmark",
    "run_from_spec",
]

logger = logging.getLogger(__name__)

# the --dtype / --hml263-dtype values and the evaluator precision they select
EVALUATOR_DTYPES = ("fp32", "bf16")
# what --hml263-caption-selection may say (``None``: the evaluator's default)
CAPTION_SELECTIONS = ("generated", "first", "random")


def run_benchmark(
    pred_dir: str | os.PathLike[str] | None,
    *,
    dataset_root: str | os.PathLike[str],
    evaluator_dir: str | os.PathLike[str],
    report_dir: str | os.PathLike[str] | None = None,
    generate: bool = True,
    model_path: str | None = None,
    generator: TextToMotionGenerator | None = None,
    device: str | None = None,
    dtype: str = "fp32",
    gt_only: bool = False,
    split_file: str | os.PathLike[str] | None = None,
    max_samples: int | None = None,
    texts_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    n_repeats: int = 20,
    generation_kwargs: GenerationConfig | Mapping[str, Any] | None = None,
    batch_size: int = 32,
    mm_samples: int | None = None,
    mm_repeats: int = MM_REPEATS,
    num_shards: int | None = None,
    shard_index: int | None = None,
    skip_existing: bool = True,
    strict: bool = False,
    allow_missing: bool = False,
    caption_selection: str | None = None,
    diversity_times: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The HumanML3D test benchmark: generate the split into ``pred_dir`` (with ``generate``),
    then (unsharded runs) evaluate it and write ``verify_hml263.{json,md}`` into ``report_dir``.

    Args:
        pred_dir: prediction folder (``<key>.npy``, ``(T, 263)`` at 20 fps); ``None`` only with
            ``gt_only`` and without ``generate``.
        dataset_root: the HumanML3D folder.
        evaluator_dir: the converted evaluator (``mogents convert-evaluator``).
        report_dir: folder of the reports (default: ``<pred_dir>/metrics``, or ``metrics``).
        generate: generate the split first (with ``generator``, else the model at
            ``model_path``); ``False`` scores the folder as it is.
        model_path: artifact or hub id of the model (default: the zoo's default artifact).
        generator: an object with ``infer_t2m`` (default: the MoGenTS pipeline).
        device: device of the generator and the evaluator (default: CUDA when available).
        dtype: evaluator precision, ``"fp32"`` (the reference) or ``"bf16"`` (faster on bf16
            hardware, drifts slightly).
        gt_only: score the real data only.
        split_file: an id list instead of the folder's ``test.txt``.
        max_samples: first ids of the split only (quick runs).
        texts_dir: the captions (``<id>.txt``) instead of ``<dataset_root>/texts``, for the
            generation and the evaluation (the zoo's ``--hml263-texts-dir``).
        seed: seeds generation and evaluation.
        n_repeats: evaluation passes.
        generation_kwargs: sampling settings, a
            :class:`~hftrainer_mogents.generation_config.GenerationConfig` or keyword arguments
            of ``infer_t2m`` (missing settings: the ``GenerationConfig`` defaults).
        batch_size: generation batch size.
        mm_samples: multimodality items (0: none; None: 96, fewer on a small split).
        mm_repeats: generations per multimodality item.
        num_shards: generation shards; with more than one, only this shard generates and the
            evaluation is left for a final unsharded call (``skip_existing`` then skips all).
        shard_index: this shard.
        skip_existing: resume an interrupted generation.
        strict: fail on a missing prediction (the default; kept for older callers).
        allow_missing: score the items that have a prediction when some are missing (the
            report then says it is over a subset, not comparable to the published numbers);
            without it a missing prediction fails before the evaluator loads.
        caption_selection: caption scored per item: ``"generated"`` (from ``generation.json``,
            else the first), ``"first"``, ``"random"`` (one per repeat), or ``None`` for the
            evaluator's default (generated with predictions, random with ``gt_only``).
        diversity_times: diversity pairs (default: 300 above 300 samples, else 100, capped by
            the samples of a pass with a warning).
        cache_dir: cache of the real-motion embeddings (see ``HumanML263Evaluator.evaluate``).
        progress: progress bars.

    Returns:
        ``{"generation": summary or None, "metrics": result or None, "reports": (json_path,
        md_path) or None, "coverage": Coverage or None}``; ``metrics`` and ``reports`` are
        ``None`` after a sharded generation; ``coverage`` names the missing and unmatched
        predictions (``None`` with ``gt_only``).

    Raises:
        InvalidInputError: bad settings (``n_repeats`` or ``diversity_times`` below 1, ...).
        ArtifactNotFoundError: predictions missing without ``allow_missing``.
    """
    import torch

    from hftrainer_mogents.evaluation.hml263.evaluator import HumanML263Evaluator
    from hftrainer_mogents.evaluation.hml263.report import write_hml263_report
    from hftrainer_mogents.utils.sharding import resolve_shard

    check_scoring_options(n_repeats, diversity_times, strict=strict, allow_missing=allow_missing)
    if dtype not in EVALUATOR_DTYPES:
        raise InvalidInputError(f"dtype must be one of {EVALUATOR_DTYPES}, got {dtype!r}")
    if caption_selection is not None and caption_selection not in CAPTION_SELECTIONS:
        raise InvalidInputError(
            f"caption_selection must be one of {CAPTION_SELECTIONS} or None, "
            f"got {caption_selection!r}"
        )
    if pred_dir is None and (generate or not gt_only):
        raise InvalidInputError("give a prediction folder (or score the real data only)")
    split = read_test_split(
        dataset_root, split_file=split_file, max_samples=max_samples, texts_dir=texts_dir
    )
    summary = None
    if generate:
        num_shards, shard_index = resolve_shard(num_shards, shard_index)
        if generator is None:  # looked up on the module, where tests put a stand-in
            generator = split_generation.load_generator(model_path, device=device)
        summary = generate_test_split(
            generator,
            None,
            pred_dir,  # type: ignore[arg-type]  # checked above
            split=split,
            seed=seed,
            generation_kwargs=generation_kwargs,
            batch_size=batch_size,
            mm_samples=mm_samples,
            mm_repeats=mm_repeats,
            num_shards=num_shards,
            shard_index=shard_index,
            skip_existing=skip_existing,
            progress=progress,
        )
        if num_shards > 1:
            logger.info("sharded generation: evaluate once every shard has finished")
            return {"generation": summary, "metrics": None, "reports": None, "coverage": None}
    coverage = None
    if not gt_only:
        found = collect_predictions(pred_dir)  # type: ignore[arg-type]  # checked above
        predictions, _, _ = rename_legacy_keys(split, found, None, None)
        coverage = check_coverage(
            [e.key for e in split.entries],
            predictions,
            pred_dir=pred_dir,
            allow_missing=allow_missing,
        )
    evaluator = HumanML263Evaluator.from_pretrained(
        evaluator_dir,
        device=device,
        dtype=torch.bfloat16 if dtype == "bf16" else torch.float32,
    )
    kwargs: dict[str, Any] = {}
    if caption_selection == "first":  # every item scored against its first caption
        kwargs.update(caption_selection="generated", caption_indices={})
    elif caption_selection is not None:
        kwargs["caption_selection"] = caption_selection
    result = evaluator.evaluate_dir(
        None if gt_only else pred_dir,
        split=split,
        n_repeats=n_repeats,
        seed=seed,
        strict=False,  # checked above, with the CLI's words
        diversity_times=diversity_times,
        cache_dir=cache_dir,
        progress=progress,
        **kwargs,
    )
    result["config"]["caption_selection_flag"] = caption_selection
    if report_dir is None:
        report_dir = Path(pred_dir) / "metrics" if pred_dir is not None else Path("metrics")
    note = None if coverage is None else coverage.subset_note()
    if note is not None:
        result["subset_note"] = note
    reports = write_hml263_report(result, report_dir)
    return {"generation": summary, "metrics": result, "reports": reports, "coverage": coverage}


def run_from_spec(
    spec: Any,
    *,
    dataset_root: str | os.PathLike[str],
    evaluator_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    model_path: str | os.PathLike[str] | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The zoo's benchmark entry: run a :class:`~hftrainer_mogents.zoo.specs.BenchmarkSpec`
    end to end with only what a zoo runner has (the spec's calling convention).

    Generates the HumanML3D test split into ``out_dir`` (``<key>.npy``, ``mm/``,
    ``generation.json``) with the spec's sampling settings, seed and batch size, scores it and
    writes ``<out_dir>/metrics/verify_hml263.{json,md}``. Nothing else is asked for: on a small
    split the protocol's sizes adapt (fewer multimodality texts, fewer diversity pairs, each
    with a warning); an interrupted run resumes.

    Args:
        spec: the benchmark spec (``evaluator`` ``"hml263"``, ``split`` ``"test"``).
        dataset_root: the HumanML3D folder.
        evaluator_dir: the converted evaluator (``mogents convert-evaluator``).
        out_dir: the prediction folder; the reports go to ``<out_dir>/metrics``.
        model_path: a MoGenTS artifact folder or hub id (default: the model's default artifact).
        seed: the run's seed (default: ``spec.seed``).

    Returns:
        :func:`run_benchmark`'s dict: ``generation`` (summary), ``metrics``, ``reports``.

    Raises:
        InvalidInputError: a spec for another evaluator or split, or bad sampling settings.
    """
    if getattr(spec, "evaluator", None) != "hml263" or getattr(spec, "split", None) != "test":
        raise InvalidInputError(
            f"run_from_spec runs the HumanML3D-263 test benchmark; got evaluator "
            f"{getattr(spec, 'evaluator', None)!r}, split {getattr(spec, 'split', None)!r}"
        )
    settings = GenerationConfig.from_dict(dict(spec.generation_kwargs))
    out = Path(out_dir)
    return run_benchmark(
        out,
        dataset_root=dataset_root,
        evaluator_dir=evaluator_dir,
        report_dir=out / "metrics",
        model_path=None if model_path is None else str(model_path),
        seed=int(spec.seed if seed is None else seed),
        generation_kwargs=settings,
        batch_size=int(spec.batch_size),
    )
