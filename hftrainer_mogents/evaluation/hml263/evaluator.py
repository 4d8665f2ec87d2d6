"""``HumanML263Evaluator``: the HumanML3D-263 text-to-motion evaluator and its test protocol.

A converted evaluator folder (``mogents convert-evaluator``) holds::

    evaluator_config.json   format, sizes, sha256 checksums, where it was converted from
    evaluator.safetensors   movement_encoder.* / text_encoder.* / motion_encoder.* weights
    mean.npy, std.npy       (263,) float32 normalisation of the evaluator
    glove_vectors.npy       (V, 300) float32 word vectors
    glove_vocab.json        {"word_to_row": {word: row}}

Nothing is unpickled at run time. The class wires the parts: loading and the host loop come from
:class:`~hftrainer_mogents.evaluation.base.MotionEvaluator`, encoding from :mod:`.encoders`, the
test protocol from :mod:`.protocol`, the real-motion embedding cache from :mod:`.cache` and the
prediction folders from :mod:`.predictions`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.errors import ArtifactFormatError, InvalidInputError
from hftrainer_mogents.evaluation import metrics
from hftrainer_mogents.evaluation.base import CONFIG_FILE, MotionEvaluator, collect_predictions
from hftrainer_mogents.evaluation.hml263 import protocol
from hftrainer_mogents.evaluation.hml263.cache import default_cache_dir
from hftrainer_mogents.evaluation.hml263.dataset import HumanML3DTestSplit, read_test_split
from hftrainer_mogents.evaluation.hml263.draws import RepeatDraws
from hftrainer_mogents.evaluation.hml263.encoders import HML263Encoders
from hftrainer_mogents.evaluation.hml263.networks import (
    HML263EvaluatorConfig,
    HML263EvaluatorNetworks,
)
from hftrainer_mogents.evaluation.hml263.predictions import (
    MANIFEST_FILE,
    MM_DIR,
    collect_mm,
    read_caption_indices,
    rename_legacy_keys,
)
from hftrainer_mogents.evaluation.hml263.protocol import EVALUATOR_NAME
from hftrainer_mogents.evaluation.hml263.published import PUBLISHED_HML263
from hftrainer_mogents.evaluation.hml263.word_vectors import (
    VECTORS_FILE,
    VOCAB_FILE,
    WordVectorizer,
)
from hftrainer_mogents.utils.device import resolve_device
from hftrainer_mogents.utils.io import (
    atomic_save_npy,
    load_safetensors,
    load_state_dict_strict,
    save_safetensors,
)

__all__ = [
    "EVALUATOR_NAME",
    "FORMAT",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "MEAN_FILE",
    "STD_FILE",
    "MANIFEST_FILE",
    "MM_DIR",
    "PUBLISHED",
    "HumanML263Evaluator",
    "collect_predictions",
    "default_cache_dir",
]

# collect_predictions (now in evaluation.base), default_cache_dir (now in .cache), MANIFEST_FILE
# and MM_DIR (now in .predictions) are re-exported here for one release

FORMAT = "hftrainer-mogents-hml263-evaluator-v1"
WEIGHTS_FILE = "evaluator.safetensors"
MEAN_FILE = "mean.npy"
STD_FILE = "std.npy"

# MoGenTS' published numbers, declared once with its zoo benchmark (lists here, as JSON has them)
PUBLISHED: dict[str, Any] = {
    k: list(v) if isinstance(v, tuple) else v for k, v in PUBLISHED_HML263.items()
}


class HumanML263Evaluator(HML263Encoders, MotionEvaluator):
    """HumanML3D-263 text-to-motion evaluator (Guo et al., 2022) with the official protocol.

    Built from its parts, or (as the hftrainer host builds evaluators from a config dict,
    ``EVALUATORS.build(dict(type="HumanML263Evaluator", ckpt_dir=..., dataset_root=...))``) from a
    converted evaluator folder. It serves the host runner's ``reset()`` / ``process(output)`` /
    ``compute()`` loop (see :meth:`compute`).

    Args:
        networks: the three evaluator networks (weights loaded); None with ``ckpt_dir``.
        word_vectorizer: GloVe vectors and POS classes.
        mean: ``(263,)`` normalisation mean.
        std: ``(263,)`` normalisation std.
        dataset_root: default HumanML3D folder of :meth:`evaluate_dir` and :meth:`compute`.
        source: where the weights came from (recorded in reports).
        ckpt_dir: a converted evaluator folder to load instead of the parts (the zoo's keyword).
        device: where to load ``ckpt_dir``.
        dtype: the dtype to load ``ckpt_dir`` in.
        evaluate_kwargs: keyword arguments of :meth:`evaluate` used by :meth:`compute`
            (``n_repeats``, ``seed``, ...).

    Examples:
        >>> ev = HumanML263Evaluator.from_pretrained("checkpoints/evaluators/hml263")  # doctest: +SKIP
        >>> ev.encode_text(["a/DET person/NOUN walk/VERB forward/ADV"]).shape  # doctest: +SKIP
        (1, 512)
        >>> report = ev.evaluate_dir("outputs/pred263", dataset_root="dataset/HumanML3D", seed=0)  # doctest: +SKIP
    """

    name = EVALUATOR_NAME
    artifact_format = FORMAT
    required_files = (WEIGHTS_FILE, MEAN_FILE, STD_FILE, VECTORS_FILE, VOCAB_FILE)
    convert_command = "mogents convert-evaluator"
    checksum_remedy = "re-run the conversion (`mogents convert-evaluator`)"
    folder_keyword = "ckpt_dir"
    parts_names = "networks, word_vectorizer, mean, std"

    def __init__(
        self,
        networks: HML263EvaluatorNetworks | None = None,
        word_vectorizer: WordVectorizer | None = None,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        *,
        dataset_root: str | os.PathLike[str] | None = None,
        source: str | None = None,
        ckpt_dir: str | os.PathLike[str] | None = None,
        device: Any = None,
        dtype: Any = None,
        evaluate_kwargs: Mapping[str, Any] | None = None,
    ):
        self.reset()
        self.evaluate_kwargs: dict[str, Any] = dict(evaluate_kwargs or {})
        if networks is None or word_vectorizer is None or mean is None or std is None:
            self._load_folder(ckpt_dir, device=device, dtype=dtype, dataset_root=dataset_root)
            return
        self.networks = networks.eval()
        self.config: HML263EvaluatorConfig = networks.config
        self.word_vectorizer = word_vectorizer
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != (self.config.dim_pose,) or self.std.shape != self.mean.shape:
            raise ArtifactFormatError(
                f"mean/std must be ({self.config.dim_pose},), got {self.mean.shape} and "
                f"{self.std.shape}"
            )
        if not (np.isfinite(self.std).all() and (self.std > 0).all()):
            raise ArtifactFormatError("std has zero, negative or non-finite entries")
        if word_vectorizer.dim_word != self.config.dim_word:
            raise ArtifactFormatError(
                f"word vectors are {word_vectorizer.dim_word}-d, the text encoder expects "
                f"{self.config.dim_word}"
            )
        self.dataset_root = Path(dataset_root) if dataset_root is not None else None
        self.source = source

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        device: Any = None,
        dtype: Any = None,
        dataset_root: str | os.PathLike[str] | None = None,
        verify_checksums: bool = True,
    ) -> HumanML263Evaluator:
        """Load a converted evaluator folder (safetensors, npy and json only).

        Args:
            path: the folder written by ``mogents convert-evaluator``.
            device: torch device (default: CUDA when available, else CPU).
            dtype: network dtype (default float32, the reference; ``torch.bfloat16`` is faster on
                CPUs and GPUs with bf16 units and drifts slightly, see ``scripts/bench_eval.py``).
            dataset_root: default HumanML3D folder of :meth:`evaluate_dir`.
            verify_checksums: check the sha256 of every file listed in the config.

        Raises:
            ArtifactNotFoundError: the folder or a file is missing.
            ArtifactFormatError: a file is malformed or the weights do not fit.
            ChecksumMismatchError: a file's sha256 differs from the recorded one.
        """
        return super().from_pretrained(
            path,
            verify_checksums=verify_checksums,
            device=device,
            dtype=dtype,
            dataset_root=dataset_root,
        )

    @classmethod
    def _not_converted(cls, folder: Path) -> str:
        return (
            f"{folder / CONFIG_FILE} not found: {folder} is not a converted HumanML3D-263 "
            "evaluator; run `mogents convert-evaluator --checkpoints <checkpoints>` first"
        )

    @classmethod
    def _from_folder(
        cls,
        folder: Path,
        meta: Mapping[str, Any],
        *,
        device: Any = None,
        dtype: Any = None,
        dataset_root: str | os.PathLike[str] | None = None,
    ) -> HumanML263Evaluator:
        import torch

        config = HML263EvaluatorConfig.from_dict(meta.get("config"), name="evaluator config")
        networks = HML263EvaluatorNetworks(config)
        weights = folder / WEIGHTS_FILE
        load_state_dict_strict(networks, load_safetensors(weights), source=str(weights))
        networks.to(device=resolve_device(device), dtype=dtype or torch.float32)
        mean = np.load(folder / MEAN_FILE, allow_pickle=False)
        std = np.load(folder / STD_FILE, allow_pickle=False)
        return cls(
            networks,
            WordVectorizer.from_dir(folder),
            mean,
            std,
            dataset_root=dataset_root,
            source=str(folder),
        )

    def _save_files(self, path: Path) -> tuple[list[str], dict[str, Any]]:
        save_safetensors(
            path / WEIGHTS_FILE, self.networks.state_dict(), metadata={"format": FORMAT}
        )
        atomic_save_npy(path / MEAN_FILE, self.mean)
        atomic_save_npy(path / STD_FILE, self.std)
        self.word_vectorizer.save(path)
        return list(self.required_files), {}

    def _config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    # ------------------------------------------------------------------ the test protocol

    def evaluate(
        self,
        predictions: Mapping[str, np.ndarray | str | os.PathLike[str]] | None = None,
        split: HumanML3DTestSplit | None = None,
        *,
        dataset_root: str | os.PathLike[str] | None = None,
        mm_predictions: Mapping[str, Sequence[np.ndarray | str | os.PathLike[str]]] | None = None,
        caption_indices: Mapping[str, int] | None = None,
        caption_selection: str | None = None,
        n_repeats: int = metrics.N_REPEATS,
        seed: int = 0,
        batch_size: int = metrics.BATCH_SIZE,
        diversity_times: int | None = None,
        mm_times: int = metrics.MM_TIMES,
        strict: bool = False,
        max_samples: int | None = None,
        encode_batch_size: int = 128,
        fid_method: str = "eigh",
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        draws: Sequence[RepeatDraws] | None = None,
        diversity_indices: Sequence[Mapping[str, Any]] | None = None,
        texts_dir: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Run the test protocol: ``n_repeats`` passes of the shuffled test loader, each with
        fresh captions, crop lengths and crop starts, metrics per pass, mean and 95% CI.

        Args:
            predictions: generated motions by entry key (``<id>`` or ``<id>__sub<k>``, the zoo's
                names; the older ``<id>__L<line>`` names are mapped to them), arrays
                ``(T, 263)`` in physical units or ``.npy`` paths; ``None`` scores the real data
                only. Entries without a prediction are left out and counted.
            split: an already read split (instead of ``dataset_root``).
            dataset_root: the HumanML3D folder (default: the one given at construction).
            mm_predictions: for multimodality, repeated generations by key (same caption);
                ``None`` skips multimodality.
            caption_indices: the caption each prediction was generated from (index into the
                entry's captions; default 0).
            caption_selection: ``"generated"`` (score each prediction against its caption; the
                default with predictions) or ``"random"`` (a random caption per pass, the
                reference's choice; the default for real data only).
            n_repeats: passes (20 in the protocol).
            seed: seeds the passes (repeat ``r`` draws from ``default_rng([seed, r])``).
            batch_size: items per batch (R-precision ranks within a batch).
            diversity_times: pairs for diversity (default: 300 above 300 items, else 100).
            mm_times: pairs for multimodality.
            strict: raise when a prediction is missing instead of counting it.
            max_samples: use only the first ids of the split (quick runs).
            encode_batch_size: motions per forward pass (of equal length).
            fid_method: ``"eigh"`` or ``"sqrtm"`` (see ``metrics.frechet_distance``).
            cache_dir: keep the embeddings of the real-motion crops here and reuse them: they
                depend only on the evaluator, the dataset and the crops, not on the model, so a
                second evaluation encodes only the generated motions. The cache file is keyed by
                the weights, mean/std, dtype, device type and the dataset's entries and file
                sizes and times.
            progress: show a progress bar.
            draws: recorded passes to replay instead of random ones (indices refer to the
                entries that have predictions, in split order); sets ``n_repeats``.
            diversity_indices: recorded diversity pairs per pass,
                ``{"real": (first, second), "pred": (first, second)}``.
            texts_dir: the captions (``<id>.txt``) instead of ``<dataset_root>/texts``.

        Returns:
            A JSON-ready dict: ``fid``, ``r_precision`` (top-1/2/3), ``matching_score``,
            ``diversity``, ``multimodality`` (each ``{"mean", "std", "conf"}``: the zoo's mean and
            standard deviation over the passes, and the 95% half-width), their ``*_real``
            counterparts, ``mode``, ``n_repeats``, ``n_samples`` (items scored, before the last
            partial batch is dropped: the zoo's key), ``n_samples_used`` (per pass),
            ``skipped_no_pred``, ``skipped``, ``unmatched_predictions`` (predictions named after
            no test item), ``repeats`` and ``config`` (the zoo's keys among ours).

        Raises:
            ArtifactNotFoundError: no dataset, or (``strict``) a missing prediction.
            ArtifactFormatError: a prediction with a wrong shape or NaN (the file is named).
        """
        split = self._read_split(split, dataset_root, max_samples, texts_dir)
        if predictions is not None:
            predictions, mm_predictions, caption_indices = rename_legacy_keys(
                split, predictions, mm_predictions, caption_indices
            )
        caption_selection = protocol.check_caption_selection(caption_selection, predictions)
        # 1. Which entries have predictions
        unit = self.config.unit_length
        entries, preds, missing = protocol.select_entries(split, predictions, unit, strict=strict)
        # 2. Draw every pass up front
        passes = protocol.plan_passes(
            entries,
            caption_selection=caption_selection,
            caption_indices=caption_indices,
            n_repeats=n_repeats,
            seed=seed,
            batch_size=batch_size,
            diversity_times=diversity_times,
            unit_length=unit,
            draws=draws,
        )
        # 3. Embed every distinct caption and crop the passes need, once
        emb = protocol.embed_passes(
            self,
            split,
            entries,
            preds,
            passes.draws,
            mm_predictions=mm_predictions,
            mm_times=mm_times,
            batch_size=encode_batch_size,
            progress=progress,
            cache_dir=cache_dir,
        )
        # 4. Metrics per pass, then mean and confidence interval
        repeats = protocol.score_passes(
            passes,
            emb,
            batch_size=batch_size,
            mm_times=mm_times,
            fid_method=fid_method,
            diversity_indices=diversity_indices,
        )
        result = protocol.summarize(
            repeats,
            split=split,
            entries=entries,
            predictions=predictions,
            missing=missing,
            mm_note=emb.mm_note,
            n_repeats=len(passes.draws),
        )
        n_used = repeats[0]["n_samples"]
        result["config"] = protocol.report_config(
            self,
            self.source,
            split,
            mode=result["mode"],
            seed=seed,
            n_repeats=len(passes.draws),
            batch_size=batch_size,
            diversity_times=metrics.default_diversity_times(n_used)
            if passes.diversity_times is None
            else passes.diversity_times,
            mm_times=mm_times,
            caption_selection=caption_selection,
            fid_method=fid_method,
        )
        return result

    def evaluate_dir(
        self,
        pred_dir: str | os.PathLike[str] | None = None,
        *,
        dataset_root: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """:meth:`evaluate` on a folder of ``<key>.npy`` predictions (``(T, 263)``, physical
        units), with multimodality from ``<pred_dir>/mm/<key>__r<k>.npy`` when present and the
        caption of each prediction from ``<pred_dir>/generation.json`` when present (else the
        first caption). ``pred_dir=None`` scores the real data only.

        Args:
            pred_dir: the prediction folder.
            dataset_root: the HumanML3D folder (default: the one given at construction).
            kwargs: passed to :meth:`evaluate`.

        Returns:
            See :meth:`evaluate`; ``config.pred_dir`` names the folder.
        """
        if pred_dir is None:
            result = self.evaluate(None, dataset_root=dataset_root, **kwargs)
            result["config"]["pred_dir"] = None
            return result
        pred_dir = Path(pred_dir)
        predictions = collect_predictions(pred_dir)
        mm = collect_mm(pred_dir)
        caption_indices = read_caption_indices(pred_dir)
        kwargs.setdefault("caption_indices", caption_indices)
        result = self.evaluate(
            predictions, dataset_root=dataset_root, mm_predictions=mm or None, **kwargs
        )
        result["config"]["pred_dir"] = str(pred_dir)
        result["config"]["captions_from"] = (
            str(pred_dir / MANIFEST_FILE)
            if caption_indices is not None
            else "first caption of each item"
        )
        return result

    def _read_split(
        self,
        split: HumanML3DTestSplit | None,
        dataset_root: str | os.PathLike[str] | None,
        max_samples: int | None,
        texts_dir: str | os.PathLike[str] | None,
    ) -> HumanML3DTestSplit:
        if split is not None:
            return split
        root = dataset_root if dataset_root is not None else self.dataset_root
        if root is None:
            raise InvalidInputError(
                "no HumanML3D folder: pass dataset_root= (or give it to from_pretrained)"
            )
        return read_test_split(root, max_samples=max_samples, texts_dir=texts_dir)

    # ------------------------------------------------------------------ the host runner's loop

    def _evaluate_gathered(
        self, motions: dict[str, Any], extras: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """:meth:`evaluate` on the dataset at ``dataset_root`` with ``evaluate_kwargs``.

        Each processed batch output holds ``keys`` (test-split keys: ``<id>`` or sub-clip keys),
        ``motions`` (generated ``(T, 263)`` motions in physical units, or a padded batch with
        ``lengths``) and optionally ``caption_indices`` (the caption each motion was generated
        from; default the first).
        """
        kwargs: dict[str, Any] = {"progress": False, **self.evaluate_kwargs}
        if "caption_indices" in extras:
            kwargs.setdefault(
                "caption_indices", {k: int(v) for k, v in extras["caption_indices"].items()}
            )
        return self.evaluate(motions, **kwargs)
