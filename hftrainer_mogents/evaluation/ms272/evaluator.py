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

Protocol of :meth:`MotionStreamer272Evaluator.evaluate_dir` (the zoo's, deterministic): every
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

from hftrainer_mogents.config import floor_to_unit
from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    HubUnavailableError,
    InvalidInputError,
)
from hftrainer_mogents.evaluation import metrics
from hftrainer_mogents.evaluation.ms272.dataset import (
    MAX_LENGTH,
    MIN_LENGTH,
    UNIT_LENGTH,
    MS272Split,
    load_mean_std,
    read_ms272_split,
)
from hftrainer_mogents.host_compat import HostEvaluatorMixin, flatten_metrics
from hftrainer_mogents.utils.device import resolve_device
from hftrainer_mogents.utils.io import (
    atomic_save_npy,
    atomic_write_bytes,
    atomic_write_json,
    check_checksums,
    checksum_map,
    load_safetensors,
    load_state_dict_strict,
    read_json,
    save_safetensors,
)
from hftrainer_mogents.utils.precision import full_fp32

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
CONFIG_FILE = "evaluator_config.json"
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


class MotionStreamer272Evaluator(HostEvaluatorMixin):
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
        evaluate_kwargs: keyword arguments of :meth:`evaluate_dir` used by :meth:`compute`.
    """

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
            self._load_parts(evaluator_ckpt, device=device, local_files_only=local_files_only)
            return
        self.text_encoder = text_encoder.eval()
        self.motion_encoder = motion_encoder.eval()
        self.tokenizer = tokenizer
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else np.asarray(std, dtype=np.float32)
        self.source = source
        self.text_model = text_model or getattr(tokenizer, "name_or_path", None)
        self.text_model_dir = Path(text_model_dir) if text_model_dir is not None else None

    @property
    def device(self) -> Any:
        """Device of the encoders."""
        return next(self.motion_encoder.parameters()).device

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
        from transformers import AutoConfig, AutoTokenizer

        from hftrainer_mogents.evaluation.ms272.networks import (
            MotionEncoder,
            MS272EvaluatorConfig,
            TextEncoder,
            build_text_model,
        )

        folder = Path(path)
        meta_path = folder / CONFIG_FILE
        if not meta_path.is_file():
            hint = ""
            if list(folder.glob("*.ckpt")):
                hint = " It holds a Lightning checkpoint: convert it once with "
                hint += "`mogents convert-evaluator-ms272 --ckpt <file.ckpt> --out-dir <dir>`."
            raise ArtifactNotFoundError(
                f"{folder} is not a converted MotionStreamer-272 evaluator (no {CONFIG_FILE}).{hint}"
            )
        meta = read_json(meta_path)
        if meta.get("format") != FORMAT:
            raise ArtifactFormatError(
                f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT}"
            )
        if verify_checksums:
            check_checksums(
                folder,
                meta.get("checksums", {}),
                recorded_in=CONFIG_FILE,
                remedy="convert the evaluator again",
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

    def save_pretrained(
        self, path: str | os.PathLike[str], *, provenance: Mapping[str, Any] | None = None
    ) -> Path:
        """Write the evaluator folder (see the module doc) with sha256 checksums; the text
        model's config and tokenizer files are copied from :attr:`text_model_dir` when known.

        Args:
            path: target folder (created; files replaced atomically).
            provenance: recorded under ``"source"`` in the config.

        Returns:
            The folder.

        Raises:
            InvalidInputError: ``path`` is a file.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"{path} is a file; save_pretrained needs a folder")
        path.mkdir(parents=True, exist_ok=True)
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
        atomic_write_json(
            path / CONFIG_FILE,
            {
                "format": FORMAT,
                "evaluator": EVALUATOR_NAME,
                "config": self.motion_encoder.config.to_dict(),
                "text_model": self.text_model,
                "text_model_dir": TEXT_MODEL_DIR,
                "has_mean_std": self.mean is not None and self.std is not None,
                "checksums": checksum_map(path, written),
                "source": dict(provenance or {}),
            },
        )
        return path

    # ------------------------------------------------------------------ encoders

    def encode_text(self, captions: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Embeddings of captions (untruncated, padded to the longest of each batch).

        Args:
            captions: N strings.
            batch_size: captions per forward pass.

        Returns:
            (N, D) float32.
        """
        import torch

        if any(not isinstance(c, str) or not c.strip() for c in captions):
            raise InvalidInputError("captions must be non-empty strings")
        out = []
        with torch.inference_mode(), full_fp32():
            for start in range(0, len(captions), batch_size):
                enc = self.tokenizer(
                    list(captions[start : start + batch_size]), return_tensors="pt", padding=True
                )
                res = self.text_encoder(
                    enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
                )
                out.append(res.mu.float().cpu().numpy())
        width = self.motion_encoder.config.latent_dim
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)

    def normalize(
        self, motion: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None
    ) -> np.ndarray:
        """``(motion - Mean) / Std`` with the given or stored statistics."""
        mean = self.mean if mean is None else mean
        std = self.std if std is None else std
        if mean is None or std is None:
            raise InvalidInputError(
                "no Mean/Std: this evaluator folder has none; pass the dataset's "
                "(humanml3d_272/mean_std) or evaluate with data_root"
            )
        return ((np.asarray(motion, np.float32) - mean) / std).astype(np.float32)

    def encode_motion(
        self,
        motions: Sequence[np.ndarray],
        lengths: Sequence[int] | None = None,
        *,
        normalized: bool = False,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Embeddings of motions.

        Args:
            motions: N arrays (T_i, 272), raw unless ``normalized``.
            lengths: frames used of each (default: all); at most 300.
            normalized: inputs are already normalised.
            mean: (272,) statistics instead of the stored ones.
            std: (272,).
            batch_size: motions per forward pass (padded to the longest of the batch, which
                gives the same embedding as upstream's padding to 300).

        Returns:
            (N, D) float32.
        """
        import torch

        lens = [len(m) for m in motions] if lengths is None else [int(n) for n in lengths]
        if len(lens) != len(motions):
            raise InvalidInputError(f"{len(motions)} motions but {len(lens)} lengths")
        crops = []
        for i, (motion, n) in enumerate(zip(motions, lens)):
            m = np.asarray(motion)
            if m.ndim != 2 or m.shape[1] != 272:
                raise InvalidInputError(f"motion {i}: expected (T, 272), got {m.shape}")
            if not 1 <= n <= min(len(m), MAX_LENGTH):
                raise InvalidInputError(f"motion {i}: length {n} outside [1, min(T, 300)]")
            crop = m[:n] if normalized else self.normalize(m[:n], mean, std)
            if not np.isfinite(crop).all():
                raise InvalidInputError(f"motion {i}: contains NaN or inf values")
            crops.append(crop.astype(np.float32))
        order = np.argsort([len(c) for c in crops], kind="stable")
        width = self.motion_encoder.config.latent_dim
        out = np.zeros((len(crops), width), np.float32)
        with torch.inference_mode(), full_fp32():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                longest = max(len(crops[i]) for i in idx)
                batch = np.zeros((len(idx), longest, 272), np.float32)
                for k, i in enumerate(idx):
                    batch[k, : len(crops[i])] = crops[i]
                res = self.motion_encoder(
                    torch.from_numpy(batch).to(self.device),
                    torch.tensor([len(crops[i]) for i in idx], device=self.device),
                )
                out[idx] = res.mu.float().cpu().numpy()
        return out

    # ------------------------------------------------------------------ protocol

    def evaluate(
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
        options = [[c] if isinstance(c, str) else list(c) for c in captions]
        n = len(options)
        if len(real_motions) != n or (pred_motions is not None and len(pred_motions) != n):
            raise InvalidInputError(
                f"{n} captions, {len(real_motions)} real motions"
                + ("" if pred_motions is None else f", {len(pred_motions)} generated motions")
            )
        if caption_selection not in ("first", "random"):
            raise InvalidInputError("caption_selection must be 'first' or 'random'")
        r_len = (
            [floor_to_unit(len(m), UNIT_LENGTH) for m in real_motions]
            if real_lengths is None
            else real_lengths
        )
        real = self.encode_motion(real_motions, r_len, mean=mean, std=std, batch_size=batch_size)
        pred = None
        if pred_motions is not None:
            p_len = (
                [floor_to_unit(len(m), UNIT_LENGTH) for m in pred_motions]
                if pred_lengths is None
                else pred_lengths
            )
            pred = self.encode_motion(
                pred_motions, p_len, mean=mean, std=std, batch_size=batch_size
            )
        flat = [c for opts in options for c in opts]
        text_all = self.encode_text(flat, batch_size=batch_size)
        offsets = np.cumsum([0] + [len(o) for o in options])

        def one_repeat(r: int, rng: np.random.Generator) -> dict[str, Any]:
            if caption_selection == "random":
                pick = [int(offsets[i] + rng.integers(len(options[i]))) for i in range(n)]
            else:
                pick = [int(offsets[i]) for i in range(n)]
            order = rng.permutation(n)
            text = text_all[pick][order]
            return metrics.embedding_metrics(
                text,
                real[order],
                None if pred is None else pred[order],
                batch_size=batch_size,
                diversity_times=diversity_times,
                rng=rng,
            )

        result = metrics.replicate(one_repeat, n_repeats=n_repeats, seed=seed)
        return _zoo_keys(result, pred is not None)

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
            :meth:`evaluate`'s dict plus ``skipped_no_pred``, ``skipped_short_pred``,
            ``n_entries`` and ``config``.
        """
        if not gt_only and pred_dir is None:
            raise InvalidInputError("evaluate_dir needs pred_dir (or gt_only=True)")
        if pairs not in ("entry", "caption"):
            raise InvalidInputError(f"pairs must be 'entry' or 'caption', got {pairs!r}")
        data: MS272Split = read_ms272_split(
            data_root, split=split, split_file=split_file, max_samples=max_samples
        )
        mean, std = self.mean, self.std
        if (Path(data_root) / "mean_std").is_dir():
            mean, std = load_mean_std(Path(data_root) / "mean_std")
        selection = caption_selection or ("random" if gt_only else "first")
        captions: list[Any] = []
        reals: list[np.ndarray] = []
        preds: list[np.ndarray] = []
        missing: list[str] = []
        short: list[str] = []
        folder = None if gt_only else Path(pred_dir)  # type: ignore[arg-type]
        if folder is not None and not folder.is_dir():
            raise ArtifactNotFoundError(f"prediction folder not found: {folder}")
        for entry in data.entries:
            motion = data.motion(entry)
            length = floor_to_unit(len(motion), UNIT_LENGTH)
            pred = None
            if folder is not None:
                path = folder / f"{entry.key}.npy"
                if not path.is_file():
                    if strict:
                        raise ArtifactNotFoundError(f"missing prediction {path}")
                    missing.append(entry.key)
                    continue
                pred = np.load(path, allow_pickle=False)
                if pred.ndim != 2 or pred.shape[1] != 272:
                    raise InvalidInputError(f"{path}: expected (T, 272), got {pred.shape}")
                plen = min(length, floor_to_unit(len(pred), UNIT_LENGTH))
                if plen < MIN_LENGTH:
                    short.append(entry.key)
                    continue
                pred = pred[:plen]
            groups = [[c] for c in entry.captions] if pairs == "caption" else [list(entry.captions)]
            for group in groups:
                captions.append(group)
                reals.append(motion[:length])
                if pred is not None:
                    preds.append(pred)
        if missing:
            logger.warning("%d entries have no prediction in %s (left out)", len(missing), folder)
        result = self.evaluate(
            captions,
            reals,
            None if gt_only else preds,
            mean=mean,
            std=std,
            caption_selection=selection,
            n_repeats=n_repeats,
            seed=seed,
            batch_size=batch_size,
            diversity_times=diversity_times,
        )
        result["skipped_no_pred"] = len(missing)
        result["skipped_short_pred"] = len(short)
        result["n_entries"] = len(data.entries)
        result["n_evaluated"] = len(captions)
        result["config"] = {
            "evaluator": "motionstreamer_272",
            "evaluator_ckpt": None
            if self.source is None
            else str(Path(self.source) / WEIGHTS_FILE),
            "evaluator_dir": self.source,
            "data_root": str(data_root),
            "pred_dir": None if folder is None else str(folder),
            "gt_only": gt_only,
            "batch_size": batch_size,
            "caption_selection": selection,
            "pairs": pairs,
            "seed": seed,
            "split": split,
            "min_length": MIN_LENGTH,
            "max_length": MAX_LENGTH,
            "skipped_dataset": len(data.skipped),
        }
        return result

    # ------------------------------------------------------------------ the host runner's loop

    def _load_parts(self, evaluator_ckpt: Any, *, device: Any, local_files_only: bool) -> None:
        """``__init__`` from a converted folder: take over a loaded evaluator's state."""
        if evaluator_ckpt is None:
            raise InvalidInputError(
                "MotionStreamer272Evaluator needs its parts (text_encoder, motion_encoder, "
                "tokenizer) or evaluator_ckpt= (a folder written by "
                "`mogents convert-evaluator-ms272`)"
            )
        loaded = type(self).from_pretrained(
            evaluator_ckpt, device=device, local_files_only=local_files_only
        )
        own = {
            "_results": self._results,
            "data_root": self.data_root,
            "evaluate_kwargs": self.evaluate_kwargs,
        }
        self.__dict__.update({**vars(loaded), **own})

    def compute(self) -> dict[str, float]:
        """Score what :meth:`process` gathered with the test protocol (:meth:`evaluate_dir` on
        ``data_root``, with ``evaluate_kwargs``) and return the flat metrics the host logs (see
        :func:`~hftrainer_mogents.host_compat.flatten_metrics`). The full report is kept in
        ``last_report``.

        Each processed batch output holds ``keys`` (test-split keys) and ``motions`` (generated
        ``(T, 272)`` motions, raw, 30 fps, or a padded batch with ``lengths``).

        Raises:
            InvalidInputError: nothing processed, a key processed twice, or no ``data_root``.
        """
        import tempfile

        from hftrainer_mogents.utils.io import atomic_save_npy

        motions, _ = self._gathered()
        if self.data_root is None:
            raise InvalidInputError(
                "compute() needs the humanml3d_272 folder: build the evaluator with data_root="
            )
        with tempfile.TemporaryDirectory(prefix="ms272-compute-") as tmp:
            for key, motion in motions.items():
                atomic_save_npy(Path(tmp) / f"{key}.npy", motion)
            report = self.evaluate_dir(tmp, data_root=self.data_root, **self.evaluate_kwargs)
        report["config"]["pred_dir"] = None  # the gathered outputs, not a folder
        self.last_report = report
        return flatten_metrics(report)


def _zoo_keys(result: dict[str, Any], with_pred: bool) -> dict[str, Any]:
    repeats = result["repeats"]

    def stats(key: str) -> tuple[Any, Any]:
        values = np.asarray([rep[key] for rep in repeats], dtype=np.float64)
        mean, std = values.mean(axis=0), values.std(axis=0)
        if values.ndim == 1:
            return float(mean), float(std)
        return mean.tolist(), std.tolist()

    out: dict[str, Any] = {
        "n_samples_used": int(repeats[0]["n_samples"]),
        "n_repeats": result["n_repeats"],
    }
    out["r_precision_real"], out["r_precision_real_std"] = stats("r_precision_real")
    out["matching_score_real"], out["matching_score_real_std"] = stats("matching_score_real")
    out["diversity_real"], out["diversity_real_std"] = stats("diversity_real")
    if with_pred:
        out["fid"], out["fid_std"] = stats("fid")
        out["r_precision_pred"], out["r_precision_pred_std"] = stats("r_precision")
        out["matching_score_pred"], out["matching_score_pred_std"] = stats("matching_score")
        out["diversity_pred"], out["diversity_pred_std"] = stats("diversity")
    out["summary"] = result["summary"]
    out["repeats"] = repeats
    out["seed"] = result["seed"]
    return out
