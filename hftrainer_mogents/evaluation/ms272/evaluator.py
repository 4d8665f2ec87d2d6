"""``MotionStreamer272Evaluator``: MotionStreamer's TMR-style evaluator in the 272 representation.

Load a converted folder (``mogents convert-evaluator-ms272``; nothing is unpickled at run time)::

    evaluator_config.json   format, sizes, sha256 checksums, source checkpoint
    evaluator.safetensors   textencoder.* / motionencoder.* (DistilBERT weights included)
    text_model/             DistilBERT config and tokenizer files (no weights needed)
    mean.npy, std.npy       (272,) the dataset normalisation, when given

Motions are given raw (physical units, as the bridge writes them) and normalised here with the
dataset's ``Mean``/``Std`` (stored in the evaluator folder, or read from the dataset's
``mean_std``); each is cut to its length (a multiple of 4), padded, and embedded by the motion
encoder; captions go through DistilBERT's tokenizer untruncated (padding to the longest caption of
a batch). Metrics are those of :mod:`hftrainer_mogents.evaluation.metrics` (Euclidean distances
without L2 normalisation, R-precision within batches of 32, FID with scipy's ``sqrtm``), repeated
``n_repeats`` times over reshuffled batches.

Protocol of :meth:`MotionStreamer272Evaluator.evaluate` and ``evaluate_dir`` (the zoo's, deterministic): every
entry of the test split (``dataset.read_ms272_split``) is one sample; the real motion is taken from
frame 0 at its length floored to 4; the prediction ``<pred_dir>/<key>.npy`` (T, 272) at
``min(that length, its own length floored to 4)``, and is left out (counted) when missing or
shorter than 60 frames; the caption is the entry's first (``caption_selection="first"``, the one
the generation used) or a random one per repeat. Upstream's single pass instead draws a random
caption, a length jitter and a random crop per item; ``pairs="caption"`` gives the zoo's variant of
one sample per caption line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hftrainer_mogents.errors import (
    ArtifactNotFoundError,
    HubUnavailableError,
    InvalidInputError,
)
from hftrainer_mogents.evaluation import metrics
from hftrainer_mogents.evaluation.base import CONFIG_FILE, MotionEvaluator, collect_predictions
from hftrainer_mogents.evaluation.ms272 import protocol
from hftrainer_mogents.evaluation.ms272.dataset import (
    MS272Split,
    load_mean_std,
    read_ms272_split,
)
from hftrainer_mogents.evaluation.ms272.encoders import MS272Encoders
from hftrainer_mogents.utils.device import resolve_device
from hftrainer_mogents.utils.io import (
    atomic_save_npy,
    atomic_write_bytes,
    load_safetensors,
    load_state_dict_strict,
    save_safetensors,
)

__all__ = [
    "EVALUATOR_NAME",
    "FORMAT",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "TEXT_MODEL_DIR",
    "TEXT_MODEL_FILES",
    "MEAN_FILE",
    "STD_FILE",
    "PARTS",
    "REFERENCE",
    "MotionStreamer272Evaluator",
]

logger = logging.getLogger(__name__)

EVALUATOR_NAME = "ms272"
FORMAT = "hftrainer-mogents-ms272-evaluator-v1"
WEIGHTS_FILE = "evaluator.safetensors"
TEXT_MODEL_DIR = "text_model"
# what the tokenizer and the model config need; weights come from the evaluator checkpoint
TEXT_MODEL_FILES = (
    "config.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.txt",
    "special_tokens_map.json",
)
MEAN_FILE = "mean.npy"
STD_FILE = "std.npy"
PARTS = ("textencoder", "motionencoder")  # weight-name prefixes of the two encoders
# numbers reported by the zoo's notes (not re-derived): real data, and MoGenTS through the zoo bridge
REFERENCE: dict[str, Any] = {
    "source": "hftrainer zoo notes (unconfirmed): real data; MoGenTS via the zoo's IK bridge",
    "fid": 20.19,
    "r_precision": [None, None, 0.7354],
    "matching_score": 19.54,
    "r_precision_real": [0.706, None, None],
    "diversity_real": 27.36,
    "matching_score_real": 15.01,
}


class MotionStreamer272Evaluator(MS272Encoders, MotionEvaluator):
    """Text and motion encoders of MotionStreamer's evaluator, and the evaluation protocol.

    Build it with :meth:`from_pretrained` (the converter builds it from the checkpoint's networks
    and writes it with :meth:`save_pretrained`), or as the hftrainer host builds evaluators from
    a config dict: ``EVALUATORS.build(dict(type="MotionStreamer272Evaluator",
    evaluator_ckpt=<folder>, data_root=<humanml3d_272>))``. It serves the host runner's
    ``reset()`` / ``process(output)`` / ``compute()`` loop (see :meth:`compute`).

    Args:
        text_encoder: the DistilBERT text encoder (:class:`.networks.TextEncoder`).
        motion_encoder: the motion encoder (:class:`.networks.MotionEncoder`).
        tokenizer: DistilBERT's tokenizer.
        mean: (272,) dataset normalisation, or None (then given per call).
        std: (272,).
        source: where the evaluator was loaded from (recorded in reports).
        text_model: the text model's name (hub id or path), recorded in the folder (default: the
            tokenizer's ``name_or_path``).
        text_model_dir: a local folder holding the text model's config and tokenizer files,
            copied into the folder by :meth:`save_pretrained`.
        evaluator_ckpt: a converted evaluator folder to load instead of the parts (the zoo's
            keyword); ``device`` and ``local_files_only`` as :meth:`from_pretrained`.
        data_root: the ``humanml3d_272`` folder :meth:`compute` scores against.
        evaluate_kwargs: keyword arguments of :meth:`evaluate` used by :meth:`compute`.
    """

    name = EVALUATOR_NAME
    artifact_format = FORMAT
    convert_command = "mogents convert-evaluator-ms272"
    folder_keyword = "evaluator_ckpt"
    parts_names = "text_encoder, motion_encoder, tokenizer"

    def __init__(
        self,
        text_encoder: Any = None,
        motion_encoder: Any = None,
        tokenizer: Any = None,
        *,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        source: str | None = None,
        text_model: str | None = None,
        text_model_dir: str | os.PathLike[str] | None = None,
        evaluator_ckpt: str | os.PathLike[str] | None = None,
        data_root: str | os.PathLike[str] | None = None,
        device: str | None = None,
        local_files_only: bool = False,
        evaluate_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.reset()
        self.data_root = Path(data_root) if data_root is not None else None
        self.evaluate_kwargs: dict[str, Any] = dict(evaluate_kwargs or {})
        if text_encoder is None or motion_encoder is None or tokenizer is None:
            self._load_folder(
                evaluator_ckpt,
                keep=("data_root",),
                device=device,
                local_files_only=local_files_only,
            )
            return
        self.text_encoder = text_encoder.eval()
        self.motion_encoder = motion_encoder.eval()
        self.tokenizer = tokenizer
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else np.asarray(std, dtype=np.float32)
        self.source = source
        self.text_model = text_model or getattr(tokenizer, "name_or_path", None)
        self.text_model_dir = Path(text_model_dir) if text_model_dir is not None else None

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | None = None,
        local_files_only: bool = False,
        verify_checksums: bool = True,
    ) -> MotionStreamer272Evaluator:
        """Load a converted evaluator folder.

        The DistilBERT tokenizer and config come from ``<path>/text_model``, or, when that folder
        is absent, from the hub model the folder names (``local_files_only`` for the cache only).

        Raises:
            ArtifactNotFoundError: not a converted folder (the message says how to convert).
            ChecksumMismatchError: a file differs from the recorded checksum.
        """
        return super().from_pretrained(
            path,
            verify_checksums=verify_checksums,
            device=device,
            local_files_only=local_files_only,
        )

    @classmethod
    def _not_converted(cls, folder: Path) -> str:
        hint = ""
        if list(folder.glob("*.ckpt")):
            hint = " It holds a Lightning checkpoint: convert it once with "
            hint += "`mogents convert-evaluator-ms272 --ckpt <file.ckpt> --out-dir <dir>`."
        return f"{folder} is not a converted MotionStreamer-272 evaluator (no {CONFIG_FILE}).{hint}"

    @classmethod
    def _from_folder(
        cls,
        folder: Path,
        meta: Mapping[str, Any],
        *,
        device: str | None = None,
        local_files_only: bool = False,
    ) -> MotionStreamer272Evaluator:
        from transformers import AutoConfig, AutoTokenizer

        from hftrainer_mogents.evaluation.ms272.networks import (
            MotionEncoder,
            MS272EvaluatorConfig,
            TextEncoder,
            build_text_model,
        )

        config = MS272EvaluatorConfig.from_dict(meta.get("config"), name="ms272 evaluator")
        text_dir = folder / meta.get("text_model_dir", TEXT_MODEL_DIR)
        local_text = (text_dir / "config.json").is_file()
        source = str(text_dir) if local_text else meta["text_model"]
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
            text_cfg = AutoConfig.from_pretrained(source, local_files_only=local_files_only)
        except OSError as err:
            raise HubUnavailableError(
                f"cannot load the text model {source!r} ({err}); convert the evaluator with a "
                "local text model folder so it is stored inside"
            ) from err
        text = TextEncoder(config, build_text_model(text_cfg))
        motion = MotionEncoder(config)
        weights_path = folder / WEIGHTS_FILE
        weights = load_safetensors(weights_path)
        for prefix, module in zip(PARTS, (text, motion)):
            part = {
                k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(prefix + ".")
            }
            load_state_dict_strict(module, part, source=f"{weights_path} {prefix}")
        mean = std = None
        if (folder / MEAN_FILE).is_file():
            mean, std = load_mean_std(folder)
        dev = resolve_device(device)
        return cls(
            text.to(dev),
            motion.to(dev),
            tokenizer,
            mean=mean,
            std=std,
            source=str(folder),
            text_model=meta.get("text_model"),
            text_model_dir=text_dir if local_text else None,
        )

    def _save_files(self, path: Path) -> tuple[list[str], dict[str, Any]]:
        state = {
            f"{prefix}.{k}": v
            for prefix, module in zip(PARTS, (self.text_encoder, self.motion_encoder))
            for k, v in module.state_dict().items()
        }
        save_safetensors(path / WEIGHTS_FILE, state, metadata={"format": FORMAT})
        written = [WEIGHTS_FILE]
        if self.text_model_dir is not None:
            for name in TEXT_MODEL_FILES:
                if (self.text_model_dir / name).is_file():
                    # read before writing: the source may be this very folder
                    data = (self.text_model_dir / name).read_bytes()
                    atomic_write_bytes(path / TEXT_MODEL_DIR / name, data)
                    written.append(f"{TEXT_MODEL_DIR}/{name}")
        for name, stat in ((MEAN_FILE, self.mean), (STD_FILE, self.std)):
            if self.mean is not None and self.std is not None:
                atomic_save_npy(path / name, stat)
                written.append(name)
            else:  # a stale copy would be loaded as this evaluator's statistics
                (path / name).unlink(missing_ok=True)
        extra = {
            "text_model": self.text_model,
            "text_model_dir": TEXT_MODEL_DIR,
            "has_mean_std": self.mean is not None and self.std is not None,
        }
        return written, extra

    def _config_dict(self) -> dict[str, Any]:
        return self.motion_encoder.config.to_dict()

    # ------------------------------------------------------------------ protocol

    def evaluate(
        self,
        predictions: Mapping[str, np.ndarray | str | os.PathLike[str]] | None = None,
        split: MS272Split | str = "test",
        *legacy: Any,
        data_root: str | os.PathLike[str] | None = None,
        split_file: str | os.PathLike[str] | None = None,
        caption_selection: Literal["first", "random"] | None = None,
        pairs: Literal["entry", "caption"] = "entry",
        strict: bool = False,
        max_samples: int | None = None,
        n_repeats: int = metrics.N_REPEATS,
        seed: int = 0,
        batch_size: int = metrics.BATCH_SIZE,
        diversity_times: int | None = None,
        **legacy_options: Any,
    ) -> dict[str, Any]:
        """Score generated motions on the test split with the protocol (see the module doc).

        The aligned-list form of earlier releases, ``evaluate(captions, real_motions,
        pred_motions=None, **options)``, is still accepted and served by :meth:`evaluate_pairs`.

        Args:
            predictions: generated motions by test-split key, ``(T, 272)`` raw (physical units,
                30 fps) arrays or ``.npy`` paths; ``None`` scores the real data only. Entries
                without a prediction are left out and counted.
            split: the test split, read (:func:`~.dataset.read_ms272_split`) or its name in
                ``data_root``.
            data_root: the ``humanml3d_272`` folder (default: the one given at construction).
            split_file: explicit id list.
            caption_selection: ``"first"`` (default with predictions) or ``"random"`` (default
                for the real data only).
            pairs: one sample per entry, or one per caption line (the zoo's variant).
            strict: fail on a missing prediction instead of leaving the entry out.
            max_samples: only the first ids of the split.
            n_repeats: passes.
            seed: seeds the passes.
            batch_size: R-precision batch size.
            diversity_times: diversity pairs.

        Returns:
            The zoo's keys (``fid``, ``fid_std``, ``r_precision_real``/``_pred`` (+``_std``),
            ``matching_score_real``/``_pred``, ``diversity_real``/``_pred``, ``n_samples_used``,
            ``n_repeats``) plus ``summary`` (mean and 95% CI per metric), ``repeats``,
            ``skipped_no_pred``, ``skipped_short_pred``, ``n_entries``, ``n_evaluated`` and
            ``config``.
        """
        if predictions is not None and not isinstance(predictions, Mapping):
            # the aligned-list form: evaluate(captions, real_motions, pred_motions, ...)
            positional = legacy if "real_motions" in legacy_options else (split, *legacy)
            return self.evaluate_pairs(
                predictions,
                *positional,
                caption_selection=caption_selection or "first",
                n_repeats=n_repeats,
                seed=seed,
                batch_size=batch_size,
                diversity_times=diversity_times,
                **legacy_options,
            )
        if legacy or legacy_options:
            raise TypeError(f"evaluate() got unexpected arguments {list(legacy_options) or legacy}")
        if isinstance(split, MS272Split):
            data, root = split, data_root if data_root is not None else split.root
        else:
            root = data_root if data_root is not None else self.data_root
            if root is None:
                raise InvalidInputError(
                    "no humanml3d_272 folder: pass data_root= (or build the evaluator with "
                    "data_root=)"
                )
            data = read_ms272_split(
                root, split=split, split_file=split_file, max_samples=max_samples
            )
        if pairs not in ("entry", "caption"):
            raise InvalidInputError(f"pairs must be 'entry' or 'caption', got {pairs!r}")
        mean, std = self.mean, self.std
        if (Path(root) / "mean_std").is_dir():
            mean, std = load_mean_std(Path(root) / "mean_std")
        gt_only = predictions is None
        selection = caption_selection or ("random" if gt_only else "first")
        samples = protocol.pair_samples(data, predictions, pairs=pairs, strict=strict)
        if samples.missing:
            logger.warning("%d entries have no prediction (left out)", len(samples.missing))
        result = self.evaluate_pairs(
            samples.captions,
            samples.reals,
            None if gt_only else samples.preds,
            mean=mean,
            std=std,
            caption_selection=selection,
            n_repeats=n_repeats,
            seed=seed,
            batch_size=batch_size,
            diversity_times=diversity_times,
        )
        result["skipped_no_pred"] = len(samples.missing)
        result["skipped_short_pred"] = len(samples.short)
        result["n_entries"] = len(data.entries)
        result["n_evaluated"] = len(samples.captions)
        result["config"] = protocol.report_config(
            self.source,
            root,
            data,
            gt_only=gt_only,
            batch_size=batch_size,
            caption_selection=selection,
            pairs=pairs,
            seed=seed,
            split=split if isinstance(split, str) else None,
        )
        return result

    def evaluate_pairs(
        self,
        captions: Sequence[str] | Sequence[Sequence[str]],
        real_motions: Sequence[np.ndarray],
        pred_motions: Sequence[np.ndarray] | None = None,
        *,
        real_lengths: Sequence[int] | None = None,
        pred_lengths: Sequence[int] | None = None,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        caption_selection: Literal["first", "random"] = "first",
        n_repeats: int = metrics.N_REPEATS,
        seed: int = 0,
        batch_size: int = metrics.BATCH_SIZE,
        diversity_times: int | None = None,
    ) -> dict[str, Any]:
        """Metrics of real (and generated) motions against their captions.

        Args:
            captions: one caption per sample, or a list of candidate captions per sample.
            real_motions: N raw (T, 272) real motions.
            pred_motions: N raw generated motions, or None (real-data metrics only).
            real_lengths: frames used of each real motion (default all, floored to 4).
            pred_lengths: frames used of each generated motion (default all, floored to 4).
            mean: (272,) normalisation instead of the stored one.
            std: (272,).
            caption_selection: the first candidate, or a random one per repeat.
            n_repeats: passes over reshuffled batches.
            seed: seeds the passes.
            batch_size: samples ranked together in R-precision.
            diversity_times: diversity pairs (default 300 above 300 samples, else 100).

        Returns:
            The zoo's keys (``fid``, ``fid_std``, ``r_precision_real``/``_pred`` (+``_std``),
            ``matching_score_real``/``_pred``, ``diversity_real``/``_pred``, ``n_samples_used``,
            ``n_repeats``) plus ``summary`` (mean and 95% CI per metric) and ``repeats``.
        """
        return protocol.score_samples(
            self,
            captions,
            real_motions,
            pred_motions,
            real_lengths=real_lengths,
            pred_lengths=pred_lengths,
            mean=mean,
            std=std,
            caption_selection=caption_selection,
            n_repeats=n_repeats,
            seed=seed,
            batch_size=batch_size,
            diversity_times=diversity_times,
        )

    def evaluate_dir(
        self,
        pred_dir: str | os.PathLike[str] | None = None,
        *,
        data_root: str | os.PathLike[str],
        split: str = "test",
        split_file: str | os.PathLike[str] | None = None,
        gt_only: bool = False,
        caption_selection: Literal["first", "random"] | None = None,
        pairs: Literal["entry", "caption"] = "entry",
        strict: bool = False,
        max_samples: int | None = None,
        n_repeats: int = metrics.N_REPEATS,
        seed: int = 0,
        batch_size: int = metrics.BATCH_SIZE,
        diversity_times: int | None = None,
    ) -> dict[str, Any]:
        """Evaluate a folder of predictions (``<key>.npy``, (T, 272) raw, 30 fps) on the test split.

        Args:
            pred_dir: the predictions (None with ``gt_only``).
            data_root: the ``humanml3d_272`` folder.
            split: split name.
            split_file: explicit id list.
            gt_only: score the real data only.
            caption_selection: ``"first"`` (default with predictions) or ``"random"`` (default
                with ``gt_only``).
            pairs: one sample per entry, or one per caption line (the zoo's variant).
            strict: fail on a missing prediction instead of leaving the entry out.
            max_samples: only the first ids of the split.
            n_repeats: passes.
            seed: seeds the passes.
            batch_size: R-precision batch size.
            diversity_times: diversity pairs.

        Returns:
            See :meth:`evaluate`; ``config.pred_dir`` names the folder.
        """
        if not gt_only and pred_dir is None:
            raise InvalidInputError("evaluate_dir needs pred_dir (or gt_only=True)")
        predictions = None
        if not gt_only:
            folder = Path(pred_dir)  # type: ignore[arg-type]
            if not folder.is_dir():
                raise ArtifactNotFoundError(f"prediction folder not found: {folder}")
            predictions = collect_predictions(folder)
        result = self.evaluate(
            predictions,
            split,
            data_root=data_root,
            split_file=split_file,
            caption_selection=caption_selection,
            pairs=pairs,
            strict=strict,
            max_samples=max_samples,
            n_repeats=n_repeats,
            seed=seed,
            batch_size=batch_size,
            diversity_times=diversity_times,
        )
        result["config"]["pred_dir"] = None if predictions is None else str(pred_dir)
        return result

    # ------------------------------------------------------------------ the host runner's loop

    def _evaluate_gathered(
        self, motions: dict[str, Any], extras: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """:meth:`evaluate` on ``data_root`` with ``evaluate_kwargs``.

        Each processed batch output holds ``keys`` (test-split keys) and ``motions`` (generated
        ``(T, 272)`` motions, raw, 30 fps, or a padded batch with ``lengths``).
        """
        if self.data_root is None:
            raise InvalidInputError(
                "compute() needs the humanml3d_272 folder: build the evaluator with data_root="
            )
        kwargs = dict(self.evaluate_kwargs)
        predictions = None if kwargs.pop("gt_only", False) else motions
        return self.evaluate(predictions, data_root=self.data_root, **kwargs)
